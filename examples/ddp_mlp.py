"""The digits MLP of examples/mlp.py trained with PyTorch DDP on 2 workers per trial, tuned with ASHA.

    python examples/ddp_mlp.py                 # 8 trials, 2 ranks each
    python examples/ddp_mlp.py --samples 4 --epochs 5

Each trial is a gang of 2 ranks in one placement group: ``gpu`` bundles (one
GPU per rank, ``nccl``) when this machine has at least 2 CUDA devices, else one
CPU per rank with ``gloo``. Each rank trains on its own half of the training
set; DDP all-reduces the gradients, so both ranks hold the same model, and
rank 0's report is the trial's.
"""

from __future__ import annotations

import argparse
import os
import sys

if __package__ in (None, ""):  # run as a script: make the repository root importable (examples.mlp)
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import tuner as tune
from examples.mlp import _data

WORKERS = 2


def train_loop(config):
    """One rank of a trial: the loop below with this tuner's rank, checkpoint and report."""
    ctx = tune.get_context()
    train_epochs(config, ctx.world_rank, ctx.world_size, tune.get_checkpoint(), tune.report,
                 seed=ctx.seed or 0, gpu=bool(ctx.gpu_ids))


def train_epochs(config, rank, world_size, restored, report, seed=0, gpu=False):
    """One epoch per report on this rank's shard (framework-free, so benchmarks/distributed.py
    runs the very same loop under Ray Train); the checkpoint holds model, optimizer and epoch."""
    import torch
    from torch import nn

    torch.set_num_threads(1)
    device = torch.device("cuda" if gpu and torch.cuda.is_available() else "cpu")
    x_train, y_train, x_val, y_val = (t.to(device) for t in _data(seed=0))
    x_train, y_train = x_train[rank::world_size], y_train[rank::world_size]
    layers, width = [], 64
    for i in range(config["layers"]):
        layers += [nn.Linear(64 if i == 0 else config["width"], config["width"]), nn.ReLU()]
        width = config["width"]
    model = nn.Sequential(*layers, nn.Linear(width, 10)).to(device)
    ddp = nn.parallel.DistributedDataParallel(model, device_ids=[0] if device.type == "cuda" else None)
    optimizer = torch.optim.Adam(ddp.parameters(), lr=config["lr"])
    first_epoch = 0
    if restored is not None:
        model.load_state_dict(restored["model"])
        optimizer.load_state_dict(restored["optimizer"])
        first_epoch = restored["epoch"] + 1
    generator = torch.Generator().manual_seed(seed + rank)
    # Both ranks must take the same number of steps (each step is an all-reduce): the shorter shard sets it.
    steps = len(y_train) // config["batch_size"]
    for epoch in range(first_epoch, config["epochs"]):
        ddp.train()
        order = torch.randperm(len(x_train), generator=generator).to(device)
        for idx in order[: steps * config["batch_size"]].split(config["batch_size"]):
            optimizer.zero_grad()
            nn.functional.cross_entropy(ddp(x_train[idx]), y_train[idx]).backward()
            optimizer.step()
        model.eval()
        with torch.no_grad():  # every rank holds the same model: the same validation numbers
            logits = model(x_val)
            acc = (logits.argmax(1) == y_val).float().mean().item()
            loss = nn.functional.cross_entropy(logits, y_val).item()
        report({"acc": acc, "val_loss": loss},
               checkpoint={"model": model.state_dict(), "optimizer": optimizer.state_dict(), "epoch": epoch})


def worker_resources() -> tuple[dict, str]:
    """One GPU per rank where there are enough GPUs for the gang, else one CPU with gloo."""
    try:
        import torch

        if torch.cuda.device_count() >= WORKERS:
            return {"cpu": 1, "gpu": 1}, "nccl"
    except ImportError:
        pass
    return {"cpu": 1}, "gloo"


def space(epochs: int) -> dict:
    return {
        "lr": tune.loguniform(1e-4, 1e-1),
        "layers": tune.choice([1, 2, 3]),
        "width": tune.choice([32, 64, 128]),
        "batch_size": 32,
        "epochs": epochs,
    }


def main(num_samples: int = 8, epochs: int = 10, seed: int = 0, storage_path: str | None = None,
         verbose: int = 1, name: str | None = "ddp-mlp-asha") -> tune.ExperimentResults:
    from schedulers import ASHAScheduler

    per_worker, backend = worker_resources()
    trainable = tune.distributed(train_loop, num_workers=WORKERS, resources_per_worker=per_worker, backend=backend)
    return tune.run(trainable, config=space(epochs), num_samples=num_samples, metric="acc", mode="max", seed=seed,
                    scheduler=ASHAScheduler(max_t=epochs, grace_period=1, reduction_factor=3),
                    storage_path=storage_path, name=name, verbose=verbose)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=8)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    per_worker, backend = worker_resources()
    print(f"{WORKERS} ranks per trial, {per_worker} each, backend {backend}")
    results = main(args.samples, args.epochs, args.seed, name=None)
    print("best config:", results.best_config, "acc:", results.best_result["acc"])
