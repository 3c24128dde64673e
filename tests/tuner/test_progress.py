"""What each ``verbose`` level prints, on a log, a terminal and in Jupyter (no Ray)."""

from __future__ import annotations

import io
import os
import re

import pytest
from rich.console import Console

import tuner as tune
from tests.fakes import InProcessExecutor
from tuner.progress import ProgressReporter

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def train(config):
    for step in range(1, 4):
        tune.report({"loss": config["x"] / step, "aux": {"depth": step}})


def sweep(storage, verbose, **kwargs):
    return tune.run(train, config={"x": tune.grid_search([1.0, 2.0])}, metric="loss", mode="min",
                    storage_path=storage, verbose=verbose, log_to_tensorboard=False,
                    _executor=InProcessExecutor(), **kwargs)


def test_verbose_0_prints_nothing(storage, capsys):
    sweep(storage, 0)
    assert capsys.readouterr().out == ""


@pytest.mark.parametrize("verbose", [1, 2])
def test_verbose_1_and_2_end_with_the_summary_and_no_result_lines(storage, capsys, verbose):
    results = sweep(storage, verbose)
    out = capsys.readouterr().out
    assert "Sweep finished" in out and f"Best trial {results.best_trial.trial_id}: loss=0.3333" in out
    assert not re.search(r"^trial_\d+ iter", out, re.M)  # no per-result lines below level 3


def test_verbose_3_prints_every_result_as_the_journal_has_it(storage, capsys):
    results = sweep(storage, 3)
    out = capsys.readouterr().out
    printed = re.findall(r"^(trial_\d+) iter (\d+): loss=(\S+) aux/depth=(\d+)$", out, re.M)
    expected = [(t.trial_id, str(r["training_iteration"]), f"{r['loss']:.4g}", str(r["aux"]["depth"]))
                for t in tune.load(results.experiment_path).trials for r in t.history]
    assert sorted(printed) == sorted(expected) and len(expected) == 6
    assert len(re.findall(r"^trial_\d+ ended", out, re.M)) == 2


def test_verbose_1_prints_a_status_line_when_due(storage, capsys):
    results = sweep(storage, 1)
    capsys.readouterr()
    reporter = ProgressReporter("loss", "min", verbose=1, line_every_s=0.0, console=Console(file=io.StringIO()))

    class Runner:  # what update() reads of the run loop: its trials and start time
        trials = {t.trial_id: t for t in results.trials}
        start_time = 0.0

    reporter.update(Runner())
    line = reporter.console.file.getvalue()
    assert "2 terminated" in line and f"best loss=0.3333 ({results.best_trial.trial_id})" in line


def test_terminal_table_is_drawn_in_place_and_removed(storage):
    results = sweep(storage, 0)
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=120)
    reporter = ProgressReporter("loss", "min", verbose=2, refresh_s=0.0, console=console)

    class Runner:
        trials = {t.trial_id: t for t in results.trials}
        start_time = 0.0

        class executor:
            resources_in_use = staticmethod(lambda: {"CPU": 1.0})
            cluster_resources = staticmethod(lambda: {"CPU": 2.0})

    reporter.update(Runner())
    reporter.update(Runner())
    reporter.close(Runner())
    text = out.getvalue()
    assert text.count("TERMINATED") >= 4 and "resources: CPU 1/2" in text  # drawn at least twice
    assert text.endswith("\x1b[1A\x1b[2K" * 5)  # then its five lines erased: the summary takes their place


def test_jupyter_table_is_one_output_updated_in_place(tmp_path):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    code = f"""
import sys, time
sys.path.insert(0, {ROOT!r})
import tuner as tune
from tests.fakes import InProcessExecutor

def slow(config):
    for step in range(1, 9):
        time.sleep(0.25)
        tune.report({{"loss": config["x"] / step}})

results = tune.run(slow, config={{"x": tune.grid_search([1.0, 2.0, 3.0])}}, metric="loss", mode="min",
                   storage_path={str(tmp_path)!r}, verbose=2, log_to_tensorboard=False,
                   _executor=InProcessExecutor(slots=2))
"""
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(code)])
    updates = []

    class Client(nbclient.NotebookClient):
        def process_message(self, msg, cell, cell_index):
            if msg["msg_type"] == "update_display_data":
                updates.append(msg["content"]["data"]["text/plain"])
            return super().process_message(msg, cell, cell_index)

    Client(notebook, timeout=120, kernel_name="python3").execute()
    outputs = notebook.cells[0].outputs
    assert not [o for o in outputs if o.output_type == "error"]
    shown = [o for o in outputs if o.output_type == "display_data"]
    assert len(shown) == 1, outputs  # one output, however many times it was redrawn: no table twice
    live = [u for u in updates if "resources:" in u]
    assert live and "3 terminated" in live[-1] and live[-1].count("TERMINATED") == 3  # the live table's end
    final = shown[0].data["text/plain"]  # then the summary took its place, as on a terminal
    assert updates[-1] == final and "resources:" not in final
    assert "Sweep finished" in final and "Best trial trial_00000: loss=0.125" in final
    assert final.count("TERMINATED") == 3 and "<pre" in shown[0].data["text/html"]
