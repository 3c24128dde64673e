"""Nodes that leave and join: a worker node lost mid-sweep (its trials restart on the other node
from their checkpoints, the others undisturbed, the journal names the lost node) and a node an
autoscaler adds for a waiting trial."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.cluster.conftest import ROOT
from tuner.storage import journal

pytestmark = [pytest.mark.cluster, pytest.mark.timeout(900)]


def test_lost_node_trials_restart_elsewhere_from_their_checkpoints(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "tests.cluster.lost_node_script", str(tmp_path)], cwd=ROOT,
                          capture_output=True, text=True, timeout=800, env={**os.environ, "RAY_ADDRESS": ""})
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    seen = json.loads(next(line[7:] for line in proc.stdout.splitlines() if line.startswith("RESULT ")))
    assert seen["removed"], "the node was removed mid-sweep"
    hit = [t for t in seen["trials"] if seen["removed"] in t["nodes"]]
    spared = [t for t in seen["trials"] if seen["removed"] not in t["nodes"]]
    assert hit and spared
    for t in seen["trials"]:
        assert t["status"] == "TERMINATED", t
        assert t["steps"] == list(range(1, 31)), t  # gap-free and duplicate-free across the restart
    for t in hit:
        assert t["failures"] == 1 and len(t["nodes"]) == 2, t  # restarted once, on the surviving node
        assert "lost with its node" in t["error"], t["error"]
    for t in spared:
        assert t["failures"] == 0, t  # trials elsewhere were not disturbed
    assert any("lost with its node" in str(r) for r in journal.read(seen["path"])), "the journal records the lost node"


def test_waiting_trials_are_visible_to_the_autoscaler(tmp_path):
    """TUNER_AUTOSCALING=1: a shape no node holds yet waits and is requested from Ray's autoscaler;
    when a node that fits joins, the trial runs."""
    proc = subprocess.run([sys.executable, "-m", "tests.cluster.autoscale_script", str(tmp_path)], cwd=ROOT,
                          capture_output=True, text=True, timeout=800, env={**os.environ, "RAY_ADDRESS": ""})
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    seen = json.loads(next(line[7:] for line in proc.stdout.splitlines() if line.startswith("RESULT ")))
    assert seen["request"] and "late" in json.dumps(seen["request"]), seen
    assert seen["status"] == ["TERMINATED"], seen
