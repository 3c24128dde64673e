"""TensorBoard event files and HParams protos, written with the ``tensorboard``
package alone (no TensorFlow, no torch).

This module knows the file format and the protos; ``tuner.tensorboard.export`` decides
what to write and when. Everything here is pure except ``EventFileWriter``.

Why our own writer rather than ``tensorboard.summary.writer.EventFileWriter``:
that one starts a thread per events file and checksums records with a pure
Python loop (about 0.1 µs a byte, the main cost of a result); a sweep keeps one
file open per running trial, so we write synchronously into a buffered file,
checksum with the table form below, and let the caller flush on its own
schedule (see ``TensorBoardCallback``). The bytes are the same TFRecord framing
TensorBoard reads. The HParams constants are restated here because importing
``tensorboard.plugins.hparams.metadata`` pulls TensorBoard's TensorFlow stub
(about 0.3 s), which a short sweep would feel.
"""

from __future__ import annotations

import functools
import itertools
import os
import socket
import struct
import time
from typing import Any, Iterable, Iterator

from tensorboard.compat.proto import event_pb2, summary_pb2, tensor_pb2, tensor_shape_pb2, types_pb2
from tensorboard.plugins.hparams import api_pb2, plugin_data_pb2

# As in tensorboard.plugins.hparams.metadata (a test checks they agree).
HPARAMS_PLUGIN = "hparams"
EXPERIMENT_TAG = "_hparams_/experiment"
SESSION_START_INFO_TAG = "_hparams_/session_start_info"
SESSION_END_INFO_TAG = "_hparams_/session_end_info"
NULL_TENSOR = tensor_pb2.TensorProto(
    dtype=types_pb2.DT_FLOAT, tensor_shape=tensor_shape_pb2.TensorShapeProto(dim=[{"size": 0}]))

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
_FAST_MIN, _FAST_MAX = 32, 1024
_fast_tables: tuple[Any, ...] | None = None


def _position_tables() -> tuple[Any, ...]:
    """CRC-32C is affine in its input: for ``n`` bytes, crc = C[n] xor the xor of
    R[n - i][byte_i], where R[k][b] is the table entry of ``b`` pushed through
    k - 1 zero bytes. With R as a numpy array a record costs one gather and one
    xor-reduce instead of a Python loop over its bytes. Built on first use (ms)."""
    global _fast_tables
    if _fast_tables is None:
        import numpy as np

        table = np.array(_CRC_TABLE, dtype=np.uint32)
        rows = np.empty((_FAST_MAX, 256), dtype=np.uint32)
        row = table.copy()
        for k in range(_FAST_MAX):  # rows[_FAST_MAX - 1 - k] = T[b] shifted through k zero bytes
            rows[_FAST_MAX - 1 - k] = row
            row = table[row & 0xFF] ^ (row >> 8)
        offsets, crc = [], 0xFFFFFFFF
        for _ in range(_FAST_MAX + 1):  # offsets[n]: the all-ones start value through n zero bytes
            offsets.append(crc ^ 0xFFFFFFFF)
            crc = _CRC_TABLE[crc & 0xFF] ^ (crc >> 8)
        _fast_tables = (np, rows, np.arange(_FAST_MAX), offsets, np.array(offsets, dtype=np.uint32))
    return _fast_tables


def masked_crc32c(data: bytes) -> int:
    """CRC-32C (Castagnoli) of ``data``, masked as TFRecord files store it."""
    n = len(data)
    if _FAST_MIN <= n <= _FAST_MAX:
        np, rows, positions, offsets, _ = _position_tables()
        picked = rows[positions[_FAST_MAX - n:], np.frombuffer(data, dtype=np.uint8)]
        crc = int(np.bitwise_xor.reduce(picked)) ^ offsets[n]
    else:
        crc = 0xFFFFFFFF
        table = _CRC_TABLE
        for byte in data:
            crc = table[(crc ^ byte) & 0xFF] ^ (crc >> 8)
        crc ^= 0xFFFFFFFF
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


#: Below this many records one call per record is cheaper (about 10 µs each against a batch's ~80 µs
#: of numpy calls; a batch costs about 5 µs a record).
_BATCH_FROM = 16


def masked_crc32c_many(records: list[bytes]) -> list[int]:
    """``masked_crc32c`` of each record; a batch costs a few numpy calls in all,
    which is why the writer checksums at flush time rather than per event."""
    if len(records) < _BATCH_FROM:
        return [masked_crc32c(r) for r in records]
    np, rows, _, _, offsets = _position_tables()
    out = [0] * len(records)
    fast = [i for i, r in enumerate(records) if 0 < len(r) <= _FAST_MAX]
    if fast:
        lengths = np.fromiter((len(records[i]) for i in fast), dtype=np.int64, count=len(fast))
        ends = np.cumsum(lengths)
        data = np.frombuffer(b"".join([records[i] for i in fast]), dtype=np.uint8)
        # byte g of record r is (ends[r] - g) bytes from that record's end
        row_index = np.arange(len(data)) - np.repeat(ends, lengths) + _FAST_MAX
        crc = np.bitwise_xor.reduceat(rows[row_index, data], ends - lengths) ^ offsets[lengths]
        masked = ((crc >> 15) | (crc << 17)) + np.uint32(0xA282EAD8)  # uint32: wraps like & 0xFFFFFFFF
        for i, value in zip(fast, masked.tolist()):
            out[i] = value
    for i, record in enumerate(records):
        if not 0 < len(record) <= _FAST_MAX:
            out[i] = masked_crc32c(record)
    return out


@functools.lru_cache(maxsize=4096)
def _record_header(length: int) -> bytes:
    header = struct.pack("<Q", length)
    return header + struct.pack("<I", masked_crc32c(header))


_pack_crc = struct.Struct("<I").pack


def frame_record(data: bytes) -> bytes:
    """One TFRecord: length, masked CRC of the length, data, masked CRC of the data."""
    return _record_header(len(data)) + data + _pack_crc(masked_crc32c(data))


def frame_records(records: list[bytes]) -> bytes:
    """Several TFRecords, checksummed as one batch."""
    parts = []
    for data, crc in zip(records, masked_crc32c_many(records)):
        parts += (_record_header(len(data)), data, _pack_crc(crc))
    return b"".join(parts)


def read_events(path: str) -> Iterator[event_pb2.Event]:
    """The events of one file (checksums not verified; a torn last record is skipped)."""
    with open(path, "rb") as fh:
        while len(header := fh.read(12)) == 12:
            (length,) = struct.unpack("<Q", header[:8])
            data = fh.read(length + 4)
            if len(data) < length + 4:
                return
            yield event_pb2.Event.FromString(data[:length])


_file_counter = itertools.count()


class EventFileWriter:
    """Appends ``Event`` protos to a new events file in ``logdir``.

    ``write`` only serializes the event; ``flush`` frames and checksums what is
    pending in one batch and writes it: nothing is visible to TensorBoard
    before. Not thread-safe; the caller serializes access.

    Args:
        logdir: the run directory; created if missing.
        lazy: create the directory and the file at the first flush, not now. A sweep of
            many short trials then pays one directory, one open and one write per trial
            (everything a one-result trial has to say arrives before its first flush).
    """

    def __init__(self, logdir: str, lazy: bool = False) -> None:
        self._logdir = logdir
        name = "events.out.tfevents.%010d.%s.%d.%d" % (time.time(), _hostname(), os.getpid(), next(_file_counter))
        self.path = os.path.join(logdir, name)
        self._file: Any = None
        self._closed = False
        self._pending: list[bytes] = []
        self.write(event_pb2.Event(wall_time=time.time(), file_version="brain.Event:2"))
        if not lazy:
            self._create()

    def _create(self) -> None:
        try:
            os.mkdir(self._logdir)  # a new trial's run: its parent exists (os.makedirs would stat it first)
        except FileExistsError:
            pass
        except FileNotFoundError:
            os.makedirs(self._logdir, exist_ok=True)
        self._file = open(self.path, "wb")  # noqa: SIM115 (closed in close())

    @property
    def dirty(self) -> bool:
        return bool(self._pending)

    def write(self, event: event_pb2.Event) -> None:
        self._pending.append(event.SerializeToString())

    def flush(self) -> None:
        flush_all([self])

    def _write_framed(self, data: bytes) -> None:
        if self._file is None:
            self._create()
        self._file.write(data)
        self._file.flush()

    def close(self) -> None:
        if not self._closed:
            self.flush()
            self._closed = True
            if self._file is not None:
                self._file.close()


def flush_all(writers: Iterable[EventFileWriter]) -> None:
    """Flush several writers with one checksum batch over all their pending records."""
    dirty = [w for w in writers if w._pending]
    if not dirty:
        return
    batches = [w._pending for w in dirty]
    for w in dirty:
        w._pending = []
    records = [r for batch in batches for r in batch]
    crcs = iter(masked_crc32c_many(records))
    for writer, batch in zip(dirty, batches):
        parts = []
        for data in batch:
            parts += (_record_header(len(data)), data, _pack_crc(next(crcs)))
        writer._write_framed(b"".join(parts))


@functools.lru_cache(maxsize=1)
def _hostname() -> str:
    return socket.gethostname()


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
                     metric_descriptions: dict[str, str] | None = None,
                     time_created_secs: float | None = None) -> event_pb2.Event:
    """The experiment-level config: every hyperparameter with its domain and every metric.

    Metrics are scalar tags of the session runs themselves (group "").
    """
    notes = metric_descriptions or {}
    experiment = api_pb2.Experiment(
        hparam_infos=hparam_infos,
        metric_infos=[api_pb2.MetricInfo(name=api_pb2.MetricName(group="", tag=t), description=notes.get(t, ""))
                      for t in metric_tags],
        time_created_secs=time.time() if time_created_secs is None else time_created_secs,
    )
    return _hparams_event(EXPERIMENT_TAG, plugin_data_pb2.HParamsPluginData(experiment=experiment))


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
    data = plugin_data_pb2.HParamsPluginData(session_start_info=start)
    return _hparams_event(SESSION_START_INFO_TAG, data)


def session_end_event(status: int, end_time_secs: float | None = None) -> event_pb2.Event:
    """A session ends with ``status`` (an ``api_pb2.Status`` value)."""
    end_time_secs = time.time() if end_time_secs is None else end_time_secs
    end = plugin_data_pb2.SessionEndInfo(status=status, end_time_secs=end_time_secs)
    return _hparams_event(SESSION_END_INFO_TAG, plugin_data_pb2.HParamsPluginData(session_end_info=end))


def _hparams_event(tag: str, data: plugin_data_pb2.HParamsPluginData) -> event_pb2.Event:
    event = event_pb2.Event(wall_time=time.time(), step=0)
    metadata = summary_pb2.SummaryMetadata(plugin_data=summary_pb2.SummaryMetadata.PluginData(
        plugin_name=HPARAMS_PLUGIN, content=data.SerializeToString()))  # version 0, the default
    event.summary.value.add(tag=tag, metadata=metadata, tensor=NULL_TENSOR)
    return event


# --- scalars and text ------------------------------------------------------------------------

_TEXT_METADATA = summary_pb2.SummaryMetadata(
    plugin_data=summary_pb2.SummaryMetadata.PluginData(plugin_name="text"),
    data_class=summary_pb2.DATA_CLASS_TENSOR,
)
_SCALAR_SHAPE = tensor_shape_pb2.TensorShapeProto()


def scalars_event(values: dict[str, float], step: int, wall_time: float | None = None) -> event_pb2.Event:
    """One event holding every scalar of one result.

    ``simple_value`` (float32) is the one scalar encoding both of TensorBoard's
    loaders read: its fast Rust loader ignores float64 scalar tensors. So the
    HParams view shows metrics rounded to float32, as for any TensorBoard scalar.
    """
    event = event_pb2.Event(wall_time=time.time() if wall_time is None else wall_time, step=step)
    add = event.summary.value.add
    for tag, value in values.items():
        add(tag=tag, simple_value=value)
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
    for name in sorted(os.listdir(run_dir)):
        if "tfevents" not in name:
            continue
        for event in read_events(os.path.join(run_dir, name)):
            for value in event.summary.value:
                if value.tag == EXPERIMENT_TAG:
                    return plugin_data_pb2.HParamsPluginData.FromString(value.metadata.plugin_data.content).experiment
    return None
