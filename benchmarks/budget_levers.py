"""One controlled lever experiment of issue #15: a time-budgeted run of a recipe with some settings
changed, validated on held-out training images, written as one line of a JSON-lines log.

    python benchmarks/budget_levers.py --name lr3e-3 --set lr=3e-3 --budget 8m --seed 0
    python benchmarks/budget_levers.py --name drop50 --set model.token_drop=0.5 --budget 8m --seed 1
    python benchmarks/budget_levers.py --report          # docs/budget_levers.jsonl -> docs/budget_levers.md

Each run is ``python -m minivit train``'s Trainer with the recipe (``--preset``, default ``cpu``)
and ``--set FIELD=VALUE`` overrides (a TrainConfig field, or ``model.FIELD`` / ``augment.FIELD``;
VALUE is JSON, else a string), a ``--budget`` (the whole run, from this process's start, as
``train --time-budget``), and ``--val-split`` images held out of the 50,000 training images
(default 5,000; the same images for every run): the model is evaluated on them, never on the test
set. Run one at a time on a 2-core machine: the budget's plan is calibrated at the start, so
anything else running then shortens the plan (and anything later lengthens the run).

The log line holds the setting, the seed, the budget and the plan (steps, epochs), the final and
the best validation accuracy, the run's training images/s, its wall time, and the machine's NumPy
float32 GEMM speed measured right after the run (outside the budget), so that runs on machines
of different speed can be related. ``--report`` writes the Markdown table of all logged runs,
grouped by setting (mean and spread over seeds).
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

LOG = REPO / "docs" / "budget_levers.jsonl"
REPORT = REPO / "docs" / "budget_levers.md"


def parse_set(items):
    """['lr=3e-3', 'model.dim=192'] -> {'lr': 0.003, 'model.dim': 192} (JSON values, else strings)."""
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise SystemExit(f"error: --set expects FIELD=VALUE, got {item!r}")
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value
    return out


def apply_overrides(cfg, overrides: dict):
    """Set TrainConfig fields and model./augment. sub-fields; unknown names are refused."""
    from minivit.model import ViTConfig

    fields = set(cfg.to_dict())
    model_fields = set(ViTConfig().to_dict())
    for key, value in overrides.items():
        group, _, name = key.rpartition(".")
        if group == "model" and name in model_fields:
            cfg.model = {**cfg.model, name: value}
        elif group == "augment":
            cfg.augment = {**cfg.augment, name: value}
        elif not group and name in fields:
            setattr(cfg, name, value)
        else:
            raise SystemExit(f"error: --set {key}: not a TrainConfig field (or model.FIELD / augment.FIELD)")
    return cfg


def gemm_gflops(n=2048, repeats=5) -> float:
    """NumPy float32 GEMM speed (n x n @ n x n, best of ``repeats``), GFLOP/s."""
    a = np.random.default_rng(0).standard_normal((n, n), dtype=np.float32)
    b = a.T.copy()
    a @ b
    best = min(_timed(lambda: a @ b) for _ in range(repeats))
    return 2 * n ** 3 / best / 1e9


def _timed(fn):
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def git_commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True,
                              check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def run(args) -> dict:
    from minivit.train.budget import parse_duration, process_started
    from minivit.train.trainer import Trainer, recipe

    started = process_started()
    commit = git_commit()               # the code this run loads (a commit made while it runs is not it)
    overrides = parse_set(args.set)
    cfg = apply_overrides(recipe(args.preset, time_budget=parse_duration(args.budget), seed=args.seed,
                                 val_split=args.val_split), overrides)
    impl = None
    if args.impl == "fast":
        from minivit import fast

        impl = fast.functions()
    out = Path(args.runs) / f"{args.name}-s{args.seed}"
    trainer = Trainer(cfg, out, data_dir=args.data_dir, impl=impl, started=started, progress=False)
    history = trainer.fit()
    wall = time.monotonic() - started
    last, best = history[-1], max(history, key=lambda r: r["test_acc"])
    steps = trainer.total_steps
    seg_steps = [r["step"] - p for r, p in zip(history, [0] + [r["step"] for r in history[:-1]])]
    images_per_s = sum(n * r["images_per_s"] for n, r in zip(seg_steps, history)) / max(sum(seg_steps), 1)
    row = dict(name=args.name, set=overrides, preset=args.preset, impl=args.impl, seed=args.seed,
               budget_s=cfg.time_budget, wall_s=round(wall, 1), steps=steps,
               epochs=round(steps / trainer.steps_per_epoch, 2), val_split=args.val_split,
               val_acc=last["test_acc"], best_val_acc=best["test_acc"], val_loss=last["test_loss"],
               train_images_per_s=round(images_per_s, 1),
               calibrated_images_per_s=round(cfg.batch_size / trainer.plan.mean_step_s, 1),
               gemm_gflops=round(gemm_gflops(), 1), commit=commit, out=str(out),
               date=time.strftime("%Y-%m-%d %H:%M"))
    return row


def report(log=LOG, path=REPORT):
    rows = [json.loads(line) for line in Path(log).read_text().splitlines() if line.strip()]
    groups: dict = {}
    for r in rows:
        groups.setdefault((r["name"], r["budget_s"]), []).append(r)
    lines = ["| setting | changes from the `cpu` recipe of the commit | commit | budget | seeds | steps (epochs) | "
             "val acc per seed | mean val acc | spread | train img/s | GEMM GFLOP/s | longest wall |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for (name, budget), rs in groups.items():
        accs = [100 * r["val_acc"] for r in rs]
        changes = ", ".join(f"`{k}={json.dumps(v)}`" for k, v in rs[0]["set"].items()) or "none"
        if rs[0].get("impl", "reference") != "reference":
            changes += f", `--impl {rs[0]['impl']}`"
        lines.append(
            f"| {name} | {changes} | {', '.join(sorted({r['commit'] for r in rs}))} | {budget / 60:g} min | {', '.join(str(r['seed']) for r in rs)} | "
            f"{statistics.mean(r['steps'] for r in rs):,.0f} ({statistics.mean(r['epochs'] for r in rs):.2f}) | "
            f"{', '.join(f'{a:.2f}' for a in accs)} | {statistics.mean(accs):.2f} | "
            f"{(max(accs) - min(accs)):.2f} | {statistics.mean(r['train_images_per_s'] for r in rs):.0f} | "
            f"{statistics.mean(r['gemm_gflops'] for r in rs):.0f} | "
            f"{max(r['wall_s'] for r in rs) / 60:.1f} min |")
    Path(path).write_text("\n".join(lines) + "\n")
    return path


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--name", help="the setting's name in the table")
    p.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE")
    p.add_argument("--preset", default="cpu")
    p.add_argument("--budget", default="8m", help="the whole run's time budget (default 8m)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--val-split", type=int, default=5000)
    p.add_argument("--impl", default="reference", choices=["reference", "fast"])
    p.add_argument("--data-dir", default=os.environ.get("MINIVIT_DATA"))
    p.add_argument("--runs", default=str(REPO / "runs" / "levers"), help="where the run folders go")
    p.add_argument("--log", default=str(LOG))
    p.add_argument("--report", action="store_true", help="only write the Markdown table from the log")
    args = p.parse_args(argv)
    if args.report:
        print(report(args.log, Path(args.log).with_suffix(".md")))
        return 0
    if not args.name:
        p.error("--name is required (unless --report)")
    row = run(args)
    with open(args.log, "a") as f:
        f.write(json.dumps(row) + "\n")
    print(json.dumps(row))
    return 0


if __name__ == "__main__":
    sys.exit(main())
