"""Distributed trainables for the tests: a tiny DDP model whose ranks train on different
shards, and leave a record of where and how they ran in the trial directory."""

from __future__ import annotations

import json
import os
import signal
import time

import tuner as tune


def _record(name: str, payload: dict) -> None:
    directory = os.path.join(tune.get_context().trial_dir, "ranks")
    os.makedirs(directory, exist_ok=True)
    with open(os.path.join(directory, name + ".tmp"), "w") as f:
        json.dump(payload, f)
    os.replace(os.path.join(directory, name + ".tmp"), os.path.join(directory, name))


def records(trial_dir: str, prefix: str) -> list[dict]:
    """What the ranks left in the trial's working directory (``trial_dir/artifacts``, the
    trainable's ``tune.get_context().trial_dir``)."""
    directory = os.path.join(trial_dir, "artifacts", "ranks")
    names = sorted(n for n in os.listdir(directory) if n.startswith(prefix) and n.endswith(".json"))
    return [json.load(open(os.path.join(directory, n))) for n in names]


def linear_loop(config):
    """y = x @ w on shards that differ per rank; one SGD step per epoch; checkpoint every epoch."""
    import ray
    import torch
    import torch.distributed as dist
    from torch import nn

    torch.set_num_threads(1)
    ctx = tune.get_context()
    rank, world = ctx.world_rank, ctx.world_size
    ckpt = tune.get_checkpoint()
    start = ckpt["epoch"] if ckpt else 0
    pg = ray.util.get_current_placement_group()
    _record(f"start{start:03d}_rank{rank}.json", {
        "rank": rank, "world": world, "local_rank": ctx.local_rank, "pid": os.getpid(),
        "node": ctx.node_id, "pg": pg.id.hex() if pg else None, "backend": dist.get_backend(),
        "env": {k: os.environ.get(k) for k in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")},
        "restored_epoch": start, "dist_rank": dist.get_rank(), "dist_world": dist.get_world_size(),
    })
    torch.manual_seed(rank)  # different initial weights per rank: DDP must broadcast rank 0's
    model = nn.parallel.DistributedDataParallel(nn.Linear(4, 1))
    optimizer = torch.optim.SGD(model.parameters(), lr=config["lr"])
    if ckpt:
        model.module.load_state_dict(ckpt["model"])
    generator = torch.Generator().manual_seed(100 + rank)  # this rank's shard
    x = torch.randn(32, 4, generator=generator)
    y = x @ torch.tensor([[1.0], [-2.0], [3.0], [0.5]])
    for epoch in range(start + 1, config["epochs"] + 1):
        optimizer.zero_grad()
        loss = nn.functional.mse_loss(model(x), y)
        loss.backward()  # gradients all-reduced across ranks here
        optimizer.step()
        if rank == config.get("kill_rank") and epoch == config.get("kill_at") and start == 0:
            os.kill(os.getpid(), signal.SIGKILL)
        if rank == config.get("raise_rank") and epoch == config.get("raise_at"):
            raise ValueError(f"rank {rank} fails on purpose at epoch {epoch}")
        time.sleep(config.get("sleep", 0.0))
        tune.report({"epoch": epoch, "loss": float(loss), "reported_by": rank},
                    checkpoint={"model": model.module.state_dict(), "epoch": epoch})
    _record(f"final_rank{rank}.json", {"params": [p.detach().flatten().tolist() for p in model.parameters()],
                                        "shard_sum": float(x.sum())})


ddp_linear = tune.distributed(linear_loop, num_workers=2, resources_per_worker={"cpu": 1}, backend="gloo")
