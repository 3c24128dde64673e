"""A trainable whose module the workers cannot import: the run ends at the first trial with an error
that names the module and the fix (it used to fail every trial of the sweep, one worker each), and
the experiment goes on with tune.resume once the module can be loaded."""

from __future__ import annotations

import importlib
import sys

import pytest

import tuner as tune

pytestmark = pytest.mark.usefixtures("ray_local")

MODULE = '''
import tuner as tune


def one_result(config):
    tune.report({"loss": config["x"] ** 2})
'''


@pytest.fixture
def driver_only_module(tmp_path):
    """A module this process imports from a directory on its own sys.path only (not the workers')."""
    (tmp_path / "code").mkdir()
    (tmp_path / "code" / "only_on_the_driver.py").write_text(MODULE)
    sys.path.insert(0, str(tmp_path / "code"))
    try:
        yield importlib.import_module("only_on_the_driver")
    finally:
        sys.path.remove(str(tmp_path / "code"))
        sys.modules.pop("only_on_the_driver", None)


def test_an_unimportable_trainable_ends_the_run_at_once_and_resume_goes_on(tmp_path, driver_only_module):
    import ray.cloudpickle

    with pytest.raises(tune.WorkerImportError) as raised:
        tune.run(driver_only_module.one_result, config={"x": tune.uniform(-1, 1)}, num_samples=30,
                 storage_path=str(tmp_path / "results"), name="sweep", verbose=0)
    message = str(raised.value)
    assert "No module named 'only_on_the_driver'" in message
    assert "pip install -e ." in message and "tune.resume" in message
    started = tune.load(str(tmp_path / "results" / "sweep")).trials
    assert len(started) <= 3, "the run stopped at the first trial, not after failing each one"
    assert not any(t.status == "ERROR" for t in started), "no trial is blamed for the missing module"

    ray.cloudpickle.register_pickle_by_value(driver_only_module)  # ship the module's code with the trainable
    try:
        results = tune.resume(str(tmp_path / "results" / "sweep"), trainable=driver_only_module.one_result,
                              verbose=0)
    finally:
        ray.cloudpickle.unregister_pickle_by_value(driver_only_module)
    assert len(results.trials) == 30
    assert all(t.status == "TERMINATED" and t.last_result["loss"] == t.config["x"] ** 2 for t in results.trials)
