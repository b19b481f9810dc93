"""What a CPU benchmark should print beside its numbers: the CPU model, NumPy's BLAS and the
machine's float32 (or float64) matrix-product rate, measured now with NumPy.

Used by ``benchmarks/torch_vs_minivit.py`` (loaded by path; nothing in minivit imports it).
"""
from __future__ import annotations

import platform
import statistics
import time


def cpu_model() -> str:
    """The CPU's model name (Linux: /proc/cpuinfo), else what ``platform`` knows."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def blas_info() -> dict:
    """NumPy's BLAS as threadpoolctl reports it: library, version, kernel architecture, threads."""
    try:
        import threadpoolctl
    except ImportError:  # pragma: no cover - threadpoolctl is a dependency of minivit
        return {"name": "unknown (threadpoolctl not installed)"}
    for info in threadpoolctl.threadpool_info():
        if info.get("user_api") == "blas":
            return {"name": info.get("internal_api"), "version": info.get("version"),
                    "architecture": info.get("architecture"), "threads": info.get("num_threads"),
                    "library": info.get("filepath")}
    return {"name": "none found"}


def blas_label(info: dict) -> str:
    parts = [str(info.get("name")), str(info.get("version") or "")]
    if info.get("architecture"):
        parts.append(f"({info['architecture']} kernels)")
    return " ".join(p for p in parts if p)


def gemm_gflops(dtype="float32", n=1024, repeats=10) -> float:
    """Median GFLOP/s of an n x n by n x n NumPy matrix product (2 n^3 FLOPs) in ``dtype``, with
    NumPy's BLAS on whatever threads it has now. The machine's matrix-product rate: a ceiling no
    step made of matrix products plus memory-bound work can reach."""
    import numpy as np

    rng = np.random.default_rng(0)
    a = rng.standard_normal((n, n)).astype(dtype)
    b = rng.standard_normal((n, n)).astype(dtype)
    out = np.empty((n, n), dtype=dtype)
    np.matmul(a, b, out=out)                       # warm up (BLAS threads, caches)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        np.matmul(a, b, out=out)
        times.append(time.perf_counter() - t0)
    return 2 * n ** 3 / statistics.median(times) / 1e9
