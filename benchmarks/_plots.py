"""Figures shared by the time-to-accuracy benchmarks: best score so far, median and IQR over seeds."""

from __future__ import annotations


def value_at(curve: list[tuple[float, int, float]], x: float, axis: int) -> float:
    """The curve's best score at ``x`` on ``axis`` (NaN before its first point)."""
    best = float("nan")
    for point in curve:
        if point[axis] > x:
            break
        best = point[2]
    return best


def plot(runs: dict, tools: list[str], axis: int, label: str, path: str, methods: tuple[str, ...],
         ylabel: str = "best validation accuracy", ylim: tuple[float, float] | None = (0.8, 1.0)) -> None:
    """One panel per method, one line per tool: the median over seeds of the best score so far
    against ``axis`` of the curves (0: seconds, 1: training units), with the inter-quartile band.
    ``runs`` maps (tool, method, seed) to a curve of (seconds, units, best so far)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    fig, axes = plt.subplots(1, len(methods), figsize=(4.2 * max(len(methods), 1.5), 3.4), sharey=True,
                             squeeze=False)
    for ax, method in zip(axes[0], methods):
        for tool in tools:
            curves = [c for (tl, m, _), c in runs.items() if tl == tool and m == method and c]
            if not curves:
                continue
            grid = np.linspace(0, max(c[-1][axis] for c in curves), 60)
            values = np.array([[value_at(c, x, axis) for x in grid] for c in curves])
            line, = ax.plot(grid, np.median(values, axis=0), label=tool)
            ax.fill_between(grid, np.percentile(values, 25, axis=0), np.percentile(values, 75, axis=0),
                            color=line.get_color(), alpha=0.2)
        ax.set_title(method)
        ax.set_xlabel(label)
        if ylim:
            ax.set_ylim(*ylim)
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel(ylabel)
    axes[0][0].legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
