"""The report of benchmarks/gpu_check.py: report.json (everything) and report.md (for people)."""
from __future__ import annotations

import json
from pathlib import Path


def _fmt(v, spec=".1f", none="—"):
    return none if v is None else format(v, spec)


def step_summary(name, r) -> str:
    """One line of numbers for a step's row in the table."""
    if r["status"] == "skipped":
        return r.get("reason", "")
    res = r.get("result") or {}
    if "parse_error" in r:
        return f"(could not read its output: {r['parse_error']})"
    if name == "info":
        return ", ".join(f"{k} {res[k]}" for k in ("gpu", "cupy", "cuda_runtime", "torch") if k in res)
    if name in ("gradcheck", "pytest"):
        return res.get("summary") or ""
    if name == "fused":
        k = res.get("kernels") or {}
        return (f"{sum(v['ok'] for v in k.values())} of {len(k)} kernels match their plain twins"
                + (f"; compiled in {res['compile_s']:.1f} s" if res.get("compile_s") else "")) if k else ""
    if name.startswith("bench"):
        return "; ".join(f"{n} {v['images_per_s']:.0f} img/s" for n, v in res.get("results", {}).items())
    if name == "train":
        acc = res.get("test_acc")
        return (f"{res.get('epochs_done', 0)} of {res.get('epochs')} epochs, "
                + (f"test accuracy {100 * acc:.2f}%" if acc is not None else "no accuracy (synthetic data)")
                + (f", {res['images_per_s']:.0f} img/s" if res.get("images_per_s") else ""))
    return ""


def markdown(ctx) -> str:
    steps = ctx.get("steps", {})
    info = (steps.get("info") or {}).get("result") or {}
    lines = ["# minivit GPU check", "",
             f"Started {ctx.get('started')}, {ctx.get('total_s')} s in all"
             + (" — **CPU dry run (--cpu)**, not a GPU check" if ctx.get("cpu") else "") + ".",
             "Machine: " + ", ".join(f"{k} {info[k]}" for k in ("gpu", "cuda_runtime", "cupy", "torch", "numpy",
                                                                  "python", "platform") if k in info) + ".",
             f"nvidia-smi (name, driver, memory): {ctx.get('nvidia_smi') or '—'}; source tree at commit "
             f"{ctx.get('commit') or 'unknown'}.", "",
             "| step | status | time (s) | limit (s) | result |", "|---|---|---|---|---|"]
    for name, r in steps.items():
        lines.append(f"| {name} | {r['status']} | {_fmt(r.get('seconds'))} | {_fmt(r.get('limit_s'), '.0f', 'rest')} | "
                     f"{step_summary(name, r)} |")
    bench = [(n, steps[n]["result"]) for n in ("bench_fp32", "bench_tf32") if (steps.get(n) or {}).get("result")]
    if bench:
        lines += ["", "## Training step vs PyTorch (same GPU, same model, batch, weights and data)", "",
                  "| TF32 | framework | images/s | ratio to PyTorch | TFLOP/s | MFU | first step (s) |",
                  "|---|---|---|---|---|---|---|"]
        for name, res in bench:
            ratios = res.get("ratios_over_torch_images_per_s", {})
            for fw, v in res["results"].items():
                lines.append(f"| {'on' if res.get('tf32') else 'off'} | {fw} | {v['images_per_s']:.0f} | "
                             f"{_fmt(ratios.get(fw, 1.0 if fw == 'PyTorch' else None), '.2f')} | "
                             f"{v['tflop_per_s']:.2f} | {_fmt(v.get('mfu') and 100 * v['mfu'], '.1f')}{'%' if v.get('mfu') else ''} | "
                             f"{_fmt(v.get('first_step_s'), '.2f')} |")
        for name, res in bench:
            extras = []
            if res.get("peak_memory_mb"):
                extras.append("peak memory " + ", ".join(f"{k} {v:.0f} MiB" for k, v in res["peak_memory_mb"].items()))
            if res.get("first_use_s"):
                extras.append("first use (kernel compiles; not in the timings) "
                              + ", ".join(f"{k} {v:.2f} s" for k, v in res["first_use_s"].items()))
            if "fused_functions" in res:
                extras.append(f"fused in 'minivit fast': {', '.join(res['fused_functions']) or 'none'}"
                              + (f" (compiled in {res['fused_compile_s']:.2f} s)" if res.get("fused_compile_s") else ""))
            lines.append(f"\n{name}: " + "; ".join(extras))
    fused = ((steps.get("fused") or {}).get("result") or {}).get("kernels")
    if fused:
        lines += ["", "## Fused kernels vs their plain twins (max relative error)", "",
                  "| kernel | float32 | float64 | |", "|---|---|---|---|"]
        for k, v in fused.items():
            lines.append(f"| {k} | {_fmt(v.get('float32'), '.1e')} | {_fmt(v.get('float64'), '.1e')} | "
                         f"{'ok' if v['ok'] else 'FAIL ' + v.get('error', '')} |")
    train = (steps.get("train") or {}).get("result")
    if train:
        lines += ["", "## Training", "", f"Data: {train.get('data_kind')}. Epochs: {train.get('epochs')} "
                  f"(fixed, from {train.get('epochs_from')}; no --time-budget yet).", ""]
        if train.get("curve"):
            lines += ["| epoch | train loss | test loss | test acc | images/s |", "|---|---|---|---|---|"]
            for row in train["curve"]:
                acc = "—" if train.get("synthetic") else f"{100 * float(row['test_acc']):.2f}%"
                lines.append(f"| {row['epoch']} | {row['train_loss']} | {row['test_loss']} | {acc} | "
                             f"{row['images_per_s']} |")
    bad = {n: r for n, r in steps.items() if r["status"] in ("failed", "timeout")}
    if bad:
        lines += ["", "## Failures"]
        for name, r in bad.items():
            lines += ["", f"### {name}: {r['status']} (exit code {r.get('returncode')}) after {r.get('seconds')} s",
                      "", f"`{r.get('command')}`", "", "```", r.get("tail", "").rstrip()[-1200:], "```"]
    return "\n".join(lines) + "\n"


def write_reports(ctx, out) -> tuple[Path, Path]:
    out = Path(out)
    js, md = out / "report.json", out / "report.md"
    js.write_text(json.dumps(ctx, indent=2, default=str) + "\n")
    md.write_text(markdown(ctx))
    return md, js
