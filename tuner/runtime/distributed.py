"""``tune.distributed``: one trial trains on a gang of workers with ``torch.distributed`` (DDP).

The trial's placement group has one bundle per rank. Rank 0 runs in the trial's
own actor (bundle 0), so its ``tune.report`` is the trial's, with no hop; ranks
1..N-1 are actors this module starts in bundles 1..N-1. Rank 0 picks the
master address and a free port; every rank gets ``MASTER_ADDR``,
``MASTER_PORT``, ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``LOCAL_WORLD_SIZE``
and joins the process group (``gloo`` on CPU, ``nccl`` when the bundles hold
GPUs; Ray sets each rank's ``CUDA_VISIBLE_DEVICES`` to its own bundle's GPUs).

The rule for results: every rank may call ``tune.report``; the tuner records
rank 0's metrics and checkpoint (and applies the scheduler's decisions there);
the other ranks' calls return at once and their checkpoints are not even
pickled. Every rank's ``tune.get_checkpoint()`` returns the checkpoint the trial
restarts from (retry, resume, PBT exploit).

The gang lives and dies with the trial: when rank 0 ends (finished, stopped,
paused, pruned, failed) the peers are killed and the process group destroyed;
the executor then kills the trial's actor and removes its placement group. A
peer that raises or dies fails the whole trial at once (its traceback is the
trial's error), even while rank 0 is blocked in a collective; ``max_failures``
then restarts the whole gang from the trial's latest checkpoint.
"""

from __future__ import annotations

import datetime
import functools
import os
import socket
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from tuner.execution.resources import PlacementGroupFactory
from tuner.runtime import session as session_lib
from tuner.runtime.messages import Command
from tuner.storage import checkpoint as ckpt_lib
from tuner.validation import check_int

BACKENDS = ("gloo", "nccl")
_WATCH_S = 0.5  # how often rank 0's monitor looks at its peers


def distributed(train_loop: Callable[[dict[str, Any]], Any], *, num_workers: int = 2,
                resources_per_worker: Mapping[str, float] | None = None, backend: str | None = None,
                strategy: str = "PACK", timeout_s: float = 1800.0) -> DistributedTrainable:
    """Make a trainable whose every trial runs ``train_loop(config)`` on ``num_workers`` ranks.

    Example::

        def train_loop(config):
            model = torch.nn.parallel.DistributedDataParallel(build(config))
            rank, size = tune.get_context().world_rank, tune.get_context().world_size
            for epoch in range(10):
                loss = fit(model, shard(data, rank, size))
                tune.report({"loss": loss}, checkpoint={"model": model.module.state_dict()})

        tune.run(tune.distributed(train_loop, num_workers=2), config=space, num_samples=8, ...)

    Args:
        train_loop: ``f(config)``, run on every rank after ``torch.distributed`` is set up.
        num_workers: ranks per trial: the trial's default resources are this many bundles
            of ``resources_per_worker``. A ``resources_per_trial`` given to ``tune.run``
            replaces them, with one rank per bundle.
        resources_per_worker: one rank's bundle, ``{"cpu": 1}`` by default (``{"cpu": 1, "gpu": 1}``
            for one GPU per rank).
        backend: ``"gloo"`` or ``"nccl"``; default ``nccl`` when the bundles hold GPUs, else ``gloo``.
        strategy: how the ranks' bundles are placed: PACK, SPREAD, STRICT_PACK or STRICT_SPREAD.
        timeout_s: how long ranks wait for each other to join and in a collective.
    """
    return DistributedTrainable(train_loop, num_workers=num_workers, resources_per_worker=resources_per_worker,
                                backend=backend, strategy=strategy, timeout_s=timeout_s)


class DistributedTrainable:
    """The function trainable ``tune.distributed`` returns; see there."""

    def __init__(self, train_loop: Callable[[dict[str, Any]], Any], *, num_workers: int = 2,
                 resources_per_worker: Mapping[str, float] | None = None, backend: str | None = None,
                 strategy: str = "PACK", timeout_s: float = 1800.0) -> None:
        if not callable(train_loop):
            raise TypeError(f"The train_loop {train_loop!r} is not callable; pass a function train_loop(config).")
        check_int(num_workers, "num_workers", 1)
        if backend is not None and backend not in BACKENDS:
            raise ValueError(f"The value of `backend` is {backend!r}, but must be 'gloo', 'nccl' or None (automatic).")
        if not isinstance(timeout_s, (int, float)) or timeout_s <= 0:
            raise ValueError(f"The value of `timeout_s` is {timeout_s!r}, but must be a number > 0.")
        self.train_loop = train_loop
        self.num_workers = num_workers
        self.resources_per_worker = dict(resources_per_worker or {"cpu": 1})
        self.backend = backend
        self.strategy = strategy
        self.timeout_s = float(timeout_s)
        self.default_resources_per_trial = PlacementGroupFactory([self.resources_per_worker] * num_workers,
                                                                 strategy=strategy)
        self.__name__ = getattr(train_loop, "__name__", type(self).__name__)

    def __call__(self, config: dict[str, Any]) -> None:
        """Rank 0, in the trial's own worker: start the peers, join the group, train, tear down."""
        session = session_lib.current()
        ctx = session.context
        bundles = [dict(b) for b in (ctx.bundles or [ctx.resources])]  # normalized by the run loop
        backend = self.backend or ("nccl" if any(b.get("GPU") for b in bundles) else "gloo")
        gang = _Gang(self, ctx, bundles, backend, session)
        try:
            gang.start(config)
            self.train_loop(config)
            gang.join()
        except BaseException:
            gang.raise_peer_error()
            raise
        finally:
            gang.teardown()


@functools.lru_cache(maxsize=1)
def _peer_class() -> Any:
    import ray

    return ray.remote(max_restarts=0)(_Peer)


class _Gang:
    """Rank 0's view of the trial's ranks: starts, watches and ends the peers."""

    def __init__(self, trainable: DistributedTrainable, ctx: session_lib.TrialContext, bundles: list[dict],
                 backend: str, session: session_lib.Session) -> None:
        self.trainable, self.ctx, self.bundles, self.backend, self.session = trainable, ctx, bundles, backend, session
        self.peers: list[Any] = []
        self.running: dict[Any, int] = {}  # ObjectRef of a peer's run() -> its rank
        self.error: str | None = None
        self._done = threading.Event()
        self._watcher: threading.Thread | None = None
        self._saved_env: dict[str, str | None] = {}

    def start(self, config: dict[str, Any]) -> None:
        import ray
        from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

        world = len(self.bundles)
        if world > 1 and self.ctx.placement_group is None:
            raise RuntimeError(f"The trial asks for {world} ranks but runs outside a placement group; "
                               "run it through tune.run with resources_per_trial bundles.")
        peer_cls = _peer_class()
        for rank in range(1, world):
            bundle = self.bundles[rank]
            options: dict[str, Any] = {
                "num_cpus": bundle.get("CPU", 0), "num_gpus": bundle.get("GPU", 0),
                "resources": {k: v for k, v in bundle.items() if k not in ("CPU", "GPU", "memory")},
                "scheduling_strategy": PlacementGroupSchedulingStrategy(
                    self.ctx.placement_group, placement_group_bundle_index=rank,
                    placement_group_capture_child_tasks=True),
            }
            if bundle.get("memory"):
                options["memory"] = bundle["memory"]
            self.peers.append(peer_cls.options(**options).remote())
        nodes = [self.ctx.node_id] + ray.get([p.node_id.remote() for p in self.peers], timeout=self.trainable.timeout_s)
        address, port = _free_address()
        packed = ckpt_lib.pack(self.session.checkpoint) if self.session.checkpoint is not None else None
        for rank, peer in enumerate(self.peers, start=1):
            ref = peer.run.remote(self.trainable.train_loop, config, _rank_env(rank, nodes, address, port),
                                  self._peer_context(rank, nodes), self.backend, self.trainable.timeout_s, packed)
            self.running[ref] = rank
        self._watcher = threading.Thread(target=self._watch, name=f"gang-{self.ctx.trial_id}", daemon=True)
        self._watcher.start()
        env = _rank_env(0, nodes, address, port)
        self._saved_env = {k: os.environ.get(k) for k in env}
        os.environ.update(env)
        self.ctx.world_rank, self.ctx.world_size, self.ctx.local_rank = 0, world, int(env["LOCAL_RANK"])
        _init_process_group(self.backend, env, self.trainable.timeout_s)

    def _peer_context(self, rank: int, nodes: list[str]) -> dict[str, Any]:
        return {"trial_id": self.ctx.trial_id, "trial_dir": self.ctx.trial_dir,
                "experiment_path": self.ctx.experiment_path, "seed": self.ctx.seed,
                "resources": self.bundles[rank], "bundles": self.ctx.bundles,
                "placement_strategy": self.ctx.placement_strategy, "world_rank": rank, "world_size": len(nodes),
                "local_rank": nodes[:rank].count(nodes[rank])}

    def _watch(self) -> None:
        """Fail the trial the moment a peer raises or dies, even if rank 0 is stuck in a collective."""
        import ray

        while not self._done.is_set() and self.running:
            ready, _ = ray.wait(list(self.running), num_returns=1, timeout=_WATCH_S)
            for ref in ready:
                rank = self.running.pop(ref)
                try:
                    ray.get(ref)
                except Exception as exc:  # noqa: BLE001 - a peer's failure is the trial's
                    if self._done.is_set():
                        return
                    self.error = f"Rank {rank} of {len(self.bundles)} failed; the whole gang stops.\n{exc}"
                    self._kill_peers()  # rank 0's collectives with the dead peers now fail
                    self.session.finish(error=self.error)
                    return

    def join(self) -> None:
        """Rank 0 is done: wait for the peers to finish their loop too (their errors count)."""
        deadline = time.monotonic() + self.trainable.timeout_s
        while self.running and self.error is None and time.monotonic() < deadline:
            time.sleep(0.05)
        self.raise_peer_error()
        if self.running:
            raise TimeoutError(f"Ranks {sorted(self.running.values())} did not finish within {self.trainable.timeout_s}s "
                               "of rank 0; raise `timeout_s` of tune.distributed if that is expected.")

    def raise_peer_error(self) -> None:
        if self.error is not None:
            raise RuntimeError(self.error)

    def teardown(self) -> None:
        self._done.set()
        self._kill_peers()
        _destroy_process_group()
        for key, value in self._saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value

    def _kill_peers(self) -> None:
        import ray

        for peer in self.peers:
            try:
                ray.kill(peer, no_restart=True)
            except Exception:  # noqa: BLE001 - already gone
                pass


class _Peer:
    """Rank 1..N-1: one process for one trial's loop, killed when the trial ends."""

    def node_id(self) -> str:
        import ray

        return ray.get_runtime_context().get_node_id()

    def run(self, train_loop: Callable, config: dict[str, Any], env: dict[str, str], context: dict[str, Any],
            backend: str, timeout_s: float, packed: Any) -> None:
        from tuner.runtime.worker import _ray_placement, seed_everything

        os.environ.update(env)
        ctx = session_lib.TrialContext(**context, **_ray_placement())
        restored = ckpt_lib.unpack(packed) if packed is not None else None
        session_lib.set_current(_PeerSession(ctx, restored))  # type: ignore[arg-type]
        seed_everything(ctx.seed)
        os.makedirs(ctx.trial_dir, exist_ok=True)
        os.chdir(ctx.trial_dir)
        _init_process_group(backend, env, timeout_s)
        try:
            train_loop(config)
        finally:
            _destroy_process_group()


class _PeerSession:
    """What ``tune.report`` and friends see on ranks other than 0: reports return at once."""

    def __init__(self, context: session_lib.TrialContext, checkpoint: Any) -> None:
        self.context = context
        self.trial_id = context.trial_id
        self.checkpoint = checkpoint
        self.iteration = 0

    def report(self, metrics: dict[str, Any], checkpoint: Any = None) -> Command:
        if not isinstance(metrics, dict):
            raise TypeError(f"tune.report takes a dict of metrics, got {type(metrics).__name__}: {metrics!r}")
        self.iteration += 1
        return Command.CONTINUE


def _rank_env(rank: int, nodes: list[str], address: str, port: int) -> dict[str, str]:
    return {"MASTER_ADDR": address, "MASTER_PORT": str(port), "RANK": str(rank), "WORLD_SIZE": str(len(nodes)),
            "LOCAL_RANK": str(nodes[:rank].count(nodes[rank])), "LOCAL_WORLD_SIZE": str(nodes.count(nodes[rank]))}


def _free_address() -> tuple[str, int]:
    """This node's address and a port free on it now (rank 0's store binds it right after)."""
    import ray

    address = ray.util.get_node_ip_address()
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("", 0))
        return address, sock.getsockname()[1]


def _init_process_group(backend: str, env: dict[str, str], timeout_s: float) -> None:
    import torch.distributed as dist

    if backend == "nccl":
        import torch

        torch.cuda.set_device(0)  # Ray made this rank's own GPUs the only visible ones
    dist.init_process_group(backend, init_method=f"tcp://{env['MASTER_ADDR']}:{env['MASTER_PORT']}",
                            rank=int(env["RANK"]), world_size=int(env["WORLD_SIZE"]),
                            timeout=datetime.timedelta(seconds=timeout_s))


def _destroy_process_group() -> None:
    try:
        import torch.distributed as dist

        if dist.is_available() and dist.is_initialized():
            dist.destroy_process_group()
    except Exception:  # noqa: BLE001 - peers already gone: nothing left to tear down
        pass
