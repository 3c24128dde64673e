"""The config schedule behind a PBT trial, from the lineage in the journal, so the
best trial can be trained again alone."""

from __future__ import annotations

import dataclasses
import os
from typing import Any
from tuner.validation import BadValueError

Schedule = list  # of (start_iteration, config), start iterations ascending, the first one 1


def replay(experiment_dir: str, trial_id: str) -> Schedule:
    """The config schedule that produced ``trial_id``'s final state.

    Follows exploits back through donors: a recipient's state is the donor's
    state at the donor's checkpoint, so its schedule is the donor's schedule up
    to that checkpoint, then the recipient's new config. Iterations count the
    training steps the final state went through (the trial's own
    ``training_iteration`` when every donor's checkpoint was from the same
    iteration as the exploit, as in synchronous PBT).

    Returns:
        ``[(start_iteration, config), ...]``: ``config`` applies from
        ``start_iteration`` until the next segment starts; adjacent equal configs
        are merged. ``config_at(schedule, i)`` gives the config of iteration ``i``.

    Example::

        schedule = replay(results.experiment_path, results.best_trial.trial_id)

        def retrain(config):
            for i in range(1, 101):
                step(model, **config_at(schedule, i))
    """
    from tuner.storage import journal

    path = os.path.abspath(os.path.expanduser(experiment_dir))
    replayed = journal.replay(path)
    trials = replayed.trials
    if trial_id not in trials:
        raise BadValueError("trial_id", trial_id, f"a trial of {path}: "
                            f"{', '.join(trials) or 'it has none'}")
    exploits = [dataclasses.asdict(r) for r in replayed.lineage if isinstance(r, journal.ConfigChanged)]
    initial = {tid: t.config for tid, t in trials.items()}
    for record in reversed(exploits):  # a trial's first exploit knows its initial config
        initial[record["trial_id"]] = record["old_config"]
    chain = ancestry(exploits, trial_id)
    root = chain[0]["donor_id"] if chain else trial_id
    segments, offset = [(1, initial[root])], 0  # the root ancestor's own config
    for record in chain:  # each record's donor is the trial of the previous step
        reached = _donor_iteration(record) + offset
        segments = [s for s in segments if s[0] <= reached] + [(reached + 1, record["config"])]
        offset = reached - (record.get("iteration") or 0)
    merged: Schedule = []
    for start, config in segments:
        if not merged or merged[-1][1] != config:
            merged.append((start, config))
    return merged


def config_at(schedule: Schedule, iteration: int) -> dict[str, Any]:
    """The config of ``iteration`` (1-based) in a schedule from ``replay``."""
    if not schedule:
        raise ValueError("The value of `schedule` is [], but must hold at least one (start, config) segment.")
    current = schedule[0][1]
    for start, config in schedule:
        if start > iteration:
            break
        current = config
    return current


def ancestry(lineage: list[dict[str, Any]], trial_id: str) -> list[dict[str, Any]]:
    """The exploits (oldest first) that made ``trial_id``'s final state: its last exploit, the
    donor's last exploit before that one, and so on back to an original trial.

    ``lineage`` is ``results.pbt_lineage()`` (or the journal's config events), in order.
    """
    chain, before = [], len(lineage)
    while True:
        index = next((i for i in range(before - 1, -1, -1) if lineage[i]["trial_id"] == trial_id), None)
        if index is None:
            return chain[::-1]
        chain.append(lineage[index])
        trial_id, before = lineage[index]["donor_id"], index


def _donor_iteration(record: dict[str, Any]) -> int:
    """The donor's iteration at the checkpoint copied (from its checkpoint event), else the exploit's."""
    donor_iteration = record.get("donor_iteration")
    return int(donor_iteration if donor_iteration is not None else record.get("iteration") or 0)
