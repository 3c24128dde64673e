"""Shared fixtures. One local Ray per test session; unit tests never touch it."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time

import pytest

os.environ.setdefault("RAY_DEDUP_LOGS", "0")


@pytest.fixture(scope="session")
def ray_local():
    """A 2-CPU local Ray shared by every integration test of the session."""
    import ray

    if not ray.is_initialized():
        # The repository root on the workers' PYTHONPATH (the raylet passes its environment on):
        # drivers that join this Ray from elsewhere (a notebook kernel, a `tuner` subprocess in a
        # temporary directory) hand their workers trainables from `examples/` by reference.
        root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        before = os.environ.get("PYTHONPATH")
        os.environ["PYTHONPATH"] = root + (os.pathsep + before if before else "")
        try:
            # address="local": a fresh Ray, never one that a `ray start` elsewhere on the machine points at
            ray.init(address="local", num_cpus=2, num_gpus=0, include_dashboard=False,
                     log_to_driver=False, configure_logging=False)
        finally:
            if before is None:
                os.environ.pop("PYTHONPATH")
            else:
                os.environ["PYTHONPATH"] = before
    yield ray
    ray.shutdown()


@pytest.fixture
def storage(tmp_path):
    """A fresh storage_path for one test's experiments."""
    path = tmp_path / "results"
    path.mkdir()
    return str(path)


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory):
    """A real S3-compatible server (moto_server) on 127.0.0.1, reached through the usual AWS
    environment variables, as users reach theirs. Yields a fresh ``s3://bucket`` URI."""
    pytest.importorskip("moto", reason="moto[server] (the test extra) runs the S3-compatible server")
    boto3 = pytest.importorskip("boto3")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    log = open(tmp_path_factory.mktemp("moto") / "moto.log", "w")
    proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                            stdout=log, stderr=subprocess.STDOUT)
    env = {"AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}", "AWS_ACCESS_KEY_ID": "testing",
           "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1", "AWS_EC2_METADATA_DISABLED": "true"}
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        client = boto3.client("s3")
        deadline = time.time() + 60
        while True:
            try:
                client.create_bucket(Bucket="tuner-tests")
                break
            except Exception:  # noqa: BLE001 - not listening yet
                if time.time() > deadline or proc.poll() is not None:
                    raise
                time.sleep(0.3)
        yield "s3://tuner-tests"
    finally:
        os.kill(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
        log.close()
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
