"""The journal cannot silently lie: a torn tail is cut before appending, a damaged line in the middle
stops load and resume naming the file and line, `tuner repair` drops it (keeping a backup), and a
trial id is never given twice."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

import tuner as tune
from tests.reliability.helpers import ROOT
from tests.reliability.test_damage import _interrupted, _run
from tuner.storage.journal import JournalError


def _lines(path):
    with open(os.path.join(path, "journal.jsonl"), "rb") as f:
        return f.read().split(b"\n")


def test_a_torn_tail_is_cut_before_the_resumed_run_appends(storage):
    path = _interrupted(storage)
    with open(os.path.join(path, "journal.jsonl"), "ab") as f:
        f.write(b'{"event":"rollback","trial_id":"trial_00000","itera')  # the driver died mid-write
    results = _run(storage, resume=True)
    for trial in list(results.trials) + list(tune.load(path).trials):
        assert [r["step"] for r in trial.history] == list(range(1, 7)), trial.trial_id
    assert all(json.loads(line) for line in _lines(path) if line)  # every line whole again


def test_a_damaged_middle_line_is_named_and_repair_drops_it_without_reusing_the_id(storage):
    path = _interrupted(storage, n=12)
    lines = _lines(path)
    number = next(i for i, line in enumerate(lines, 1) if b'"trial_added"' in line and b"trial_00001" in line)
    lines[number - 1] = lines[number - 1].replace(b'"config"', b'"con\xfffig', 1)[:40] + b"\x00garbage"
    with open(os.path.join(path, "journal.jsonl"), "wb") as f:
        f.write(b"\n".join(lines))
    params = open(os.path.join(path, "trials", "trial_00001", "params.json")).read()

    for attempt in (lambda: tune.load(path), lambda: _run(storage, resume=True)):
        with pytest.raises(JournalError, match=rf"{path}/journal.jsonl, line {number}: not a JSON record .*"
                                               rf"`tuner repair {path}` drops the damaged lines"):
            attempt()

    out = subprocess.run([sys.executable, "-m", "tuner.cli", "repair", path], cwd=ROOT, capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert f"dropped 1 (backup: {path}/journal.jsonl.bak-" in out.stdout
    assert f"  line {number}: not JSON" in out.stdout
    assert "Trials whose creation record was dropped" in out.stdout and "trial_00001" in out.stdout
    backups = [n for n in os.listdir(path) if n.startswith("journal.jsonl.bak-")]
    assert len(backups) == 1 and open(os.path.join(path, backups[0]), "rb").read() == b"\n".join(lines)

    assert "trial_00001" not in [t.trial_id for t in tune.load(path).trials]
    results = _run(storage, resume=True)
    ids = [t.trial_id for t in results.trials]
    assert "trial_00001" not in ids and len(ids) == len(set(ids)) == 6
    assert max(ids) > "trial_00005"  # the replacement got a fresh id
    assert open(os.path.join(path, "trials", "trial_00001", "params.json")).read() == params  # untouched

    again = subprocess.run([sys.executable, "-m", "tuner.cli", "repair", path], cwd=ROOT, capture_output=True,
                           text=True, timeout=120)
    assert "nothing to repair" in again.stdout
