"""Scheduling overhead: this tuner against Ray Tune, same local Ray, same 2 CPUs.

Workloads (1 CPU per trial, trainables that do nothing but report):
    W1: 100 trials x 1 result     (trial churn)
    W2:  20 trials x 100 results  (result throughput)
    W3:   2 trials x 1000 results (raw streaming)

    python benchmarks/overhead.py [--skip-ray-tune-default]

Prints a markdown table: wall time of each run (actor start-up included) and
the ratio of Ray Tune's best setting to this tuner.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys

if __package__ in (None, ""):  # run as a script: make the repository root importable
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks._common import markdown_table, ray_tune_available, scratch_dir, start_ray, timed

WORKLOADS = {"W1": (100, 1), "W2": (20, 100), "W3": (2, 1000)}


def tuner_trainable(config):
    import tuner as tune

    for i in range(config["results"]):
        tune.report({"loss": float(i)})


def ray_trainable(config):
    from ray import tune as rtune

    for i in range(config["results"]):
        rtune.report({"loss": float(i)})


def run_tuner(trials: int, results: int, tensorboard: bool = False) -> float:
    import tuner as tune

    seconds, out = timed(lambda: tune.run(tuner_trainable, config={"results": results}, num_samples=trials,
                                          storage_path=scratch_dir("tuner"), verbose=0,
                                          log_to_tensorboard=tensorboard))
    assert sum(len(t.history) for t in out.trials) == trials * results
    return seconds


def run_ray_tune(trials: int, results: int, reuse_actors: bool | None) -> float:
    from ray import tune as rtune

    def go():
        kwargs = {} if reuse_actors is None else {"reuse_actors": reuse_actors}
        tuner = rtune.Tuner(
            ray_trainable, param_space={"results": results},
            tune_config=rtune.TuneConfig(num_samples=trials, **kwargs),
            run_config=rtune.RunConfig(storage_path=scratch_dir("raytune"), verbose=0),
        )
        return tuner.fit()

    seconds, grid = timed(go)
    assert len(grid) == trials
    return seconds


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skip-ray-tune-default", action="store_true",
                        help="skip Ray Tune with its default reuse_actors (slow on W1)")
    parser.add_argument("--workloads", default="W1,W2,W3")
    parser.add_argument("--repeats", type=int, default=3,
                        help="runs of the tuner and of Ray Tune reuse_actors=True per workload (median)")
    parser.add_argument("--tensorboard-repeats", type=int, default=11,
                        help="W2 runs with the TensorBoard export off and on (0 skips)")
    args = parser.parse_args(argv)
    start_ray(2)
    have_ray_tune = ray_tune_available()
    rows = []
    for name in args.workloads.split(","):
        trials, results = WORKLOADS[name]
        peer_default = peer_reuse = None
        ours_runs, reuse_runs = [], []
        for _ in range(args.repeats):  # alternating, so that a noisy moment hits both
            ours_runs.append(run_tuner(trials, results))
            print(f"{name} tuner: {ours_runs[-1]:.2f}s", file=sys.stderr, flush=True)
            if have_ray_tune:
                reuse_runs.append(run_ray_tune(trials, results, reuse_actors=True))
                print(f"{name} ray tune reuse: {reuse_runs[-1]:.2f}s", file=sys.stderr, flush=True)
        ours = statistics.median(ours_runs)
        if have_ray_tune:
            peer_reuse = statistics.median(reuse_runs)
            if not args.skip_ray_tune_default:
                peer_default = run_ray_tune(trials, results, reuse_actors=None)
                print(f"{name} ray tune default: {peer_default:.2f}s", file=sys.stderr, flush=True)
        best_peer = min(x for x in (peer_default, peer_reuse) if x is not None) if have_ray_tune else None
        fmt = lambda s: "n/a" if s is None else f"{s:.2f}"  # noqa: E731
        rows.append([
            f"{name}: {trials} trials x {results} results", fmt(ours), f"{trials * results / ours:,.0f}",
            fmt(peer_default), fmt(peer_reuse),
            "n/a" if best_peer is None else f"{best_peer / ours:.1f}x",
        ])
    print(f"Medians of {args.repeats} runs (Ray Tune's default: one run).\n")
    print(markdown_table(["workload", "tuner (s)", "tuner results/s", "Ray Tune default (s)",
                          "Ray Tune reuse_actors=True (s)", "speed-up vs Ray Tune's best"], rows))
    if args.tensorboard_repeats:
        print()
        print(tensorboard_cost(args.tensorboard_repeats))


def tensorboard_cost(repeats: int) -> str:
    """W2 with the HParams export off and on, alternating, median of ``repeats`` each."""
    off, on = [], []
    for _ in range(repeats):
        off.append(run_tuner(20, 100, tensorboard=False))
        on.append(run_tuner(20, 100, tensorboard=True))
    m_off, m_on = statistics.median(off), statistics.median(on)
    return markdown_table(["W2 (20 trials x 100 results)", "median of runs (s)", "slowdown"], [
        ["TensorBoard export off", f"{m_off:.3f}", ""],
        ["TensorBoard export on", f"{m_on:.3f}", f"{(m_on / m_off - 1) * 100:+.1f}%"],
    ])


if __name__ == "__main__":
    main()
