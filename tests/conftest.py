"""Shared fixtures. One local Ray per test session; unit tests never touch it."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("RAY_DEDUP_LOGS", "0")


@pytest.fixture(scope="session")
def ray_local():
    """A 2-CPU local Ray shared by every integration test of the session."""
    import ray

    if not ray.is_initialized():
        # address="local": a fresh Ray, never one that a `ray start` elsewhere on the machine points at
        ray.init(address="local", num_cpus=2, num_gpus=0, include_dashboard=False, log_to_driver=False,
                 configure_logging=False)
    yield ray
    ray.shutdown()


@pytest.fixture
def storage(tmp_path):
    """A fresh storage_path for one test's experiments."""
    path = tmp_path / "results"
    path.mkdir()
    return str(path)
