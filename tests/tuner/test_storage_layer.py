"""The storage layer (tuner.storage.fs, append, checkpoint) on a local directory and on a real
S3-compatible server, through the same calls. No Ray."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

import tuner as tune
from tuner.storage import append, fs
from tuner.storage import checkpoint as ckpt_lib

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture(params=["local", "s3"])
def base(request, tmp_path):
    if request.param == "local":
        return str(tmp_path)
    return f"{request.getfixturevalue('s3_server')}/{os.path.basename(str(tmp_path))}"


def test_checkpoints_round_trip_copy_and_delete(base, tmp_path):
    trial = fs.join(base, "trials", "t0")
    obj = ckpt_lib.save({"w": [1, 2, 3]}, ckpt_lib.directory_for(trial, 1))
    assert obj.endswith("checkpoints/000001") and ckpt_lib.load(obj) == {"w": [1, 2, 3]}
    src = tmp_path / "model"
    (src / "sub").mkdir(parents=True)
    (src / "weights.bin").write_bytes(b"\x00\x01" * 1000)
    (src / "sub" / "cfg.txt").write_text("depth=3")
    directory = ckpt_lib.save(tune.Checkpoint.from_directory(src), ckpt_lib.directory_for(trial, 2))
    restored = ckpt_lib.load(directory)
    assert open(os.path.join(restored.to_directory(), "sub", "cfg.txt")).read() == "depth=3"
    assert open(os.path.join(restored.to_directory(), "weights.bin"), "rb").read() == b"\x00\x01" * 1000
    # a PBT clone: copied in storage, independent of its source
    clone = ckpt_lib.copy(directory, ckpt_lib.directory_for(fs.join(base, "trials", "t1"), 2))
    ckpt_lib.delete(directory)
    assert not ckpt_lib.is_complete(directory) and not fs.exists(directory)
    assert open(os.path.join(ckpt_lib.load(clone).to_directory(), "sub", "cfg.txt")).read() == "depth=3"
    # rewritten in place (a recipient adopting a donor's state at its own iteration)
    ckpt_lib.save({"w": "new"}, obj)
    assert ckpt_lib.load(obj) == {"w": "new"}
    # a from_dict checkpoint comes back as a Checkpoint
    assert ckpt_lib.load(ckpt_lib.save(tune.Checkpoint.from_dict({"a": 1}), fs.join(trial, "x"))).to_dict() == {"a": 1}


def test_a_checkpoint_without_its_marker_is_never_restored(base):
    path = ckpt_lib.directory_for(fs.join(base, "trials", "t0"), 3)
    fs.write_bytes(fs.join(path, "data.pkl"), b"half")  # what a writer killed before the marker leaves
    assert not ckpt_lib.is_complete(path)
    with pytest.raises(FileNotFoundError, match="never completely written"):
        ckpt_lib.load(path)


WRITER = """
import sys
from tuner.storage import append
append.SEGMENT_BYTES = 64  # several segments even for a few lines
log = append.Appender(sys.argv[1])
for i in range(10**6):
    log.write(f"line {i}\\n")
    log.flush()
    print(i, flush=True)
"""


def test_appended_lines_survive_a_sigkill_and_a_reopen(base, monkeypatch):
    monkeypatch.setattr(append, "SEGMENT_BYTES", 64)
    path = fs.join(base, "journal.jsonl")
    proc = subprocess.Popen([sys.executable, "-c", WRITER, path], cwd=ROOT, stdout=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": ROOT})
    flushed = -1
    while flushed < 30:
        flushed = int(proc.stdout.readline())
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    lines = append.read_text(path).splitlines()
    # every line whose flush returned is there, in order, none torn
    assert lines[:flushed + 1] == [f"line {i}" for i in range(flushed + 1)]
    assert all(line.startswith("line ") for line in lines)
    again = append.Appender(path)
    again.write("after reopen\n")
    again.close()
    assert append.read_text(path).splitlines()[-1] == "after reopen"
    assert append.exists(path) and not append.exists(fs.join(base, "nothing.jsonl"))


SLOW_SAVE = """
import sys
import tuner as tune
from tuner.storage import checkpoint as ckpt_lib
print("go", flush=True)
ckpt_lib.save(tune.Checkpoint.from_directory(sys.argv[1]), sys.argv[2])
print("done", flush=True)
"""


def test_a_writer_killed_mid_checkpoint_leaves_nothing_restorable(s3_server, tmp_path):
    """SIGKILL between the files and the completion marker on an object store."""
    src = tmp_path / "big"
    src.mkdir()
    for i in range(60):
        (src / f"part{i:03d}.bin").write_bytes(os.urandom(256 * 1024))
    path = f"{s3_server}/killed/trials/t0/checkpoints/000001"
    proc = subprocess.Popen([sys.executable, "-c", SLOW_SAVE, str(src), path], cwd=ROOT, stdout=subprocess.PIPE,
                            text=True, env={**os.environ, "PYTHONPATH": ROOT})
    assert proc.stdout.readline().strip() == "go"
    deadline = time.time() + 120
    while not fs.listdir(path):  # the first files are up: the marker is not
        assert time.time() < deadline and proc.poll() is None, "the upload never started"
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert 0 < len(fs.listdir(path)) and ".tuner_checkpoint" not in fs.listdir(path)
    assert not ckpt_lib.is_complete(path)
    with pytest.raises(FileNotFoundError, match="never completely written"):
        ckpt_lib.load(path)


def test_a_bad_uri_names_the_fix():
    with pytest.raises(ValueError, match="cannot be opened .*AWS_ENDPOINT_URL"):
        fs.exists("nosuchscheme://bucket/x")


def test_a_bucket_that_does_not_exist_fails_before_anything_starts(s3_server):
    from tests.fakes import InProcessExecutor

    with pytest.raises(tune.StorageNotWritableError, match=r"s3://no-such-bucket-tuner/results/exp: .*storage_path"):
        tune.run(lambda config: tune.report({"x": 1}), storage_path="s3://no-such-bucket-tuner/results", name="exp",
                 verbose=0, _executor=InProcessExecutor())


def test_optuna_search_on_a_uri_keeps_its_study_in_the_snapshot_and_resumes(s3_server):
    from searchers import OptunaSearch
    from tests.fakes import InProcessExecutor
    from tests.integration.trainables import quadratic

    root = f"{s3_server}/optuna"
    first = tune.run(quadratic, config={"x": tune.uniform(0, 6)}, num_samples=4, metric="loss", mode="min",
                     search_alg=OptunaSearch(seed=0), storage_path=root, name="exp", seed=0, verbose=0,
                     log_to_tensorboard=False, _executor=InProcessExecutor())
    state = json.loads(fs.read_text(f"{root}/exp/state.json"))
    assert len(state["searcher"]["trials"]) == 4  # the study itself, not a file name: no local log on a URI
    assert not fs.exists(f"{root}/exp/optuna_journal.jsonl")
    again = tune.resume(f"{root}/exp", num_samples=6, verbose=0, _executor=InProcessExecutor())
    assert len(again.trials) == 6
    assert [t.config for t in again.trials[:4]] == [t.config for t in first.trials]
