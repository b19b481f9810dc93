"""Check minivit on a GPU machine end to end, in one command, and write one report.

    PYTHONPATH=. python benchmarks/gpu_check.py --out DIR [--data FILE_OR_DIR]

For a machine that gets only a copy of this source tree (with numpy, cupy, torch, pytest,
matplotlib and tqdm installed, no network). The steps, in this order, each a subprocess under
its own time limit (all of them together under 8 minutes); a step that fails or runs out of
time is reported and the next one runs:

  info       python -m minivit info
  gradcheck  python -m minivit gradcheck --device gpu            (every backward pass, float64)
  fused      python -m minivit fused --verify --record           (every fused kernel vs its plain
             twin; the ones that pass go into DIR/fused_verified.json, and only those run below)
  bench      benchmarks/torch_vs_minivit.py --device gpu, TF32 off in both, then on in both:
             images/s, TFLOP/s, MFU (against the GPU's nominal peak), peak memory, and the first
             step (CuPy's kernel compiles) apart
  train      python -m minivit train --preset gpu --impl fast for about 2-3 minutes: a fixed
             number of epochs chosen from the benchmark's images/s (there is no --time-budget
             yet), on --data (a pack from `python -m minivit pack`, or a CIFAR folder, then 10,000
             of its images), else $MINIVIT_DATA, else minivit.data.cifar.synthetic_cifar (packed into
             DIR; no accuracy is reported for it)
  pytest     python -m pytest -m gpu                              (the CuPy test suite)

Writes DIR/report.md, DIR/report.json and DIR/logs/STEP.log. ``--cpu`` runs the same steps on the
CPU with small settings (to test this script without a GPU); ``--only info,fused`` runs some.
"""
from __future__ import annotations

import argparse
import csv
import datetime
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from gpu_check_report import write_reports  # noqa: E402  (benchmarks/gpu_check_report.py)

TOTAL_S = 470                  # all steps together: under 8 minutes
TRAIN_TARGET_S = 110           # training time aimed at inside the train step's limit
# Nominal dense peaks (TFLOP/s) from vendor datasheets: (FP32 CUDA cores, TF32 tensor cores).
PEAK_TFLOPS = {"H200": (67.0, 495.0), "H100 PCIe": (51.0, 378.0), "H100": (67.0, 495.0), "A100": (19.5, 156.0),
               "L40S": (91.6, 183.0), "L4": (30.3, 60.0), "A10": (31.2, 62.5), "V100": (15.7, None), "T4": (8.1, None)}


class Step:
    """One check: ``command(ctx)`` gives (argv, extra env) or a string (the reason to skip it);
    ``parse(ctx, output)`` turns its output into numbers for the report."""

    def __init__(self, name, title, limit_s, command, parse=None):
        self.name, self.title, self.limit_s, self.command, self.parse = name, title, limit_s, command, parse


def run_command(argv, env, limit_s, log_path):
    """Run argv with a time limit (killing its whole process group at the limit); returns
    (status 'ok' | 'failed' | 'timeout', return code, seconds, output)."""
    t0 = time.monotonic()
    with open(log_path, "w+") as log:
        proc = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, text=True,
                                start_new_session=True)
        try:
            rc = proc.wait(timeout=limit_s)
            status = "ok" if rc == 0 else "failed"
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            rc, status = proc.wait(), "timeout"
        log.seek(0)
        output = log.read()
    return status, rc, time.monotonic() - t0, output


def run_steps(steps, ctx, total_s=TOTAL_S):
    """Run the steps in order within total_s; every step is reported, whatever happened before."""
    start = time.monotonic()
    logs = Path(ctx["out"]) / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    results = ctx.setdefault("steps", {})
    for step in steps:
        left = total_s - (time.monotonic() - start)
        r = {"title": step.title, "limit_s": step.limit_s}
        cmd = step.command(ctx)
        if isinstance(cmd, str):
            results[step.name] = {**r, "status": "skipped", "reason": cmd}
            continue
        if left < 5:
            results[step.name] = {**r, "status": "skipped", "reason": f"no time left ({total_s} s in all)"}
            continue
        argv, extra_env = cmd
        limit = left if step.limit_s is None else min(step.limit_s, left)     # None: all the time left
        env = {**os.environ, "PYTHONPATH": str(ROOT), "MPLBACKEND": "Agg", **extra_env}
        status, rc, seconds, output = run_command(argv, env, limit, logs / f"{step.name}.log")
        r.update(status=status, returncode=rc, seconds=round(seconds, 1), limit_s=round(limit, 1),
                 command=" ".join(["python"] + argv[1:] if argv[0] == sys.executable else argv),
                 env={k: v for k, v in extra_env.items()}, log=f"logs/{step.name}.log", tail=output[-1500:])
        if step.parse:
            try:
                r["result"] = step.parse(ctx, output)
            except Exception as e:                       # noqa: BLE001 - a parse failure is reported, not fatal
                r["parse_error"] = f"{type(e).__name__}: {e}"
        results[step.name] = r
        print(f"[gpu_check] {step.name}: {status} in {seconds:.1f} s (limit {limit:.0f} s)", flush=True)
    ctx["total_s"] = round(time.monotonic() - start, 1)
    return results


# ------------------------------------------------------------------------------- the steps
PY = sys.executable


def _device(ctx):
    return "cpu" if ctx["cpu"] else "gpu"


def _table_env(ctx):
    table = Path(ctx["out"]) / "fused_verified.json"
    return {"MINIVIT_FUSED": "verified", "MINIVIT_FUSED_TABLE": str(table)} if table.exists() else {"MINIVIT_FUSED": "none"}


def parse_info(ctx, output):
    info = dict(m.groups() for m in re.finditer(r"^\s*(\w+): (.*)$", output, re.M))
    ctx["gpu_name"] = info.get("gpu")
    return info


def parse_summary(ctx, output):
    """The last 'N passed, M failed' style line."""
    lines = [ln for ln in output.splitlines() if re.search(r"\d+ (passed|failed|skipped|deselected)", ln)]
    return {"summary": lines[-1].strip("= ") if lines else None}


def fused_command(ctx):
    if ctx["cpu"]:
        return [PY, "-m", "minivit", "fused"], {}           # (the listing: verifying needs a GPU)
    out = Path(ctx["out"])
    return ([PY, "-m", "minivit", "fused", "--verify", "--json", str(out / "fused_verify.json"), "--record"],
            {"MINIVIT_FUSED_TABLE": str(out / "fused_verified.json")})


def parse_fused(ctx, output):
    path = Path(ctx["out"]) / "fused_verify.json"
    if not path.exists():
        return {}
    report = json.loads(path.read_text())
    return {"compile_s": report.get("compile_seconds"),
            "kernels": {r["kernel"]: {"ok": r["ok"], **r["max_rel_error"], **({"error": r["error"]} if "error" in r
                                                                             else {})} for r in report["results"]}}


def peak_tflops(ctx, tf32):
    name = ctx.get("gpu_name") or ""
    for key, peaks in PEAK_TFLOPS.items():
        if key in name:
            return peaks[1 if tf32 else 0]
    return None


def bench_command(tf32):
    def command(ctx):
        argv = [PY, "benchmarks/torch_vs_minivit.py", "--json", "--device", _device(ctx)]
        if ctx["cpu"]:
            argv += ["--preset", "tiny", "--batch-size", "16", "--steps", "2", "--warmup", "1"]
            if tf32:
                return "TF32 is a GPU feature"
        else:
            argv += ["--preset", "cifar", "--batch-size", "128", "--steps", "20", "--warmup", "3"]
            peak = peak_tflops(ctx, tf32)
            argv += (["--tf32"] if tf32 else []) + (["--peak-tflops", str(peak)] if peak else [])
        return argv, _table_env(ctx)
    return command


def parse_bench(ctx, output):
    r = json.loads(output[output.index("{"):output.rindex("}") + 1])
    keep = ("gpu", "tf32", "peak_memory_mb", "first_use_s", "fused_functions", "fused_compile_s",
            "ratios_over_torch_images_per_s", "check_first_step_grad_max_rel_diff", "versions")
    ctx.setdefault("images_per_s", {}).update({name: v["images_per_s"] for name, v in r["results"].items()})
    return {**{k: r[k] for k in keep if k in r}, "results": r["results"]}


def data_source(ctx):
    """(path, kind, n_train): the data for the training step (packing synthetic_cifar if none is given)."""
    given = ctx.get("data") or os.environ.get("MINIVIT_DATA")
    if given and Path(given).suffix == ".npz" and Path(given).is_file():
        import numpy as np

        with np.load(given, allow_pickle=False) as f:
            return str(given), f"pack {Path(given).name}: {f['name']} ({f['dataset']})", len(f["y_train"])
    if given and Path(given).is_dir():
        return str(given), f"CIFAR folder {given} (10,000 of its training images)", 10000
    from minivit.data.cifar import synthetic_cifar
    from minivit.data.pack import pack

    path = Path(ctx["out"]) / "synthetic.npz"
    n = (2500, 500) if ctx["cpu"] else (10000, 2000)        # (the smoke recipe takes 2,048)
    pack(synthetic_cifar(*n), path, n_train=n[0], n_test=n[1], dataset="cifar10")
    note = f" ({given} not found)" if given else ""
    return str(path), f"synthetic_cifar stripes{note}: no CIFAR given, accuracy not meaningful", n[0]


def train_command(ctx):
    path, kind, n_train = data_source(ctx)
    ips = ctx.get("images_per_s", {})
    speed = ips.get("minivit fast") or ips.get("minivit")
    epochs = max(1, min(50, int(0.7 * TRAIN_TARGET_S * speed / n_train))) if speed and not ctx["cpu"] else 1
    ctx["train"] = {"data": path, "data_kind": kind, "synthetic": "synthetic" in kind, "epochs": epochs,
                    "epochs_from": "--cpu: 1 epoch" if ctx["cpu"] else
                    f"{speed:.0f} images/s in the benchmark" if speed else "no benchmark: 1 epoch"}
    preset = "smoke" if ctx["cpu"] else "gpu"
    argv = [PY, "-m", "minivit", "train", "--preset", preset, "--device", _device(ctx), "--impl", "fast",
            "--epochs", str(epochs), "--out", str(Path(ctx["out"]) / "train")]
    if Path(path).is_dir():
        argv += ["--subset", "10000"]
    return argv, {**_table_env(ctx), "MINIVIT_DATA": path}


def parse_train(ctx, output):
    rows = []
    metrics = Path(ctx["out"]) / "train" / "metrics.csv"
    if metrics.exists():
        with open(metrics) as f:
            rows = list(csv.DictReader(f))
    info = dict(ctx.get("train", {}))
    info["epochs_done"] = len(rows)
    if rows:
        last = rows[-1]
        info["images_per_s"] = float(last.get("images_per_s") or "nan")
        info["time_s"] = float(last.get("time_s") or "nan")
        info["test_acc"] = None if info.get("synthetic") else float(last["test_acc"])
        info["curve"] = [{k: r.get(k) for k in ("epoch", "train_loss", "test_loss", "test_acc", "images_per_s")}
                         for r in rows]
    return info


def pytest_command(ctx):
    return [PY, "-m", "pytest", "-q", "-m", "gpu", "-p", "no:cacheprovider", "tests"], {}


def steps():
    return [
        Step("info", "python -m minivit info", 20, lambda ctx: ([PY, "-m", "minivit", "info"], {}), parse_info),
        Step("gradcheck", "gradient check on the device, float64", 75,
             lambda ctx: ([PY, "-m", "minivit", "gradcheck", "--device", _device(ctx)], {}), parse_summary),
        Step("fused", "fused kernels vs their plain twins", 45, fused_command, parse_fused),
        Step("bench_fp32", "benchmark vs PyTorch, TF32 off in both", 60, bench_command(False), parse_bench),
        Step("bench_tf32", "benchmark vs PyTorch, TF32 on in both", 45, bench_command(True), parse_bench),
        Step("train", "training, gpu recipe, --impl fast", 170, train_command, parse_train),
        Step("pytest", "the CuPy test suite (pytest -m gpu)", None, pytest_command, parse_summary),   # the rest
    ]


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", required=True, help="folder for report.md, report.json and logs/")
    p.add_argument("--data", default=None, help="a data pack (.npz from python -m minivit pack) or a CIFAR folder")
    p.add_argument("--cpu", action="store_true", help="run the steps on the CPU with small settings (a dry run)")
    p.add_argument("--only", default=None, help="comma-separated steps to run (default: all): "
                   + ",".join(s.name for s in steps()))
    p.add_argument("--total-s", type=float, default=TOTAL_S, help=f"time for all steps together (default {TOTAL_S})")
    args = p.parse_args(argv)
    known = [s.name for s in steps()]
    if args.only:
        bad = [n for n in args.only.split(",") if n not in known]
        if bad:
            p.error(f"unknown step(s) {', '.join(bad)}; the steps are {', '.join(known)}")
    if args.data and not Path(args.data).exists():
        p.error(f"--data {args.data}: no such file or folder")
    if args.total_s <= 0:
        p.error("--total-s must be positive")
    return args


def environment() -> dict:
    """The driver (nvidia-smi) and the source tree's commit, when they can be had in a few seconds."""
    env = {}
    for key, argv in (("nvidia_smi", ["nvidia-smi", "--query-gpu=name,driver_version,memory.total",
                                      "--format=csv,noheader"]),
                      ("commit", ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"])):
        try:
            r = subprocess.run(argv, capture_output=True, text=True, timeout=10)
            env[key] = r.stdout.strip() if r.returncode == 0 else None
        except (OSError, subprocess.TimeoutExpired):
            env[key] = None
    return env


def main(argv=None):
    args = parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    ctx = {"out": str(out), "data": args.data, "cpu": args.cpu,
           "started": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"), **environment()}
    chosen = [s for s in steps() if not args.only or s.name in args.only.split(",")]
    run_steps(chosen, ctx, args.total_s)
    md, js = write_reports(ctx, out)
    print(f"[gpu_check] report: {md} and {js}")
    return 0 if all(r["status"] in ("ok", "skipped") for r in ctx["steps"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
