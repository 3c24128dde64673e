"""tuner.tensorboard.event_file: the record framing and protos TensorBoard reads. No Ray."""

from __future__ import annotations

import os
import random

import pytest
from tensorboard.backend.event_processing import event_accumulator
from tensorboard.compat.tensorflow_stub.pywrap_tensorflow import masked_crc32c as reference_crc
from tensorboard.plugins.hparams import api_pb2
from tensorboard.plugins.hparams import metadata as hp_metadata

from tuner.tensorboard import event_file as tbw
@pytest.mark.parametrize("size", [0, 1, 8, 31, 32, 33, 100, 1023, 1024, 1025, 5000])
def test_crc_matches_tensorboard(size):  # both the loop and the table form
    data = bytes(random.Random(size).randrange(256) for _ in range(size))
    assert tbw.masked_crc32c(data) == reference_crc(data)


def test_batched_crc_matches_tensorboard():
    rng = random.Random(0)
    for _ in range(30):
        sizes = [rng.choice([0, 1, 5, 31, 32, 100, 1024, 1025, 3000]) for _ in range(rng.randrange(0, 25))]
        records = [bytes(rng.randrange(256) for _ in range(n)) for n in sizes]
        assert tbw.masked_crc32c_many(records) == [reference_crc(r) for r in records]
        assert tbw.frame_records(records) == b"".join(tbw.frame_record(r) for r in records)


def test_hparams_constants_match_tensorboard():
    assert (tbw.EXPERIMENT_TAG, tbw.SESSION_START_INFO_TAG, tbw.SESSION_END_INFO_TAG, tbw.HPARAMS_PLUGIN) == (
        hp_metadata.EXPERIMENT_TAG, hp_metadata.SESSION_START_INFO_TAG, hp_metadata.SESSION_END_INFO_TAG,
        hp_metadata.PLUGIN_NAME)
    assert tbw.NULL_TENSOR == hp_metadata.NULL_TENSOR
    data = tbw.session_end_event(api_pb2.STATUS_FAILURE, 5.0).summary.value[0].metadata
    assert data == hp_metadata.create_summary_metadata(
        hp_metadata.plugin_data_pb2.HParamsPluginData(session_end_info={"status": api_pb2.STATUS_FAILURE,
                                                                        "end_time_secs": 5.0}))


def test_event_file_is_read_by_tensorboard(tmp_path):
    run = str(tmp_path / "run")
    writer = tbw.EventFileWriter(run)
    writer.write(tbw.session_start_event({"lr": 0.1, "opt": "adam", "bn": True}, group_name="g"))
    for step in range(1, 4):
        writer.write(tbw.scalars_event({"acc": step / 4, "loss": 1.0 / step}, step))
    writer.write(tbw.text_event("note", "**hi**", 3))
    writer.write(tbw.session_end_event(api_pb2.STATUS_SUCCESS))
    writer.close()
    assert os.path.basename(writer.path).startswith("events.out.tfevents.")

    assert [e.step for e in tbw.read_events(writer.path)] == [0, 0, 1, 2, 3, 3, 0]  # our own reader agrees
    acc = event_accumulator.EventAccumulator(run, size_guidance={event_accumulator.TENSORS: 0})
    acc.Reload()
    assert [(e.step, e.value) for e in acc.Scalars("acc")] == [(1, 0.25), (2, 0.5), (3, 0.75)]
    start = hp_metadata.parse_session_start_info_plugin_data(
        acc.SummaryMetadata(hp_metadata.SESSION_START_INFO_TAG).plugin_data.content)
    assert start.group_name == "g"
    assert (start.hparams["lr"].number_value, start.hparams["opt"].string_value, start.hparams["bn"].bool_value) == (
        0.1, "adam", True)
    end = hp_metadata.parse_session_end_info_plugin_data(
        acc.SummaryMetadata(hp_metadata.SESSION_END_INFO_TAG).plugin_data.content)
    assert end.status == api_pb2.STATUS_SUCCESS
    assert acc.SummaryMetadata("note").plugin_data.plugin_name == "text"


def test_nothing_is_visible_before_flush(tmp_path):
    writer = tbw.EventFileWriter(str(tmp_path))
    size = os.path.getsize(writer.path)
    writer.write(tbw.scalars_event({"acc": 1.0}, 1))
    assert writer.dirty and os.path.getsize(writer.path) == size
    writer.flush()
    assert not writer.dirty and os.path.getsize(writer.path) > size
    writer.close()


def test_experiment_round_trips(tmp_path):
    writer = tbw.EventFileWriter(str(tmp_path))
    infos = [tbw.hparam_info("lr", tbw.FLOAT64, interval=(1e-4, 0.1)),
             tbw.hparam_info("opt", tbw.STRING, values=["adam", "sgd"])]
    writer.write(tbw.experiment_event(infos, ["acc", "loss"], {"acc": "tuned"}))
    writer.close()
    exp = tbw.read_experiment(str(tmp_path))
    assert [i.name for i in exp.hparam_infos] == ["lr", "opt"]
    assert [(m.name.tag, m.description) for m in exp.metric_infos] == [("acc", "tuned"), ("loss", "")]
