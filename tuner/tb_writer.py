"""TensorBoard event files and HParams protos, written with the ``tensorboard``
package alone (no TensorFlow, no torch).

This module knows the file format and the protos; ``tuner.tensorboard`` decides
what to write and when. Everything here is pure except ``EventFileWriter``.

Why our own writer rather than ``tensorboard.summary.writer.EventFileWriter``:
that one starts a thread per events file and computes the record checksums in
a slower pure-Python loop; a sweep keeps one file open per running trial, so
we write synchronously into a buffered file and let the caller flush on its
own schedule (see ``TensorBoardCallback``). The bytes are the same TFRecord
framing TensorBoard reads.
"""

from __future__ import annotations

import itertools
import os
import socket
import struct
import time
from typing import Any, Iterable

from tensorboard.compat.proto import event_pb2, summary_pb2, tensor_pb2, tensor_shape_pb2, types_pb2
from tensorboard.plugins.hparams import api_pb2, plugin_data_pb2
from tensorboard.plugins.hparams import metadata as hp_metadata

# --- record framing ------------------------------------------------------------------------


def _crc32c_table() -> tuple[int, ...]:
    table = []
    for n in range(256):
        crc = n
        for _ in range(8):
            crc = (crc >> 1) ^ 0x82F63B78 if crc & 1 else crc >> 1
        table.append(crc)
    return tuple(table)


_CRC_TABLE = _crc32c_table()


def masked_crc32c(data: bytes) -> int:
    """CRC-32C (Castagnoli) of ``data``, masked as TFRecord files store it."""
    crc = 0xFFFFFFFF
    table = _CRC_TABLE
    for byte in data:
        crc = table[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    crc ^= 0xFFFFFFFF
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def frame_record(data: bytes) -> bytes:
    """One TFRecord: length, masked CRC of the length, data, masked CRC of the data."""
    header = struct.pack("<Q", len(data))
    return header + struct.pack("<I", masked_crc32c(header)) + data + struct.pack("<I", masked_crc32c(data))


_file_counter = itertools.count()


class EventFileWriter:
    """Appends ``Event`` protos to a new events file in ``logdir``.

    Writes go to a buffered file: nothing is visible to TensorBoard until
    ``flush()``. Not thread-safe; the caller serializes access.

    Args:
        logdir: the run directory; created if missing.
    """

    def __init__(self, logdir: str) -> None:
        os.makedirs(logdir, exist_ok=True)
        name = "events.out.tfevents.%010d.%s.%d.%d" % (
            time.time(), socket.gethostname(), os.getpid(), next(_file_counter))
        self.path = os.path.join(logdir, name)
        self._file = open(self.path, "wb", buffering=1 << 16)  # noqa: SIM115 (closed in close())
        self.dirty = False
        self.write(event_pb2.Event(wall_time=time.time(), file_version="brain.Event:2"))

    def write(self, event: event_pb2.Event) -> None:
        self._file.write(frame_record(event.SerializeToString()))
        self.dirty = True

    def flush(self) -> None:
        if self.dirty:
            self._file.flush()
            self.dirty = False

    def close(self) -> None:
        if not self._file.closed:
            self._file.flush()
            self._file.close()
        self.dirty = False


# --- HParams protos ------------------------------------------------------------------------

FLOAT64 = api_pb2.DATA_TYPE_FLOAT64
STRING = api_pb2.DATA_TYPE_STRING
BOOL = api_pb2.DATA_TYPE_BOOL


def hparam_info(name: str, dtype: int, *, interval: tuple[float, float] | None = None,
                values: Iterable[Any] | None = None, differs: bool = True,
                description: str = "") -> api_pb2.HParamInfo:
    """Declare one hyperparameter: its type and, optionally, an interval or a list of values.

    ``values`` must already be of the Python type matching ``dtype`` (bool, float/int, str).
    """
    info = api_pb2.HParamInfo(name=name, type=dtype, differs=differs, description=description)
    if interval is not None:
        info.domain_interval.min_value = float(interval[0])
        info.domain_interval.max_value = float(interval[1])
    elif values is not None:
        info.domain_discrete.extend(list(values))
    return info


def experiment_event(hparam_infos: list[api_pb2.HParamInfo], metric_tags: list[str],
                     time_created_secs: float | None = None) -> event_pb2.Event:
    """The experiment-level config: every hyperparameter with its domain and every metric.

    Metrics are scalar tags of the session runs themselves (group "").
    """
    experiment = api_pb2.Experiment(
        hparam_infos=hparam_infos,
        metric_infos=[api_pb2.MetricInfo(name=api_pb2.MetricName(group="", tag=t)) for t in metric_tags],
        time_created_secs=time.time() if time_created_secs is None else time_created_secs,
    )
    return _hparams_event(hp_metadata.EXPERIMENT_TAG, plugin_data_pb2.HParamsPluginData(experiment=experiment))


def session_start_event(hparams: dict[str, bool | float | str], group_name: str,
                        start_time_secs: float | None = None) -> event_pb2.Event:
    """A session (one run) starts with these concrete values; values must be bool, number or str."""
    start = plugin_data_pb2.SessionStartInfo(
        group_name=group_name, start_time_secs=time.time() if start_time_secs is None else start_time_secs)
    for name, value in hparams.items():
        if isinstance(value, bool):
            start.hparams[name].bool_value = value
        elif isinstance(value, (int, float)):
            start.hparams[name].number_value = value
        else:
            start.hparams[name].string_value = value
    return _hparams_event(hp_metadata.SESSION_START_INFO_TAG, plugin_data_pb2.HParamsPluginData(session_start_info=start))


def session_end_event(status: int, end_time_secs: float | None = None) -> event_pb2.Event:
    """A session ends with ``status`` (an ``api_pb2.Status`` value)."""
    end = plugin_data_pb2.SessionEndInfo(status=status, end_time_secs=time.time() if end_time_secs is None else end_time_secs)
    return _hparams_event(hp_metadata.SESSION_END_INFO_TAG, plugin_data_pb2.HParamsPluginData(session_end_info=end))


def _hparams_event(tag: str, data: plugin_data_pb2.HParamsPluginData) -> event_pb2.Event:
    event = event_pb2.Event(wall_time=time.time(), step=0)
    event.summary.value.add(tag=tag, metadata=hp_metadata.create_summary_metadata(data), tensor=hp_metadata.NULL_TENSOR)
    return event


# --- scalars and text ------------------------------------------------------------------------

_SCALAR_METADATA = summary_pb2.SummaryMetadata(
    plugin_data=summary_pb2.SummaryMetadata.PluginData(plugin_name="scalars"),
    data_class=summary_pb2.DATA_CLASS_SCALAR,
)
_TEXT_METADATA = summary_pb2.SummaryMetadata(
    plugin_data=summary_pb2.SummaryMetadata.PluginData(plugin_name="text"),
    data_class=summary_pb2.DATA_CLASS_TENSOR,
)
_SCALAR_SHAPE = tensor_shape_pb2.TensorShapeProto()


def scalars_event(values: dict[str, float], step: int, new_tags: Iterable[str] = (),
                  wall_time: float | None = None) -> event_pb2.Event:
    """One event holding every scalar of one result, as float64 tensors.

    float64 rather than ``simple_value`` (float32) so that the HParams view shows
    a trial's final metric exactly as reported. TensorBoard keeps only the first
    metadata of a tag in a run, so it is attached only to ``new_tags``.
    """
    event = event_pb2.Event(wall_time=time.time() if wall_time is None else wall_time, step=step)
    add = event.summary.value.add
    new = set(new_tags)
    for tag, value in values.items():
        tensor = tensor_pb2.TensorProto(dtype=types_pb2.DT_DOUBLE, tensor_shape=_SCALAR_SHAPE, double_val=(value,))
        if tag in new:
            add(tag=tag, tensor=tensor, metadata=_SCALAR_METADATA)
        else:
            add(tag=tag, tensor=tensor)
    return event


def text_event(tag: str, text: str, step: int, wall_time: float | None = None) -> event_pb2.Event:
    """A Markdown text summary (shown in TensorBoard's Text tab)."""
    event = event_pb2.Event(wall_time=time.time() if wall_time is None else wall_time, step=step)
    tensor = tensor_pb2.TensorProto(dtype=types_pb2.DT_STRING, tensor_shape=_SCALAR_SHAPE,
                                    string_val=[text.encode("utf-8")])
    event.summary.value.add(tag=tag, tensor=tensor, metadata=_TEXT_METADATA)
    return event


def read_experiment(run_dir: str) -> api_pb2.Experiment | None:
    """The experiment config stored in ``run_dir`` by an earlier process, or None."""
    from tensorboard.backend.event_processing.event_file_loader import EventFileLoader

    for name in sorted(os.listdir(run_dir)):
        if "tfevents" not in name:
            continue
        for event in EventFileLoader(os.path.join(run_dir, name)).Load():
            for value in event.summary.value:
                if value.tag == hp_metadata.EXPERIMENT_TAG:
                    return hp_metadata.parse_experiment_plugin_data(value.metadata.plugin_data.content)
    return None
