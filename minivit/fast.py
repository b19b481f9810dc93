"""Fast paths: quicker CPU versions of a few functional-core functions, kept *beside* the plain code.

The code to read is in ``minivit/layers`` and ``minivit/optim.py``: it says what each operation
computes, in the most direct way. This module computes the same thing (to float rounding) with
fewer passes over memory and fewer temporary arrays:

* work in place on arrays this function itself just allocated (never on its inputs);
* fold constants into the smallest array (scale q, (T, d), instead of the scores, (T, T));
* row-wise dot products with ``einsum`` (no (…, T, T) temporary) and row sums with a BLAS
  matrix-vector product (LayerNorm backward);
* write matmul results straight into the layout the next step needs
  (``np.matmul(..., out=view)``) instead of ``stack`` + ``transpose`` + copy.

Every function has the signature and return values of its reference twin, and caches with the
same layout (``minivit.inspect`` reads the attention weights A out of the MSA cache; the
reference backward passes accept a fast forward's cache and vice versa). ``tests/test_fast.py``
compares each one with the reference in float64 and float32.

These are NumPy (CPU) paths: called with CuPy arrays, every function here simply runs the
reference implementation. The GPU's counterpart is ``minivit/fused.py`` (CUDA kernels), which
``functions()`` adds on top.

Turning them on and off. Nothing here is used unless you ask for it:

    from minivit import fast, ops
    with ops.use(fast.functions()):     # {} (reference everywhere) when MINIVIT_FAST_PATHS=0
        ...
    python -m minivit train --impl fast        # the same from the command line
    MINIVIT_FAST_PATHS=0 python -m minivit train --impl fast   # ... switched off again

``ops.use(fast)`` and ``ops.use(fast.FUNCTIONS)`` install them unconditionally (for tests).
"""
from __future__ import annotations

import math
import os
import threading

import numpy as np

from minivit import layers, ops, optim
from minivit.layers.activation import _C, _K
from minivit.parallel import SHARD_THREAD_PREFIX

ENV_VAR = "MINIVIT_FAST_PATHS"


def enabled() -> bool:
    """False when the environment variable MINIVIT_FAST_PATHS is "0" (or "false", "off", "no")."""
    return os.environ.get(ENV_VAR, "1").strip().lower() not in ("0", "false", "off", "no")


def _numpy(*arrays) -> bool:
    """True when every array is a NumPy array: the fast paths are CPU paths."""
    return all(isinstance(a, np.ndarray) for a in arrays)


# ----------------------------------------------------------------------------------- softmax
def _exp_normalize_(e, axis=-1):
    """exp(e) / sum(exp(e)) along ``axis``, in place; e holds scores already shifted by their max."""
    np.exp(e, out=e)
    total = e.sum(axis=axis, keepdims=True)
    np.reciprocal(total, out=total)
    e *= total                     # one division per row, then a multiply per element
    return e


def _softmax_(s, axis=-1):
    """Softmax along ``axis`` of ``s``, in place (s must be an array the caller owns)."""
    s -= s.max(axis=axis, keepdims=True)
    return _exp_normalize_(s, axis)


def _softmax_backward_(dA, A):
    """dS = A * (dA - rowsum(dA * A)), written into dA's buffer (the caller owns dA).

    The row sums come from einsum, which never builds the (..., T, T) product dA * A."""
    r = np.einsum("...i,...i->...", dA, A)
    dA -= r[..., None]
    dA *= A
    return dA


def softmax_forward(x, axis=-1):
    """Same as ``layers.softmax_forward``; multiplies by 1/rowsum instead of dividing."""
    if not _numpy(x):
        return layers.softmax_forward(x, axis)
    e = _exp_normalize_(x - x.max(axis=axis, keepdims=True), axis)   # the shifted copy is ours
    return e, (e, axis)


def softmax_backward(dout, cache):
    """Same as ``layers.softmax_backward``; the row sums sum(dout * s) come from einsum (no
    full-size temporary) and the result needs one new array instead of three."""
    s, axis = cache
    if not _numpy(dout, s) or dout.shape != s.shape or axis not in (-1, s.ndim - 1):
        return layers.softmax_backward(dout, cache)
    dx = dout - np.einsum("...i,...i->...", dout, s)[..., None]
    dx *= s
    return dx


# ---------------------------------------------------------------- scaled dot-product attention
def _attention(q, k, v, out=None, A=None):
    """softmax(q k^T / sqrt(d)) v, scaling q (T x d) rather than the scores (T x T) and taking the
    softmax in place on the freshly allocated scores. ``out``, ``A``: optional arrays (any
    blasable views) to write the result and the attention weights into. Returns (out, cache)
    with the reference's cache layout."""
    scale = 1.0 / math.sqrt(q.shape[-1])
    A = np.matmul(q * scale, k.swapaxes(-1, -2), out=A)  # (..., T, T), ours to overwrite
    _softmax_(A)
    out = np.matmul(A, v, out=out)
    return out, (q, k, v, A, scale)


def _attention_backward(dout, cache, dq=None, dk=None, dv=None):
    """Gradients of :func:`_attention`, optionally written into the given output views.

    The 1/sqrt(d) is folded into dout (T x d) before dA = dout v^T, so the dS that comes out of
    the softmax backward already carries it: no pass over a (T x T) array to scale it."""
    q, k, v, A, scale = cache
    dv = np.matmul(A.swapaxes(-1, -2), dout, out=dv)
    dS = np.matmul(dout * scale, v.swapaxes(-1, -2))   # scale * dA, ours to overwrite
    _softmax_backward_(dS, A)                          # -> scale * dS, in place
    dq = np.matmul(dS, k, out=dq)
    dk = np.matmul(dS.swapaxes(-1, -2), q, out=dk)
    return dq, dk, dv


def attention_forward(q, k, v):
    """Same as ``layers.attention_forward``: q is scaled instead of the scores, and the softmax
    runs in place on the scores (no second (..., T, T) array)."""
    if not _numpy(q, k, v):
        return layers.attention_forward(q, k, v)
    return _attention(q, k, v)


def attention_backward(dout, cache):
    """Same as ``layers.attention_backward``: the scale is folded into dout, the softmax backward
    runs in place in dA's buffer with einsum row sums."""
    if not _numpy(dout, *cache[:4]):
        return layers.attention_backward(dout, cache)
    return _attention_backward(dout, cache)


# ------------------------------------------------------ the attention core on two CPU cores
# NumPy's elementwise loops (softmax) use one core, and OpenBLAS runs the many small per-head
# matmuls (T x d by d x T) poorly on two threads. Splitting the *batch* in two and running each
# half in its own thread, with BLAS single-threaded meanwhile, keeps both cores busy. NumPy
# releases the GIL in its loops and BLAS calls, so the two halves really run in parallel.
_POOL = None
_BLAS = None
_THREAD_PREFIX = "minivit-fast"


def _two_halves(fn, n):
    """Run fn(slice) for the two halves of range(n) in two threads, BLAS on one thread each.
    Falls back to one call over everything when n < 2 or on a single-core machine."""
    global _POOL, _BLAS
    if n < 2 or (os.cpu_count() or 1) < 2:
        fn(slice(0, n))
        return
    if _POOL is None:
        from concurrent.futures import ThreadPoolExecutor

        from threadpoolctl import ThreadpoolController

        _POOL = ThreadPoolExecutor(max_workers=2, thread_name_prefix=_THREAD_PREFIX)
        _BLAS = ThreadpoolController()
    if threading.current_thread().name.startswith((SHARD_THREAD_PREFIX, _THREAD_PREFIX)):
        fn(slice(0, n))               # already inside a data-parallel shard: don't nest threads
        return
    h = n // 2
    with _BLAS.limit(limits=1, user_api="blas"):
        futures = [_POOL.submit(fn, slice(0, h)), _POOL.submit(fn, slice(h, n))]
        for f in futures:
            f.result()


def _attention_two_cores(q, k, v, out):
    """:func:`_attention` over the batch axis (0) in two threads; writes into ``out``.
    Returns the cache with the full attention weights A."""
    A = np.empty(q.shape[:-1] + (k.shape[-2],), dtype=np.result_type(q, k, v))
    _two_halves(lambda sl: _attention(q[sl], k[sl], v[sl], out=out[sl], A=A[sl]), q.shape[0])
    return out, (q, k, v, A, 1.0 / math.sqrt(q.shape[-1]))


def _attention_backward_two_cores(dout, cache, dq, dk, dv):
    """:func:`_attention_backward` over the batch axis in two threads, into dq, dk, dv."""
    q, k, v, A, scale = cache

    def half(sl):
        _attention_backward(dout[sl], (q[sl], k[sl], v[sl], A[sl], scale), dq[sl], dk[sl], dv[sl])

    _two_halves(half, dout.shape[0])
    return dq, dk, dv


# ------------------------------------------------------------------ multi-head self-attention
def mhsa_forward(x, w_qkv, b_qkv, w_out, b_out, num_heads):
    """Same as ``layers.mhsa_forward``. The heads' outputs are written by the matmul straight
    into a (B, T, h, d) buffer, which *is* the merged (B, T, D) array: no merge_heads copy.
    The linear layers still go through ``ops.F``; the attention in between is inlined."""
    B, T, D = x.shape
    if not _numpy(x) or D % num_heads:
        return layers.mhsa_forward(x, w_qkv, b_qkv, w_out, b_out, num_heads)   # (raises on bad D)
    F = ops.F
    d = D // num_heads
    qkv, qkv_cache = F.linear_forward(x, w_qkv, b_qkv)            # (B, T, 3D)
    q, k, v = qkv.reshape(B, T, 3, num_heads, d).transpose(2, 0, 3, 1, 4)   # views (B, h, T, d)
    merged = np.empty((B, T, num_heads, d), dtype=np.result_type(q, k, v))
    _, attn_cache = _attention_two_cores(q, k, v, out=merged.transpose(0, 2, 1, 3))
    out, out_cache = F.linear_forward(merged.reshape(B, T, D), w_out, b_out)
    return out, (qkv_cache, attn_cache, out_cache, num_heads)


def mhsa_backward(dout, cache):
    """Same as ``layers.mhsa_backward``. dq, dk, dv are written by the matmuls straight into one
    (B, T, 3, h, d) buffer, which *is* the (B, T, 3D) gradient of the fused qkv projection
    (the reference stacks them and copies them back through a transpose)."""
    qkv_cache, attn_cache, out_cache, num_heads = cache
    if not _numpy(dout, *attn_cache[:4]):
        return layers.mhsa_backward(dout, cache)
    F = ops.F
    dmerged, dw_out, db_out = F.linear_backward(dout, out_cache)
    B, T, D = dmerged.shape
    d = D // num_heads
    dheads = dmerged.reshape(B, T, num_heads, d).transpose(0, 2, 1, 3)      # view (B, h, T, d)
    q, k, v, A, _ = attn_cache
    dqkv = np.empty((B, T, 3, num_heads, d), dtype=np.result_type(dheads, q, k, v, A))
    dq, dk, dv = dqkv.transpose(2, 0, 3, 1, 4)                             # views (B, h, T, d)
    _attention_backward_two_cores(dheads, attn_cache, dq, dk, dv)
    dx, dw_qkv, db_qkv = F.linear_backward(dqkv.reshape(B, T, 3 * D), qkv_cache)
    return dx, dw_qkv, db_qkv, dw_out, db_out


# ------------------------------------------------------------------------------ LayerNorm
def layernorm_forward(x, gamma, beta, eps=1e-6):
    """Same as ``layers.layernorm_forward``, on a 2D (rows, D) view: the variance's sum of
    squares comes from einsum (no (x - mu)^2 array) and x - mu is normalized in place, so two
    full-size arrays are allocated (xhat and y) instead of four."""
    D = x.shape[-1]
    if not _numpy(x, gamma, beta) or gamma.shape != (D,) or beta.shape != (D,):
        return layers.layernorm_forward(x, gamma, beta, eps)            # (raises on bad shapes)
    x2 = x.reshape(-1, D)
    xhat = x2 - x2.mean(axis=1, keepdims=True)                          # x - mu, ours
    rstd = np.einsum("ij,ij->i", xhat, xhat)
    rstd /= D
    rstd += eps
    np.sqrt(rstd, out=rstd)
    np.reciprocal(rstd, out=rstd)
    rstd = rstd[:, None]                                                # (rows, 1)
    xhat *= rstd
    y = xhat * gamma
    y += beta
    return y.reshape(x.shape), (xhat.reshape(x.shape), rstd.reshape(x.shape[:-1] + (1,)), gamma)


def layernorm_backward(dy, cache):
    """Same as ``layers.layernorm_backward``. The per-row means of g = dy * gamma and of
    g * xhat are matrix-vector products, dy @ gamma and (dy * xhat) @ gamma (and dy * xhat is
    needed for dgamma anyway), so only two full-size arrays are allocated instead of six."""
    xhat, rstd, gamma = cache
    if not _numpy(dy, xhat, rstd, gamma):
        return layers.layernorm_backward(dy, cache)
    D = xhat.shape[-1]
    dy2 = dy.reshape(-1, D)
    xh = xhat.reshape(-1, D)
    tmp = dy2 * xh                                    # (rows, D) scratch
    dgamma = tmp.sum(axis=0)
    dbeta = dy2.sum(axis=0)
    mean_g = dy2 @ gamma                              # sum over D of g
    mean_gx = tmp @ gamma                             # sum over D of g * xhat
    mean_g /= D
    mean_gx /= D
    np.multiply(xh, mean_gx[:, None], out=tmp)
    tmp += mean_g[:, None]                            # mean(g) + xhat * mean(g * xhat)
    dx = dy2 * gamma                                  # g
    dx -= tmp
    dx *= rstd.reshape(-1, 1)
    return dx.reshape(dy.shape), dgamma, dbeta


# ----------------------------------------------------------------------------------- GELU
def gelu_forward(x, approximate="tanh"):
    """Same as ``layers.gelu_forward``; the tanh form's argument is built as x (c + k c x^2)
    (one pass fewer). The exact (erf) form runs the reference."""
    if approximate != "tanh" or not _numpy(x):
        return layers.gelu_forward(x, approximate)
    inner = x * x
    inner *= _K * _C
    inner += _C
    inner *= x                                        # c (x + k x^3)
    t = np.tanh(inner, out=inner)
    y = t + 1.0
    y *= x
    y *= 0.5
    return y, (x, t, approximate)


def gelu_backward(dout, cache):
    """Same as ``layers.gelu_backward``; for the tanh form, with u = 0.5 c x (1 + 3k x^2),

        d/dx = 0.5 (1 + t) + (1 - t^2) u = (1 + t) (0.5 + (1 - t) u)

    (one pass fewer, and 1 - t^2 is never formed)."""
    x, t, approximate = cache
    if approximate != "tanh" or not _numpy(dout, x, t):
        return layers.gelu_backward(dout, cache)
    u = x * x
    u *= 1.5 * _K * _C
    u += 0.5 * _C
    u *= x                                            # u = 0.5 c x (1 + 3k x^2)
    w = np.subtract(1.0, t)
    u *= w
    u += 0.5
    np.add(t, 1.0, out=w)
    u *= w
    u *= dout
    return u


# ---------------------------------------------------------------------------------- AdamW
def adamw_update(w, g, m, v, t, lr, b1=0.9, b2=0.999, eps=1e-8, weight_decay=0.0):
    """Same as ``optim.adamw_update`` (the same operations in the same order), with every
    intermediate written into one scratch array instead of six fresh ones."""
    if not _numpy(w, g, m, v):
        return optim.adamw_update(w, g, m, v, t, lr, b1, b2, eps, weight_decay)
    tmp = np.multiply(g, 1.0 - b1)
    m *= b1
    m += tmp
    np.multiply(g, g, out=tmp)
    tmp *= 1.0 - b2
    v *= b2
    v += tmp
    if weight_decay:
        w *= 1.0 - lr * weight_decay
    correction = math.sqrt(1.0 - b2 ** t)
    step_size = lr * correction / (1.0 - b1 ** t)
    np.sqrt(v, out=tmp)
    tmp += eps * correction
    np.divide(m, tmp, out=tmp)
    tmp *= step_size
    w -= tmp


# ------------------------------------------------------------------------------ exports
FAST_NAMES = (
    "softmax_forward", "softmax_backward",
    "attention_forward", "attention_backward",
    "mhsa_forward", "mhsa_backward",
    "layernorm_forward", "layernorm_backward",
    "gelu_forward", "gelu_backward",
    "adamw_update",
)
FUNCTIONS = {name: globals()[name] for name in FAST_NAMES}   # for ops.use / ops.install
assert set(FAST_NAMES) <= set(ops.FUNCTION_NAMES)


def functions() -> dict:
    """The fast functions to pass to ``ops.use`` / ``ops.install``; {} (the reference everywhere)
    when MINIVIT_FAST_PATHS=0. On top of them, the fused GPU kernels that MINIVIT_FUSED chooses
    (``minivit.fused``: by default only those a GPU has verified); they run only on CuPy arrays."""
    if not enabled():
        return {}
    from minivit import fused

    return {**FUNCTIONS, **fused.functions(fallback=FUNCTIONS)}
