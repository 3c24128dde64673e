"""A whole experiment on an S3-compatible server (moto_server on 127.0.0.1, the `s3_server`
fixture), reached as users reach theirs: `storage_path="s3://bucket/prefix"` and the AWS_*
environment variables. A driver SIGKILLed mid-sweep resumes from the URI with nothing lost;
PBT exploits copy checkpoints in the bucket; tune.load, `tuner ls/show` and the TensorBoard
event files work from the URI."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid

import pytest

import tuner as tune
from schedulers import PopulationBasedTraining
from tests.integration import trainables as tr
from tests.integration.test_pbt import STEPS, check_exploits_continue_exactly
from tuner.storage import append, fs, journal
from tuner.storage import checkpoint as ckpt_lib

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SWEEP = """
import tuner as tune
from tests.integration.trainables import directory_checkpoints
tune.run(directory_checkpoints, config={{"peak": tune.grid_search([3, 5, 7]), "steps": 8, "sleep": 0.3}},
         metric="score", mode="max", keep_checkpoints_num=2, checkpoint_score_attr="score",
         storage_path={storage!r}, name="killed", verbose=0, seed=0)
"""


@pytest.fixture
def bucket(s3_server):
    return f"{s3_server}/{uuid.uuid4().hex[:8]}"


def _seen(uri):
    """(trial, step) -> score of every result the journal holds now (nothing while it does not exist)."""
    try:
        results = tune.load(uri)
    except (FileNotFoundError, journal.JournalError):
        return {}
    return {(t.trial_id, r["step"]): r["score"] for t in results.trials for r in t.history}


def _cli(*args):
    out = subprocess.run([sys.executable, "-m", "tuner", *args], cwd=ROOT, capture_output=True, text=True,
                         timeout=120, env=os.environ.copy())
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_a_driver_killed_mid_sweep_resumes_from_the_uri_with_nothing_lost(ray_local, bucket, tmp_path):
    uri = f"{bucket}/results"
    path = f"{uri}/killed"
    env = {**os.environ, "RAY_ADDRESS": ray_local.get_runtime_context().gcs_address}
    proc = subprocess.Popen([sys.executable, "-c", SWEEP.format(storage=uri)], cwd=ROOT, env=env,
                            start_new_session=True)
    try:
        deadline = time.time() + 180
        while len(seen := _seen(path)) < 5:  # a few results journaled, trials still running
            assert proc.poll() is None and time.time() < deadline, "the sweep ended before it could be killed"
            time.sleep(0.2)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    seen = _seen(path)  # everything durable at the kill
    assert 5 <= len(seen) < 24
    assert not fs.exists(f"{path}/journal.jsonl")  # an object store: the journal is segments
    assert append.exists(f"{path}/journal.jsonl")

    resumed = tune.resume(path, verbose=0)
    assert resumed.experiment_path == path
    for trial in resumed.trials:
        assert [r["step"] for r in trial.history] == list(range(1, 9)), trial.trial_id  # no gap, no duplicate
        assert trial.status.value == "TERMINATED"
    final = {(t.trial_id, r["step"]): r["score"] for t in resumed.trials for r in t.history}
    assert all(final[key] == score for key, score in seen.items())  # nothing seen before the kill lost
    assert any(r["restored_from"] > 0 for t in resumed.trials for r in t.history)  # resumed from checkpoints

    # the best checkpoint by score, read back from the bucket
    best = resumed.best_checkpoint
    with open(os.path.join(best.to_directory(), "state.txt")) as f:
        assert int(f.read()) == resumed.best_config["peak"]
    for trial in resumed.trials:
        assert len(trial.checkpoints) == 2 and all(ckpt_lib.is_complete(p) for p in trial.checkpoints)
        # the per-trial views, written whole at the trial's end
        lines = fs.read_text(fs.join(trial.path, "result.jsonl")).splitlines()
        assert [json.loads(line)["step"] for line in lines] == list(range(1, 9))
        assert "started at 0" in fs.read_text(fs.join(trial.path, "artifacts", "notes.txt"))
    assert fs.exists(f"{path}/state.json") and fs.exists(f"{path}/experiment.json")

    # tuner ls / show from the URI
    listed = json.loads(_cli("ls", uri, "--format", "json"))
    assert [(e["name"], e["status"], e["trials"]) for e in listed] == [("killed", "finished", 3)]
    shown = json.loads(_cli("show", path, "--format", "json"))
    assert shown["experiment"]["counts"] == {"TERMINATED": 3}
    assert sorted(row["trial_id"] for row in shown["trials"]) == sorted(t.trial_id for t in resumed.trials)
    best = json.loads(_cli("show", path, "--best", "--format", "json"))
    assert best["checkpoint"].startswith(f"{path}/trials/")

    # TensorBoard's event files are in the bucket; the copy `tuner tensorboard` serves from reads them
    mirror = fs.Mirror(f"{path}/tensorboard", str(tmp_path / "tb"))
    mirror.pull()
    from tuner.tensorboard import event_file as tbw

    runs = {name for name in os.listdir(tmp_path / "tb") if name.startswith("trial_")}
    assert runs == {t.trial_id for t in resumed.trials}
    for trial in resumed.trials:
        steps = {e.step for name in os.listdir(tmp_path / "tb" / trial.trial_id) if "tfevents" in name
                 for e in tbw.read_events(str(tmp_path / "tb" / trial.trial_id / name))
                 if any(v.tag == "score" for v in e.summary.value)}
        # what the resumed driver wrote, at least (the killed one uploaded what it had flushed)
        assert steps >= set(range(trial.history[-1]["restored_from"] + 1, 9))


def test_pbt_exploits_copy_checkpoints_in_the_bucket(ray_local, bucket):
    pbt = PopulationBasedTraining(perturbation_interval=3, quantile_fraction=0.5, seed=0,
                                  hyperparam_mutations={"inc": [1, 2, 3, 5, 10, 20]})
    results = tune.run(tr.pbt_counter, config={"inc": tune.grid_search([1, 2, 10, 20]), "sleep": 0.02},
                       metric="count", mode="max", scheduler=pbt, stop={"training_iteration": STEPS},
                       storage_path=bucket, name="pbt", verbose=0, seed=0, keep_checkpoints_num=2,
                       log_to_tensorboard=False)
    assert results.experiment_path == f"{bucket}/pbt"
    exploits = check_exploits_continue_exactly(results)  # the journal read back from the bucket
    assert exploits
    for e in exploits:
        assert e["donor_checkpoint"].startswith(bucket)
    # each recipient's copy is its own: kept checkpoints all load, whatever the donors pruned since
    loaded = tune.load(results.experiment_path)
    for trial in loaded.trials:
        assert len(trial.checkpoints) == 2
        assert [ckpt_lib.load(p)["count"] for p in trial.checkpoints][-1] == trial.last_result["count"]
    assert [(x["trial_id"], x["donor_id"]) for x in loaded.pbt_lineage()] == [
        (e["trial_id"], e["donor_id"]) for e in exploits]
