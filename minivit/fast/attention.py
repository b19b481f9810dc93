"""Fast paths for softmax, scaled dot-product attention and multi-head self-attention (see
``minivit/fast/__init__.py``), with the attention core split over the batch in two threads on a
two-core CPU."""
from __future__ import annotations

import math
import os
import threading

import numpy as np

from minivit import layers, ops
from minivit.fast.layers import _numpy, row_sums
from minivit.fast.parallel import SHARD_THREAD_PREFIX


# ----------------------------------------------------------------------------------- softmax
def _exp_normalize_(e, axis=-1):
    """exp(e) / sum(exp(e)) along ``axis``, in place; e holds scores already shifted by their max.
    Along the last axis the row sums are a matrix-vector product (e @ ones)."""
    np.exp(e, out=e)
    if axis in (-1, e.ndim - 1) and e.dtype.kind == "f":
        total = row_sums(e)[..., None]
    else:
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
