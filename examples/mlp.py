"""A small PyTorch MLP on scikit-learn's digits (ships with scikit-learn: no download).

    python examples/mlp.py          # ASHA over lr, width and depth on 2 CPUs

A fifth of the digits is held out (``test_data``) and never seen by a sweep: the
trials train on the rest and report their accuracy on a validation split of it,
so the best trial's checkpoint can be evaluated honestly afterwards
(``build_model`` + ``accuracy``, as notebooks/01_quickstart.ipynb does).
"""

from __future__ import annotations

import tuner as tune


def _tensors(*arrays):
    import torch

    return tuple(torch.tensor(a, dtype=torch.float32 if a.ndim == 2 else torch.long) for a in arrays)


def _development_and_test():
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    x, y = load_digits(return_X_y=True)
    return train_test_split(x / 16.0, y, test_size=0.2, random_state=0, stratify=y)


def _data(seed: int):
    """Train and validation splits of the development data (the held-out fifth excluded)."""
    from sklearn.model_selection import train_test_split

    x_dev, _, y_dev, _ = _development_and_test()
    x_train, x_val, y_train, y_val = train_test_split(x_dev, y_dev, test_size=0.25, random_state=seed)
    return _tensors(x_train, y_train, x_val, y_val)


def test_data():
    """The held-out fifth of the digits (inputs, labels), never used by ``train``."""
    _, x_test, _, y_test = _development_and_test()
    return _tensors(x_test, y_test)


def build_model(config):
    """The MLP of ``config`` (``layers`` hidden layers of ``width``), untrained."""
    from torch import nn

    layers, width = [], 64
    for i in range(config["layers"]):
        layers += [nn.Linear(64 if i == 0 else config["width"], config["width"]), nn.ReLU()]
        width = config["width"]
    return nn.Sequential(*layers, nn.Linear(width, 10))


def accuracy(model, x, y) -> float:
    import torch

    model.eval()
    with torch.no_grad():
        return (model(x).argmax(1) == y).float().mean().item()


def train(config):
    """One epoch per report; the checkpoint is the model's state dict."""
    import torch
    from torch import nn

    torch.set_num_threads(1)
    x_train, y_train, x_val, y_val = _data(seed=0)
    model = build_model(config)
    optimizer = torch.optim.Adam(model.parameters(), lr=config["lr"])
    generator = torch.Generator().manual_seed(tune.get_context().seed or 0)
    start, first_epoch = tune.get_checkpoint(), 0
    if start is not None:  # a retry, a resume or a PBT exploit: go on from where the checkpoint was
        model.load_state_dict(start["model"])
        optimizer.load_state_dict(start["optimizer"])
        first_epoch = start.get("epoch", 0)
        if "generator" in start:
            generator.set_state(start["generator"])
    for epoch in range(first_epoch + 1, config["epochs"] + 1):
        model.train()
        for idx in torch.randperm(len(x_train), generator=generator).split(config["batch_size"]):
            optimizer.zero_grad()
            nn.functional.cross_entropy(model(x_train[idx]), y_train[idx]).backward()
            optimizer.step()
        model.eval()
        with torch.no_grad():
            logits = model(x_val)
            acc = (logits.argmax(1) == y_val).float().mean().item()
            loss = nn.functional.cross_entropy(logits, y_val).item()
        tune.report({"acc": acc, "val_loss": loss},
                    checkpoint={"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                                "epoch": epoch, "generator": generator.get_state()})


SPACE = {
    "lr": tune.loguniform(1e-4, 1e-1),
    "layers": tune.choice([1, 2, 3]),
    "width": tune.choice([32, 64, 128]),
    "batch_size": 64,
    "epochs": 15,
}

if __name__ == "__main__":
    from schedulers import ASHAScheduler

    results = tune.run(train, config=SPACE, num_samples=12, metric="acc", mode="max", seed=0,
                       scheduler=ASHAScheduler(max_t=15, grace_period=1, reduction_factor=3), name="mlp-asha")
    print("best config:", results.best_config, "acc:", results.best_result["acc"])
