"""Checkpoints of a worker that cannot see a local ``storage_path``: moved through Ray.

Workers write checkpoints straight into storage. On a cluster that works when
``storage_path`` is a URI or a directory mounted on every node; a plain local
directory of the driver's node is not there on the others. The driver writes a
random token into the experiment directory (``TOKEN_FILE``); a worker that
reads another token (or none) does not see the storage, and then goes through
a ``StorageRelay``: one small actor (0 CPUs) on the driver's node, started by
the driver when the storage is local and the cluster has more than one node.
The worker sends the checkpoint's bytes to the relay, which publishes it in
storage; restores come back the same way. The bytes cross Ray's object store
but never the driver process. No relay (a cluster that grew after the start)
fails the trial with an error that names the fix; nothing is dropped silently.
"""

from __future__ import annotations

import functools
import os
import secrets
import shutil
from typing import Any

from tuner.storage import checkpoint as ckpt_lib
from tuner.storage import fs

TOKEN_FILE = ".tuner_storage_token"


def write_token(experiment_path: str) -> str | None:
    """Mark a local experiment directory with a fresh token (None for a URI: every node sees it)."""
    if fs.is_uri(experiment_path):
        return None
    token = secrets.token_hex(8)
    fs.write_text(fs.join(experiment_path, TOKEN_FILE), token)
    return token


@functools.lru_cache(maxsize=8)
def sees_storage(experiment_path: str, token: str | None) -> bool:
    """True when this process sees the driver's experiment directory (same token in it)."""
    if token is None:
        return True
    try:
        return fs.read_text(fs.join(experiment_path, TOKEN_FILE)) == token
    except OSError:
        return False


def relay_name(token: str) -> str:
    return f"tuner_storage_relay_{token}"


class StorageRelay:
    """Publishes and reads checkpoints on the driver's node for workers elsewhere (a Ray actor)."""

    def save(self, packed: tuple[str, bytes], destination: str) -> str:
        checkpoint = ckpt_lib.unpack(packed)
        try:
            return ckpt_lib.save(checkpoint, destination)
        finally:
            if isinstance(checkpoint, ckpt_lib.Checkpoint):
                shutil.rmtree(checkpoint.path, ignore_errors=True)

    def load(self, path: str) -> tuple[str, bytes]:
        checkpoint = ckpt_lib.load(path)
        return ckpt_lib.pack(checkpoint)

    def upload_dir(self, packed: tuple[str, bytes], destination: str) -> None:
        """Files of a trial's working directory, into ``destination`` (artifacts)."""
        checkpoint = ckpt_lib.unpack(packed)
        try:
            fs.makedirs(destination)
            shutil.copytree(checkpoint.path, destination, dirs_exist_ok=True)
        finally:
            shutil.rmtree(checkpoint.path, ignore_errors=True)


def start_relay(token: str) -> Any:
    """The relay actor on this (the driver's) node."""
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    node = ray.get_runtime_context().get_node_id()
    return ray.remote(StorageRelay).options(
        name=relay_name(token), num_cpus=0, max_concurrency=4, lifetime=None,
        scheduling_strategy=NodeAffinitySchedulingStrategy(node, soft=False)).remote()


def needs_relay(experiment_path: str) -> bool:
    """A local storage_path on a Ray cluster of more than one node."""
    import ray

    return not fs.is_uri(experiment_path) and sum(1 for n in ray.nodes() if n.get("Alive")) > 1


class RelayClient:
    """The worker's side: save and restore through the relay actor."""

    def __init__(self, token: str, experiment_path: str, trial_id: str) -> None:
        import ray

        self._ray = ray
        try:
            self._actor = ray.get_actor(relay_name(token))
        except ValueError:
            node = ray.get_runtime_context().get_node_id()
            raise RuntimeError(
                f"Trial {trial_id} runs on node {node}, which cannot see the storage_path {experiment_path} (a "
                "directory local to the driver's node), and no storage relay is running. Pass a storage_path that "
                "every node sees: a shared mount (NFS...) or a URI such as s3://bucket/prefix.") from None

    def save(self, checkpoint: Any, destination: str) -> str:
        return self._ray.get(self._actor.save.remote(ckpt_lib.pack(checkpoint), destination))

    def load(self, path: str) -> Any:
        return ckpt_lib.unpack(self._ray.get(self._actor.load.remote(path)))

    def upload_dir(self, local_dir: str, destination: str) -> None:
        if os.listdir(local_dir):
            packed = ckpt_lib.pack(ckpt_lib.Checkpoint.from_directory(local_dir))
            self._ray.get(self._actor.upload_dir.remote(packed, destination))
