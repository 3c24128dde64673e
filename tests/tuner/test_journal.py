"""The journal's one owner: every event round-trips, the schema version is written
once and checked, a torn tail is tolerated only at the end, and replay rebuilds
trials the way the run loop changed them."""

from __future__ import annotations

import pytest

from tuner.storage import journal
from tuner.storage.journal import Event
from tuner.trial import TrialStatus

ONE_OF_EACH = [
    journal.TrialAdded("trial_00000", {"x": 1}, seed=7, resources="cpu=1"),
    journal.Result("trial_00000", {"training_iteration": 1, "loss": 0.5}),
    journal.Status("trial_00000", "RUNNING"),
    journal.Checkpoint("trial_00000", 1, "/e/trials/trial_00000/checkpoints/000001"),
    journal.CheckpointDeleted("trial_00000", "/e/trials/trial_00000/checkpoints/000001"),
    journal.Rollback("trial_00000", 0),
    journal.ConfigChanged("trial_00000", {"x": 2}, time=1.0, iteration=1, donor_id="trial_00001",
                          old_config={"x": 1}, donor_checkpoint="/d", donor_iteration=1, info={"score": 1}),
    journal.DecisionMade("trial_00000", "STOP", "rung 1", {"rung": 1}, 1),
    journal.Retry("trial_00000", 1, "Traceback..."),
    journal.Resumed(2.0, 1),
    journal.Interrupted("KeyboardInterrupt()", ["trial_00000"]),
    journal.TimeBudgetReached(60.0),
    journal.StopperEndedExperiment("TimeoutStopper", 2.5),
    journal.LockTakenOver("host", 123, "its PID is not running", 2.7),
    journal.ExperimentEnd(3.0),
    journal.DecisionPoint("trial_00000"),
    journal.Chosen(None),
    journal.StopsPolled(), journal.StopperCalled("trial_00000"),
]


def _write(path, records):
    writer = journal.JournalWriter(str(path))
    writer.write_many(records)
    writer.close()


def test_every_event_has_a_record_and_round_trips(tmp_path):
    assert {type(r).event for r in ONE_OF_EACH} | {Event.SCHEMA} == set(Event)
    _write(tmp_path, ONE_OF_EACH)
    assert journal.read(str(tmp_path)) == ONE_OF_EACH
    offsets = [at for at, _ in journal.read_with_offsets(str(tmp_path))]
    text = (tmp_path / journal.JOURNAL).read_bytes()
    assert [text.count(b"\n", 0, at) for at in offsets] == list(range(1, len(ONE_OF_EACH) + 1))
    first = (tmp_path / journal.JOURNAL).read_text().splitlines()[0]
    assert first == '{"event":"schema","version":%d}' % journal.SCHEMA_VERSION


def test_the_schema_header_is_written_once_and_appends_continue(tmp_path):
    _write(tmp_path, ONE_OF_EACH[:1])
    _write(tmp_path, ONE_OF_EACH[1:2])
    lines = (tmp_path / journal.JOURNAL).read_text().splitlines()
    assert [line.count('"event":"schema"') for line in lines] == [1, 0, 0]
    assert journal.read(str(tmp_path)) == ONE_OF_EACH[:2]


@pytest.mark.parametrize("first, message", [
    ('{"event":"schema","version":99}', r"journal schema version 99, but this tuner reads version 1"),
    ('{"event":"trial_added","trial_id":"a","config":{}}', r"the first line is not the journal's schema header"),
])
def test_another_schema_is_refused_by_reader_and_writer(tmp_path, first, message):
    (tmp_path / journal.JOURNAL).write_text(first + "\n")
    with pytest.raises(journal.JournalError, match=message):
        journal.read(str(tmp_path))
    with pytest.raises(journal.JournalError, match=message):
        journal.JournalWriter(str(tmp_path))


def test_a_torn_tail_is_ignored_then_cut_but_a_damaged_middle_raises(tmp_path):
    _write(tmp_path, ONE_OF_EACH[:2])
    with open(tmp_path / journal.JOURNAL, "a") as f:
        f.write('{"event":"result","trial_id":"tri')  # the driver was killed mid-write
    assert journal.read(str(tmp_path)) == ONE_OF_EACH[:2]
    _write(tmp_path, ONE_OF_EACH[2:3])  # the next driver cuts the torn line before appending
    assert journal.read(str(tmp_path)) == ONE_OF_EACH[:3]

    with open(tmp_path / journal.JOURNAL, "a") as f:
        f.write("garbage\n")
    _write(tmp_path, ONE_OF_EACH[3:4])
    with pytest.raises(journal.JournalError, match=r"journal.jsonl, line 5: not a JSON record"):
        journal.read(str(tmp_path))


def test_unknown_events_and_fields_name_the_schema(tmp_path):
    with pytest.raises(journal.JournalError, match=r"unknown event 'nope'; known: schema, trial_added"):
        journal.decode({"event": "nope"})
    with pytest.raises(journal.JournalError, match=r"a 'rollback' record with fields \['trial_id'\] does not "
                                                   r"match the schema \(trial_id, iteration\)"):
        journal.decode({"event": "rollback", "trial_id": "a"})


def test_a_missing_journal_says_it_is_not_an_experiment(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"is not an experiment directory \(no journal.jsonl in it\)"):
        journal.read(str(tmp_path / "nope"))


def test_replay_rebuilds_trials_and_checkpoint_iterations_from_events(tmp_path):
    a = "trial_00000"
    _write(tmp_path, [
        journal.TrialAdded(a, {"x": 1}, seed=3),
        *[journal.Result(a, {"training_iteration": i}) for i in (1, 2, 3)],
        journal.Checkpoint(a, 2, "/ckpt/latest"),  # the directory's name says nothing of its iteration
        journal.Status(a, "RUNNING"),
        journal.Rollback(a, 2),
        journal.ConfigChanged(a, {"x": 5}, iteration=2),
        journal.DecisionMade(a, "PAUSE", "yield", {}, 2),
        journal.Interrupted("KeyboardInterrupt()", [a]),
    ])
    replayed = journal.replay(str(tmp_path))
    trial = replayed.trials[a]
    assert [r["training_iteration"] for r in trial.history] == [1, 2]
    assert trial.last_result == {"training_iteration": 2}
    assert trial.config == {"x": 5} and trial.seed == 3 and trial.status is TrialStatus.RUNNING
    assert (trial.checkpoint_path, trial.checkpoint_iteration) == ("/ckpt/latest", 2)
    assert [r.event for r in replayed.lineage] == [Event.CONFIG, Event.DECISION]
    assert replayed.ending is Event.INTERRUPTED
    assert journal.last_ending(str(tmp_path)) is Event.INTERRUPTED
