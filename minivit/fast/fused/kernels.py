"""Compile the fused CUDA kernels (minivit/fast/fused/kernels.cu) with CuPy and launch them.

One launcher per kernel, ``launch_<kernel>(...)``: CuPy arrays in (made contiguous), CuPy arrays
out, in the plain code's shapes; the float32 or float64 instantiation is picked from the dtype.
The module is compiled once, on first use (``COMPILE_SECONDS`` says how long that took). Which
kernels may run, and the functions that use them, are in ``minivit.fast.fused`` / ``minivit.fast.fused.ops``.
"""
from __future__ import annotations

import math
import sys
import time
from pathlib import Path

import numpy as np

SOURCE_PATH = Path(__file__).with_name("kernels.cu")

# kernel (without the _f32 / _f64 suffix) -> what it computes
KERNELS = {
    "gelu_bias_forward": "x W + b, then GELU (tanh form): writes x W + b, t = tanh(...), y",
    "gelu_backward": "dx = dout * GELU'(x) from the cache (x, t)",
    "dropout_forward": "uniform draws -> scaled keep-mask (in place), y = x * mask",
    "residual_forward": "out = x + a * dropout mask * drop-path mask (masks made from the draws)",
    "residual_backward": "da = dout * drop-path mask * dropout mask",
    "softmax_forward": "row-wise softmax, max-subtracted (one warp per row)",
    "softmax_backward": "dx = s * (dout - rowsum(dout * s))",
    "layernorm_forward": "row-wise LayerNorm: y, xhat, rstd (two-pass variance)",
    "layernorm_backward": "dx = rstd (g - mean g - xhat mean(g xhat)) [+ the residual gradient]",
    "layernorm_param_grads": "dgamma = sum dy xhat, dbeta = sum dy (deterministic, two stages)",
    "adamw_update": "one AdamW step in place (w, m, v)",
}
SUFFIX = {np.dtype(np.float32): "f32", np.dtype(np.float64): "f64"}
DTYPES = tuple(SUFFIX)


def kernel_names() -> list[str]:
    """Every extern "C" name the CUDA source must define: NAME_f32 and NAME_f64 for each kernel."""
    return [f"{k}_{s}" for k in KERNELS for s in SUFFIX.values()]


def source() -> str:
    """The CUDA C source of every kernel (minivit/fast/fused/kernels.cu)."""
    return SOURCE_PATH.read_text()


# ------------------------------------------------------------------- compile and launch
_MODULE = None
COMPILE_SECONDS = {}          # "module" -> seconds CuPy took to compile and load the source


def _cupy():
    import cupy

    return cupy


def on_gpu(*arrays) -> bool:
    """True when every array is a real CuPy array of float32 or float64 (one dtype)."""
    cp = sys.modules.get("cupy")
    if cp is None or not arrays or not all(isinstance(a, cp.ndarray) for a in arrays):
        return False
    return arrays[0].dtype in SUFFIX and all(a.dtype == arrays[0].dtype for a in arrays)


def kernel(name: str, dtype):
    """The compiled kernel NAME_f32 / NAME_f64 (compiling the module on first use)."""
    global _MODULE
    if name not in KERNELS:
        raise ValueError(f"unknown fused kernel {name!r}; known: {', '.join(KERNELS)}")
    if _MODULE is None:
        t0 = time.perf_counter()
        module = _cupy().RawModule(code=source())
        module.compile()                                     # compile now, so the time is measured
        COMPILE_SECONDS["module"] = time.perf_counter() - t0
        _MODULE = module
    return _MODULE.get_function(f"{name}_{SUFFIX[np.dtype(dtype)]}")


def _scalar(dtype, value):
    return np.dtype(dtype).type(value)


def _elementwise(name, n, dtype, *args):
    block = 256
    grid = max(1, min(-(-n // block), 1 << 16))             # the kernels loop (grid stride)
    kernel(name, dtype)((grid,), (block,), args)


def _per_row(name, rows, dtype, *args):
    warps = 4                                               # 4 rows per block of 128 threads
    kernel(name, dtype)((max(1, -(-rows // warps)),), (32 * warps,), args)


I64, I32 = np.int64, np.int32


# One launcher per kernel: CuPy arrays in (made contiguous), CuPy arrays out; shapes as the plain code.
def launch_gelu_bias_forward(h, bias=None):
    """h: (..., M) = x W (overwritten with x W + b), bias: (M,) or None -> (h, t, y)."""
    cp = _cupy()
    h = cp.ascontiguousarray(h)
    t, y = cp.empty_like(h), cp.empty_like(h)
    b = h if bias is None else cp.ascontiguousarray(bias, dtype=h.dtype)
    _elementwise("gelu_bias_forward", h.size, h.dtype, h, b, t, y, I64(h.size), I64(0 if bias is None else b.size))
    return h, t, y


def launch_gelu_backward(dout, x, t):
    cp = _cupy()
    dout, x, t = (cp.ascontiguousarray(a) for a in (dout, x, t))
    dx = cp.empty_like(x)
    _elementwise("gelu_backward", x.size, x.dtype, dout, x, t, dx, I64(x.size))
    return dx


def launch_dropout_forward(x, u, p):
    """x, u (uniform draws, same shape; becomes the mask) -> (y, mask)."""
    cp = _cupy()
    x = cp.ascontiguousarray(x)
    y = cp.empty_like(x)
    _elementwise("dropout_forward", x.size, x.dtype, x, u, y, _scalar(x.dtype, p),
                 _scalar(x.dtype, 1.0 / (1.0 - p)), I64(x.size))
    return y, u


def launch_residual_forward(x, a, u=None, pmask=None, p=0.0):
    """out = x + a * mask(u) * pmask; u (draws, a's shape) becomes the dropout mask; pmask (B, 1, ...)."""
    cp = _cupy()
    x, a = cp.ascontiguousarray(x), cp.ascontiguousarray(a)
    out = cp.empty_like(x)
    mode_ = int(u is not None) + 2 * int(pmask is not None)       # bit 1: dropout, bit 2: drop-path
    scale = 1.0 / (1.0 - p) if u is not None else 1.0
    _elementwise("residual_forward", x.size, x.dtype, x, a, a if u is None else u, a if pmask is None else pmask,
                 out, _scalar(x.dtype, p), _scalar(x.dtype, scale), I64(x.size), I64(x.size // x.shape[0]),
                 I32(mode_))
    return out


def launch_residual_backward(dout, dmask=None, pmask=None):
    cp = _cupy()
    dout = cp.ascontiguousarray(dout)
    da = cp.empty_like(dout)
    mode_ = int(dmask is not None) + 2 * int(pmask is not None)
    _elementwise("residual_backward", dout.size, dout.dtype, dout, dout if dmask is None else dmask,
                 dout if pmask is None else pmask, da, I64(dout.size), I64(dout.size // dout.shape[0]), I32(mode_))
    return da


def launch_softmax_forward(x):
    """Softmax over the last axis."""
    cp = _cupy()
    x = cp.ascontiguousarray(x)
    y = cp.empty_like(x)
    n = x.shape[-1]
    _per_row("softmax_forward", x.size // n, x.dtype, x, y, I64(x.size // n), I32(n))
    return y


def launch_softmax_backward(dout, s):
    cp = _cupy()
    dout, s = cp.ascontiguousarray(dout), cp.ascontiguousarray(s)
    dx = cp.empty_like(s)
    n = s.shape[-1]
    _per_row("softmax_backward", s.size // n, s.dtype, dout, s, dx, I64(s.size // n), I32(n))
    return dx


def launch_layernorm_forward(x, gamma, beta, eps):
    """x: (..., D) -> y, xhat (..., D), rstd (..., 1)."""
    cp = _cupy()
    x = cp.ascontiguousarray(x)
    D = x.shape[-1]
    y, xhat = cp.empty_like(x), cp.empty_like(x)
    rstd = cp.empty(x.shape[:-1] + (1,), dtype=x.dtype)
    _per_row("layernorm_forward", x.size // D, x.dtype, x, cp.ascontiguousarray(gamma), cp.ascontiguousarray(beta),
             y, xhat, rstd, I64(x.size // D), I32(D), _scalar(x.dtype, eps))
    return y, xhat, rstd


def launch_layernorm_backward(dy, xhat, rstd, gamma, dres=None):
    """dx (..., D) of LayerNorm, plus ``dres`` (a residual gradient of the same shape) when given."""
    cp = _cupy()
    dy, xhat = cp.ascontiguousarray(dy), cp.ascontiguousarray(xhat)
    D = xhat.shape[-1]
    dx = cp.empty_like(xhat)
    res = dx if dres is None else cp.ascontiguousarray(dres)
    _per_row("layernorm_backward", xhat.size // D, xhat.dtype, dy, xhat, cp.ascontiguousarray(rstd),
             cp.ascontiguousarray(gamma), res, dx, I64(xhat.size // D), I32(D), I32(dres is not None))
    return dx


def launch_layernorm_param_grads(dy, xhat, chunks=64):
    """dgamma, dbeta (D,): column sums of dy * xhat and dy over all rows."""
    cp = _cupy()
    dy, xhat = cp.ascontiguousarray(dy), cp.ascontiguousarray(xhat)
    D = xhat.shape[-1]
    rows = xhat.size // D
    per_chunk = max(1, -(-rows // chunks))
    chunks = -(-rows // per_chunk)
    pg = cp.empty((chunks, D), dtype=xhat.dtype)
    pb = cp.empty((chunks, D), dtype=xhat.dtype)
    block = 128
    kernel("layernorm_param_grads", xhat.dtype)((-(-D // block), chunks), (block,),
                                                (dy, xhat, pg, pb, I64(rows), I32(D), I64(per_chunk)))
    return pg.sum(axis=0), pb.sum(axis=0)


def launch_adamw_update(w, g, m, v, t, lr, b1=0.9, b2=0.999, eps=1e-8, weight_decay=0.0):
    """In place, as optim.adamw_update: w, m, v must be contiguous (parameters and their state are)."""
    T = w.dtype
    correction = math.sqrt(1.0 - b2 ** t)
    step_size = lr * correction / (1.0 - b1 ** t)
    decay = 1.0 - lr * weight_decay if weight_decay else 1.0
    g = _cupy().ascontiguousarray(g)
    _elementwise("adamw_update", w.size, T, w, g, m, v, I64(w.size), *(_scalar(T, s) for s in (
        b1, 1.0 - b1, b2, 1.0 - b2, decay, step_size, eps * correction)))


LAUNCHERS = {name: globals()[f"launch_{name}"] for name in KERNELS}

