"""Fused GPU kernels: which may run (the MINIVIT_FUSED switch and the table of verified kernels).

On a GPU, each elementwise step of the plain code (``x * x``, ``+= 1``, ``tanh``...) is its own
CUDA kernel reading and writing the whole array. The kernels in ``minivit/fast/fused/kernels.cu``
do a whole operation in one pass: GELU (tanh form) with the bias add, its backward, dropout,
the residual adds (with dropout and drop-path), softmax, LayerNorm (forward, backward, and the
gamma/beta gradients) and the AdamW update, each for float32 (``NAME_f32``) and float64
(``NAME_f64``). ``minivit.fast.fused.kernels`` compiles and launches them (``cupy.RawModule``);
``minivit.fast.fused.ops`` wraps them into functions with the plain functions' signatures and caches;
``minivit.fast.fused.verification`` checks them against the plain code. This module decides which may run.

The plain functions (``minivit/layers``, ``minivit/optim/__init__.py``) stay what learners read; these
are used only with ``--impl fast`` on a GPU, and a kernel runs by default only once a GPU has
checked it against its plain twin (``python -m minivit fused --verify``, see
``minivit.fast.fused.verification``) and it is listed in ``minivit/fast/fused/verified.json``:

    MINIVIT_FUSED=verified   (default) only the kernels in the table
    MINIVIT_FUSED=all        every kernel (to check them, or at your own risk)
    MINIVIT_FUSED=none       none: the fast path runs the plain code on the GPU
    MINIVIT_FUSED_TABLE=FILE read the table from FILE instead (benchmarks/gpu_check.py uses the
                             table its own verification step just wrote)

On the CPU nothing here runs: with NumPy arrays every wrapper hands over to ``minivit.fast``.
The CUDA source needs no GPU to compile: tests/test_fused.py compiles it with NVRTC in CI.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

from minivit.fast.fused import ops as fused_ops
from minivit.fast.fused import verification as fused_verify
from minivit.fast.fused.kernels import KERNELS
from minivit.storage.tempfiles import atomic_file

ENV_VAR = "MINIVIT_FUSED"
TABLE_ENV_VAR = "MINIVIT_FUSED_TABLE"
MODES = ("none", "verified", "all")
TABLE_PATH = Path(__file__).with_name("verified.json")


def mode() -> str:
    """MINIVIT_FUSED, checked: 'none', 'verified' (the default) or 'all'."""
    value = os.environ.get(ENV_VAR, "verified").strip().lower() or "verified"
    if value not in MODES:
        raise ValueError(f"{ENV_VAR} must be one of {', '.join(MODES)}, got {os.environ[ENV_VAR]!r}")
    return value


def table_path() -> Path:
    """$MINIVIT_FUSED_TABLE, else the committed minivit/fast/fused/verified.json."""
    return Path(os.environ.get(TABLE_ENV_VAR) or TABLE_PATH)


def load_table(path=None) -> dict:
    """{kernel: {device, cupy, max_rel_error, date, ...}}: the kernels a GPU has verified."""
    return _read_table(Path(path) if path else table_path())["verified"]


def _read_table(path) -> dict:
    """The whole JSON object of the table file ``path``, checked (its 'verified' part names known kernels)."""
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise FileNotFoundError(f"table of verified kernels {path} not found") from None
    except json.JSONDecodeError as e:
        raise ValueError(f"table of verified kernels {path} is not valid JSON: {e}") from None
    verified = data.get("verified") if isinstance(data, dict) else None
    if not isinstance(verified, dict):
        raise ValueError(f"{path}: expected a JSON object with a 'verified' object in it")
    unknown = sorted(set(verified) - set(KERNELS))
    if unknown:
        raise ValueError(f"{path}: unknown kernels {unknown}; known: {', '.join(KERNELS)}")
    return data


def chosen(which=None, table=None) -> frozenset:
    """The kernels that may run under MINIVIT_FUSED (or ``which``): none, the table's, or all."""
    which = which or mode()
    if which not in MODES:
        raise ValueError(f"fused mode must be one of {', '.join(MODES)}, got {which!r}")
    if which == "none":
        return frozenset()
    if which == "all":
        return frozenset(KERNELS)
    return frozenset(load_table() if table is None else table)


def functions(which=None, table=None, fallback=None) -> dict:
    """The fused ``ops`` functions whose kernels are all chosen; {} when none is.

    ``minivit.fast.functions()`` (``--impl fast``) lays these over its CPU fast paths and passes
    those as ``fallback``: each fused function runs its kernels only on CuPy arrays and calls
    the fallback (default: the plain function) otherwise, so on the CPU nothing changes."""
    ok = chosen(which, table)
    fused_ops.NEXT.update({k: v for k, v in (fallback or {}).items() if k in fused_ops.NEXT})
    return {name: getattr(fused_ops, name) for name, needs in fused_ops.NEEDS.items() if set(needs) <= ok}


def verify(kernel: str, **kwargs) -> dict:
    """Check ``kernel`` against its plain twin on the GPU (see :func:`minivit.fast.fused.verification.verify`)."""
    return fused_verify.verify(kernel, **kwargs)


def record(results, path=None) -> list:
    """Add the GPU results that passed to the table of verified kernels; returns their names."""
    path = Path(path) if path else table_path()
    base = path if path.exists() else TABLE_PATH
    data = _read_table(base)
    added = []
    for r in results:
        if not r.get("ok"):
            continue
        if not r.get("cupy"):
            raise ValueError(f"{r['kernel']}: only a check on a GPU (with CuPy) can enter the table, "
                             f"this one ran on {r.get('device')!r}")
        data["verified"][r["kernel"]] = {"device": r["device"], "cupy": r["cupy"], "date": r["date"],
                                         "max_rel_error": r["max_rel_error"].get("float32"),
                                         "max_rel_error_float64": r["max_rel_error"].get("float64")}
        added.append(r["kernel"])
    with atomic_file(path) as f:
        f.write(json.dumps(data, indent=2) + "\n")
    return added


def run_cli(kernels=None, json_path=None, do_record=False) -> int:
    """``python -m minivit fused``: list the kernels (kernels None) or verify them ([] = all)."""
    if kernels is None:
        ok = chosen()
        print(f"{ENV_VAR}={mode()}, table {table_path()}: {len(ok)} of {len(KERNELS)} kernels may run "
              "(on a GPU, with --impl fast)")
        for name, what in KERNELS.items():
            print(f"  {'on ' if name in ok else 'off'}  {name:<22} {what}")
        return 0
    unknown = [k for k in kernels if k not in KERNELS]
    if unknown:
        raise ValueError(f"unknown fused kernel(s) {unknown}; known: {', '.join(KERNELS)}")
    results = [verify(k) for k in (kernels or list(KERNELS))]
    print(f"{'kernel':<22} {'float32':>9} {'float64':>9}   (max relative error vs the plain code)")
    for r in results:
        e = r["max_rel_error"]
        print(f"{r['kernel']:<22} {e.get('float32', float('nan')):9.1e} {e.get('float64', float('nan')):9.1e}   "
              + ("ok" if r["ok"] else "FAIL " + r.get("error", "")))
    from minivit.fast.fused.kernels import COMPILE_SECONDS

    if json_path:
        report = {"results": results, "compile_seconds": COMPILE_SECONDS.get("module")}
        Path(json_path).write_text(json.dumps(report, indent=2) + "\n")
    if do_record:
        print(f"recorded {len(record(results))} kernels in {table_path()}")
    return 0 if all(r["ok"] for r in results) else 1
