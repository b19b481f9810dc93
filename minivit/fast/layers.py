"""Fast paths for LayerNorm, GELU, the linear layer's backward, the MLP and AdamW (see ``minivit/fast/__init__.py``).

Also the helpers the other fast modules share: :func:`row_sums` and :func:`col_sums` add up the
rows or the columns of a matrix with a BLAS matrix-vector product (``a @ ones``, ``ones @ a``),
one pass over memory and several times quicker in NumPy than ``a.sum(axis=...)`` over short rows
(LayerNorm's D = 128 or 256 features, attention's 65 keys).
"""
from __future__ import annotations

import math

import numpy as np

from minivit import layers, optim
from minivit.layers.activation import _C, _K


def _numpy(*arrays) -> bool:
    """True when every array is a NumPy array: the fast paths are CPU paths."""
    return all(isinstance(a, np.ndarray) for a in arrays)


def _float_same(*arrays) -> bool:
    """True when every array is a NumPy float array of one dtype (the fast paths write into buffers
    of that dtype; mixed dtypes run the reference, which promotes as NumPy does)."""
    return _numpy(*arrays) and arrays[0].dtype.kind == "f" and all(a.dtype == arrays[0].dtype for a in arrays)


_FILLED = {}


def filled(n, value, dtype):
    """A read-only vector of n copies of ``value`` (kept for reuse: a few dozen distinct ones per run)."""
    key = (n, value, np.dtype(dtype).str)
    vec = _FILLED.get(key)
    if vec is None:
        vec = np.full(n, value, dtype=dtype)
        vec.flags.writeable = False
        if len(_FILLED) < 256:
            _FILLED[key] = vec
    return vec


def row_sums(a, scale=1.0):
    """scale * a.sum(axis=-1) for a float array a (..., n), as a matrix-vector product."""
    return a @ filled(a.shape[-1], scale, a.dtype)


def col_sums(a2):
    """a2.sum(axis=0) for a float matrix a2 (rows, n), as a vector-matrix product."""
    return filled(a2.shape[0], 1.0, a2.dtype) @ a2


BLOCK_BYTES = 1 << 19     # 512 KiB per full-width slice: the few slices of one block stay in cache


def row_blocks(rows, width, itemsize):
    """Slices of range(rows) of about BLOCK_BYTES per (block, width) slice, at least 8 rows each.
    An elementwise chain run block by block reads its input from memory once and does its other
    passes in cache, instead of streaming every full-size intermediate through memory."""
    step = max(8, BLOCK_BYTES // max(1, width * itemsize))
    return [slice(i, min(i + step, rows)) for i in range(0, rows, step)]


# ------------------------------------------------------------------------------ LayerNorm
def layernorm_forward(x, gamma, beta, eps=1e-6):
    """Same as ``layers.layernorm_forward``, on a 2D (rows, D) view. The mean and the variance
    are matrix-vector products (x @ 1/D, (x - mu)^2 @ 1/D; the variance still from x - mu, so
    as exact as the reference's), the square is taken in y's buffer before y is written, and
    x - mu is normalized in place: two full-size arrays (xhat and y) instead of four. Row block
    by row block (:func:`row_blocks`), so every pass after the first read runs in cache."""
    D = x.shape[-1]
    if not _float_same(x, gamma, beta) or gamma.shape != (D,) or beta.shape != (D,):
        return layers.layernorm_forward(x, gamma, beta, eps)            # (raises on bad shapes)
    x2 = x.reshape(-1, D)
    xhat, y = np.empty(x2.shape, x.dtype), np.empty(x2.shape, x.dtype)
    rstd = np.empty((x2.shape[0], 1), x.dtype)
    inv_d = filled(D, 1.0 / D, x.dtype)
    for sl in row_blocks(x2.shape[0], D, x.dtype.itemsize):             # each block in cache
        xs, xh, ys, r = x2[sl], xhat[sl], y[sl], rstd[sl]
        np.subtract(xs, (xs @ inv_d)[:, None], out=xh)                  # x - mu
        np.square(xh, out=ys)                                           # scratch: (x - mu)^2
        np.matmul(ys, inv_d, out=r[:, 0])                               # var
        r += eps
        np.sqrt(r, out=r)
        np.reciprocal(r, out=r)
        xh *= r
        np.multiply(xh, gamma, out=ys)
        ys += beta
    return y.reshape(x.shape), (xhat.reshape(x.shape), rstd.reshape(x.shape[:-1] + (1,)), gamma)


def layernorm_backward(dy, cache):
    """Same as ``layers.layernorm_backward``. Every sum is a matrix-vector product: over the
    features, mean(g) = dy @ gamma / D and mean(g * xhat) = (dy * xhat) @ gamma / D (and
    dy * xhat is needed for dgamma anyway); over the rows, dgamma and dbeta (summed block by
    block). Row block by row block, in cache: one full-size array (dx) instead of six."""
    xhat, rstd, gamma = cache
    if not _float_same(dy, xhat, rstd, gamma):
        return layers.layernorm_backward(dy, cache)
    D = xhat.shape[-1]
    dy2, xh2, rstd2 = dy.reshape(-1, D), xhat.reshape(-1, D), rstd.reshape(-1, 1)
    dx = np.empty(dy2.shape, dy.dtype)
    dgamma, dbeta = np.zeros(D, dy.dtype), np.zeros(D, dy.dtype)
    gamma_d = gamma / D
    blocks = row_blocks(dy2.shape[0], D, dy.dtype.itemsize)
    scratch = np.empty((blocks[0].stop - blocks[0].start, D), dy.dtype) if blocks else None
    for sl in blocks:                                 # each block in cache
        d, xh, dxs = dy2[sl], xh2[sl], dx[sl]
        tmp = scratch[:len(d)]
        np.multiply(d, xh, out=tmp)                   # g * xhat / gamma
        dgamma += col_sums(tmp)
        dbeta += col_sums(d)
        mean_g = d @ gamma_d                          # mean over D of g = dy * gamma
        mean_gx = tmp @ gamma_d                       # mean over D of g * xhat
        np.multiply(xh, mean_gx[:, None], out=tmp)
        tmp += mean_g[:, None]                        # mean(g) + xhat * mean(g * xhat)
        np.multiply(d, gamma, out=dxs)                # g
        dxs -= tmp
        dxs *= rstd2[sl]
    return dx.reshape(dy.shape), dgamma, dbeta


# ------------------------------------------------------------------------------ linear
def linear_backward(dy, cache):
    """Same as ``layers.linear_backward``; db, the sum of dy over every row, is a vector-matrix
    product (ones @ dy) instead of ``dy.sum(axis=0)``."""
    x, w = cache
    if not _float_same(dy, x, w):
        return layers.linear_backward(dy, cache)
    dy2 = dy.reshape(-1, dy.shape[-1])
    x2 = x.reshape(-1, x.shape[-1])
    dx = (dy2 @ w.T).reshape(x.shape)
    dw = x2.T @ dy2
    return dx, dw, col_sums(dy2)


# ----------------------------------------------------------------------------------- GELU
def _gelu_block(xs, ts, ys):
    """The tanh GELU of one row block: ts = tanh(c (x + k x^3)), built as x (c + k c x^2); ys = y."""
    np.multiply(xs, xs, out=ts)
    ts *= _K * _C
    ts += _C
    ts *= xs                                          # c (x + k x^3)
    np.tanh(ts, out=ts)
    np.add(ts, 1.0, out=ys)
    ys *= xs
    ys *= 0.5


def gelu_forward(x, approximate="tanh"):
    """Same as ``layers.gelu_forward``; the tanh form's argument is built as x (c + k c x^2)
    (one pass fewer), row block by row block so that the intermediate passes stay in cache.
    The exact (erf) form runs the reference."""
    if approximate != "tanh" or not _float_same(x) or x.ndim == 0:
        return layers.gelu_forward(x, approximate)
    x2 = x.reshape(-1, x.shape[-1])
    y, t = np.empty(x2.shape, x.dtype), np.empty(x2.shape, x.dtype)
    for sl in row_blocks(x2.shape[0], x2.shape[1], x.dtype.itemsize):    # each block in cache
        _gelu_block(x2[sl], t[sl], y[sl])
    return y.reshape(x.shape), (x, t.reshape(x.shape), approximate)


def gelu_backward(dout, cache):
    """Same as ``layers.gelu_backward``; for the tanh form, with u = 0.5 c x (1 + 3k x^2),

        d/dx = 0.5 (1 + t) + (1 - t^2) u = (1 + t) (0.5 + (1 - t) u)

    (one pass fewer, and 1 - t^2 is never formed); row block by row block, in cache."""
    x, t, approximate = cache
    if approximate != "tanh" or not _float_same(dout, x, t) or x.ndim == 0 or dout.shape != x.shape:
        return layers.gelu_backward(dout, cache)
    dx, _ = _gelu_backward_blocks(dout, x, t, np.empty(x.shape, x.dtype), want_col_sums=False)
    return dx


def _gelu_backward_blocks(dout, x, t, dx, want_col_sums):
    """The tanh GELU's backward into ``dx`` (which may be ``dout`` itself: each block of dout is read
    before it is written), row block by row block; with want_col_sums also dx summed over the rows
    (the bias gradient of the linear layer before the GELU), each block while it is in cache.
    Returns (dx, the sums or None)."""
    n = x.shape[-1]
    x2, t2, d2, dx2 = x.reshape(-1, n), t.reshape(-1, n), dout.reshape(-1, n), dx.reshape(-1, n)
    sums = np.zeros(n, x.dtype) if want_col_sums else None
    blocks = row_blocks(x2.shape[0], n, x.dtype.itemsize)
    rows = blocks[0].stop - blocks[0].start if blocks else 0
    scratch_u, scratch_w = np.empty((rows, n), x.dtype), np.empty((rows, n), x.dtype)
    for sl in blocks:                                 # each block in cache
        xs, ts = x2[sl], t2[sl]
        u, w = scratch_u[:len(xs)], scratch_w[:len(xs)]
        np.multiply(xs, xs, out=u)
        u *= 1.5 * _K * _C
        u += 0.5 * _C
        u *= xs                                       # u = 0.5 c x (1 + 3k x^2)
        np.subtract(1.0, ts, out=w)
        u *= w
        u += 0.5
        np.add(ts, 1.0, out=w)
        u *= w
        np.multiply(u, d2[sl], out=dx2[sl])
        if sums is not None:
            sums += col_sums(dx2[sl])
    return dx, sums


# ------------------------------------------------------------------------------------ MLP
def mlp_forward(x, w1, b1, w2, b2, approximate="tanh"):
    """Same as ``layers.mlp_forward`` (the same caches): the first layer's bias is added inside the
    GELU's row blocks, in cache, instead of in a pass of its own over the (rows, M) pre-activation,
    the MLP's largest array. The exact (erf) GELU runs the reference."""
    D = x.shape[-1]
    if (approximate != "tanh" or not _float_same(x, w1, b1, w2, b2) or x.ndim < 2 or w1.ndim != 2
            or w1.shape[0] != D or b1.shape != w1.shape[1:] or w2.shape[0] != w1.shape[1]):
        return layers.mlp_forward(x, w1, b1, w2, b2, approximate)        # (raises on bad shapes)
    x2 = x.reshape(-1, D)
    h = x2 @ w1                                       # (rows, M), the bias still to come
    a, t = np.empty(h.shape, h.dtype), np.empty(h.shape, h.dtype)
    for sl in row_blocks(h.shape[0], h.shape[1], h.dtype.itemsize):     # each block in cache
        hs = h[sl]
        hs += b1
        _gelu_block(hs, t[sl], a[sl])
    shape = x.shape[:-1] + h.shape[1:]                # (..., M)
    out, fc2_cache = layers.linear_forward(a.reshape(shape), w2, b2)
    return out, ((x, w1), (h.reshape(shape), t.reshape(shape), approximate), fc2_cache)


def mlp_backward(dout, cache):
    """Same as ``layers.mlp_backward``: the GELU's backward overwrites the (rows, M) gradient the
    second layer's backward just made (no second array of that size) and sums it over the rows for
    the first layer's bias gradient while each block is in cache."""
    fc1_cache, (h, t, approximate), fc2_cache = cache
    if approximate != "tanh" or not _float_same(dout, h, t, *fc1_cache, *fc2_cache) or h.shape != t.shape:
        return layers.mlp_backward(dout, cache)
    da, dw2, db2 = linear_backward(dout, fc2_cache)  # da: a fresh array, ours to overwrite
    dh, db1 = _gelu_backward_blocks(da, h, t, da, want_col_sums=True)
    x, w1 = fc1_cache
    dh2, x2 = dh.reshape(-1, dh.shape[-1]), x.reshape(-1, x.shape[-1])
    return (dh2 @ w1.T).reshape(x.shape), x2.T @ dh2, db1, dw2, db2


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
