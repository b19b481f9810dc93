"""The time budget on the real clock: ``python -m minivit train --time-budget`` as a whole process.

    python benchmarks/budget_realtime.py                        # smoke preset, 20 s, 3 runs
    python benchmarks/budget_realtime.py --budget 90s --runs 1 --preset smoke
    python benchmarks/budget_realtime.py --budget 60s --load-after 15 --runs 1     # the machine turns slower
    python benchmarks/budget_realtime.py --budget 60s --load-after 15 --minivit-root /tmp/base   # another checkout

Each run starts ``python -m minivit train --preset P --time-budget B`` in a fresh process, times it
from start to exit, and reads the plan back from the run's ``config.json`` and ``last.npz``. The
report gives, per run: the budget, the wall time (and its ratio to the budget), the first plan's
steps, the re-plans made at the evaluations (minivit/train/replan.py), the last horizon and the steps done. With the machine's CPU model and NumPy GEMM speed beside it, since a shared
machine's load changes what a second buys.

``--load-after T``: T seconds after each run starts (after its calibration, for budgets over ~20 s),
``--load-procs`` busy processes (default: one per core) start spinning and run until the training
ends, so the machine turns about twice as slow under a plan made on a quiet one: the case the
re-plans are for. ``--minivit-root DIR`` runs the training of another checkout (e.g. the commit
before re-planning, ``git worktree add /tmp/base 34b8bda``), timed by this same script.

This was ``tests/test_budget.py::test_real_time_budget_on_the_cli`` (within 15% of a 20 s budget);
it moved here because a wall-clock bound on a shared CI machine fails whenever other work starts
(it did: 23.4 s of 20 s). CI keeps the simulated-clock budget tests.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from minivit.train.budget import parse_duration  # noqa: E402
from minivit.storage.checkpoint import read_meta  # noqa: E402


def gemm_gflops(n=2048, repeats=5) -> float:
    """NumPy float32 GEMM speed (n x n @ n x n, best of ``repeats``), GFLOP/s."""
    a = np.random.default_rng(0).standard_normal((n, n), dtype=np.float32)
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        a @ a
        best = min(best, time.perf_counter() - t)
    return 2 * n ** 3 / best / 1e9


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


@contextlib.contextmanager
def busy_load(procs: int, after_s: float | None):
    """From ``after_s`` seconds on (None: never), ``procs`` processes spinning on the CPU; all of
    them are killed when the block ends."""
    started, stop = [], None
    if after_s is not None and procs > 0:
        import threading

        stop = threading.Event()

        def start():
            if not stop.wait(after_s):
                started.extend(subprocess.Popen([sys.executable, "-c", "while True: pass"])
                               for _ in range(procs))

        timer = threading.Thread(target=start, daemon=True)
        timer.start()
    try:
        yield started
    finally:
        if stop is not None:
            stop.set()
            timer.join()
        for proc in started:
            proc.kill()
            proc.wait()


def one_run(preset: str, budget: str, out: Path, root: Path = REPO, load_procs: int = 0,
            load_after: float | None = None) -> dict:
    """One whole training process under ``--time-budget`` (minivit from ``root``), with a busy load
    from ``load_after`` s on: wall time and the plan it made and kept."""
    env = {**os.environ, "MPLBACKEND": "Agg", "PYTHONPATH": str(root)}
    t0 = time.monotonic()
    with busy_load(load_procs, load_after) as loaders:
        r = subprocess.run([sys.executable, "-m", "minivit", "train", "--preset", preset, "--time-budget", budget,
                            "--out", str(out)], cwd=root, capture_output=True, text=True, env=env)
        took = time.monotonic() - t0
        loaded = len(loaders)
    if r.returncode != 0:
        raise SystemExit(f"error: the run failed (exit {r.returncode}):\n{r.stderr[-2000:]}")
    plan = json.loads((out / "config.json").read_text())["plan"]
    done = read_meta(out / "last.npz")["global_step"]
    seconds = parse_duration(budget)
    horizons = plan.get("horizons") or [[0, plan["steps"]]]
    return dict(budget_s=seconds, wall_s=round(took, 2), ratio=round(took / seconds, 3),
                load=f"{loaded} from {load_after:g} s" if loaded else "none",
                first_plan=horizons[0][1], replans=len(plan.get("replans") or []), steps_planned=plan["steps"],
                steps_done=done)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--preset", default="smoke", help="the recipe (default smoke)")
    p.add_argument("--budget", default="20s", help="train --time-budget (default 20s)")
    p.add_argument("--runs", type=int, default=3, help="how many runs, one after the other (default 3)")
    p.add_argument("--load-after", type=float, default=None, metavar="T",
                   help="T seconds into each run, start --load-procs busy processes (the machine turns slower)")
    p.add_argument("--load-procs", type=int, default=os.cpu_count(), help="busy processes (default: one per core)")
    p.add_argument("--minivit-root", type=Path, default=REPO, help="train with minivit from this checkout")
    p.add_argument("--json", action="store_true", help="print the rows as JSON")
    args = p.parse_args(argv)
    root = args.minivit_root.resolve()
    if not (root / "minivit" / "__init__.py").is_file():
        p.error(f"--minivit-root: expected a minivit checkout (with minivit/__init__.py), got {root}")
    machine = dict(cpu=cpu_model(), cores=os.cpu_count(), gemm_gflops=round(gemm_gflops(), 1),
                   blas=np.show_config(mode="dicts").get("Build Dependencies", {}).get("blas", {}).get("name", "?"))
    rows = []
    with tempfile.TemporaryDirectory(prefix="minivit-budget-") as tmp:
        for i in range(args.runs):
            rows.append(one_run(args.preset, args.budget, Path(tmp) / f"run{i}", root, args.load_procs,
                                args.load_after))
    if args.json:
        print(json.dumps(dict(machine=machine, preset=args.preset, minivit_root=str(root), runs=rows), indent=1))
        return 0
    print(f"{machine['cpu']} ({machine['cores']} cores), BLAS {machine['blas']}, "
          f"NumPy float32 GEMM {machine['gemm_gflops']} GFLOP/s; preset {args.preset}; minivit from {root}")
    print("| budget (s) | busy load | wall (s) | wall / budget | first plan (steps) | re-plans | last horizon | "
          "steps done |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['budget_s']:g} | {r['load']} | {r['wall_s']:.2f} | {r['ratio']:.3f} | {r['first_plan']} | "
              f"{r['replans']} | "
              f"{r['steps_planned']} | {r['steps_done']} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
