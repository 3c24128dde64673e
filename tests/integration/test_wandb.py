"""WandbCallback in W&B's offline mode: the run files it writes are read back (their
records) and compared with the journal (tune.load). Sweeps run in process (no Ray)."""

from __future__ import annotations

import glob
import json
import os
import sys

import pytest

import tuner as tune
from schedulers import PopulationBasedTraining
from tests.fakes import InProcessExecutor
from tests.integration.trainables import pbt_counter

pytest.importorskip("wandb")
from wandb.proto import wandb_internal_pb2  # noqa: E402

from tuner.integrations import WandbCallback  # noqa: E402

pytestmark = pytest.mark.tracking


def records(path):
    """The records of a ``.wandb`` file: a 7-byte header, then LevelDB-log framing (32 KiB
    blocks of chunks: crc32, length, type FULL/FIRST/MIDDLE/LAST) around protobuf records."""
    data = open(path, "rb").read()
    assert data[:4] == b":W&B"
    pos, pending = 7, b""
    while pos + 7 <= len(data):
        if 32768 - pos % 32768 < 7:  # a block's tail too short for a header is padding
            pos += 32768 - pos % 32768
            continue
        length, kind = int.from_bytes(data[pos + 4:pos + 6], "little"), data[pos + 6]
        chunk, pos = data[pos + 7:pos + 7 + length], pos + 7 + length
        if kind in (1, 2):
            pending = chunk
        elif kind in (3, 4):
            pending += chunk
        if kind in (1, 4):
            record = wandb_internal_pb2.Record()
            record.ParseFromString(pending)
            yield record


def read_run(path):
    """name, group, job type, initial config, history rows, config updates, exit code."""
    run = {"history": [], "updates": []}
    for record in records(path):
        kind = record.WhichOneof("record_type")
        if kind == "run":
            run.update(name=record.run.display_name, group=record.run.run_group, job_type=record.run.job_type,
                       config={u.key: json.loads(u.value_json) for u in record.run.config.update if u.key != "_wandb"})
        elif kind == "history":
            run["history"].append({i.key or "/".join(i.nested_key): json.loads(i.value_json) for i in record.history.item})
        elif kind == "config":
            run["updates"].append({u.key: json.loads(u.value_json) for u in record.config.update if u.key != "_wandb"})
        elif kind == "exit":
            run["exit_code"] = record.exit.exit_code
    return run


def test_one_offline_run_per_trial_grouped_with_config_updates_on_exploit(storage, tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_SILENT", "true")
    scheduler = PopulationBasedTraining(perturbation_interval=3, synch=True, seed=0, quantile_fraction=0.5,
                                        hyperparam_mutations={"inc": [1, 2, 5, 10, 20]})
    results = tune.run(pbt_counter, config={"inc": tune.grid_search([1, 2, 10, 20])}, metric="count", mode="max",
                       scheduler=scheduler, stop={"training_iteration": 9}, storage_path=storage, name="pbt",
                       verbose=0, log_to_tensorboard=False, _executor=InProcessExecutor(),
                       callbacks=[WandbCallback(project="tuner-test", mode="offline", dir=str(tmp_path),
                                                flush_timeout_s=300)])
    journal = tune.load(results.experiment_path)
    lineage = journal.pbt_lineage()
    assert lineage
    files = glob.glob(os.path.join(tmp_path, "wandb", "offline-run-*", "run-*.wandb"))
    runs = {run["name"]: run for run in map(read_run, files)}
    assert set(runs) == {t.trial_id for t in journal.trials}
    for trial in journal.trials:
        run = runs[trial.trial_id]
        assert run["group"] == "pbt" and run["job_type"] == "trial" and run["exit_code"] == 0
        exploits = [e for e in lineage if e["trial_id"] == trial.trial_id]
        assert run["config"] == (exploits[0]["old_config"] if exploits else trial.config)
        assert run["updates"] == [{**e["config"], "exploited_from": e["donor_id"], "exploited_at": e["iteration"]}
                                  for e in exploits]
        logged = [(row["_step"], row["count"]) for row in run["history"] if "count" in row]
        assert logged == [(r["training_iteration"], r["count"]) for r in trial.history]


def fails_at_two(config):
    for step in range(1, 4):
        if config["x"] == 2 and step == 2:
            raise RuntimeError("x=2 fails")
        tune.report({"loss": config["x"] / step})


def test_an_errored_trial_finishes_its_run_with_exit_code_1(storage, tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_SILENT", "true")
    results = tune.run(fails_at_two, config={"x": tune.grid_search([1, 2])}, metric="loss", mode="min",
                       storage_path=storage, verbose=0, log_to_tensorboard=False, raise_on_failed_trial=False,
                       _executor=InProcessExecutor(),
                       callbacks=[WandbCallback(mode="offline", dir=str(tmp_path), flush_timeout_s=300)])
    runs = {run["name"]: run for run in map(read_run, glob.glob(f"{tmp_path}/wandb/offline-run-*/run-*.wandb"))}
    assert {tid: run["exit_code"] for tid, run in runs.items()} == {
        t.trial_id: int(t.status.value == "ERROR") for t in results.trials}
    assert [row["loss"] for row in runs[results.errors[0].trial_id]["history"]] == [2.0]


def test_missing_wandb_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "wandb", None)
    with pytest.raises(ImportError, match=r"pip install 'tuner\[wandb\]'"):
        WandbCallback()


def test_mode_is_checked():
    with pytest.raises(ValueError, match="The value of `mode` is 'offlne', but must be 'online', 'offline'"):
        WandbCallback(mode="offlne")
