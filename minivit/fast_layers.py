"""Fast paths for LayerNorm, GELU, the linear layer's backward and AdamW (see ``minivit/fast.py``).

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


# ------------------------------------------------------------------------------ LayerNorm
def layernorm_forward(x, gamma, beta, eps=1e-6):
    """Same as ``layers.layernorm_forward``, on a 2D (rows, D) view. The mean and the variance
    are matrix-vector products (x @ 1/D, (x - mu)^2 @ 1/D; the variance still from x - mu, so
    as exact as the reference's), the square is taken in y's buffer before y is written, and
    x - mu is normalized in place: two full-size arrays (xhat and y) instead of four."""
    D = x.shape[-1]
    if not _float_same(x, gamma, beta) or gamma.shape != (D,) or beta.shape != (D,):
        return layers.layernorm_forward(x, gamma, beta, eps)            # (raises on bad shapes)
    x2 = x.reshape(-1, D)
    xhat = np.subtract(x2, row_sums(x2, 1.0 / D)[:, None])              # x - mu, ours
    y = np.square(xhat)                                                 # scratch: (x - mu)^2
    rstd = row_sums(y, 1.0 / D)                                         # var
    rstd += eps
    np.sqrt(rstd, out=rstd)
    np.reciprocal(rstd, out=rstd)
    rstd = rstd[:, None]                                                # (rows, 1)
    xhat *= rstd
    np.multiply(xhat, gamma, out=y)
    y += beta
    return y.reshape(x.shape), (xhat.reshape(x.shape), rstd.reshape(x.shape[:-1] + (1,)), gamma)


def layernorm_backward(dy, cache):
    """Same as ``layers.layernorm_backward``. Every sum is a matrix-vector product: over the
    features, mean(g) = dy @ gamma / D and mean(g * xhat) = (dy * xhat) @ gamma / D (and
    dy * xhat is needed for dgamma anyway); over the rows, dgamma and dbeta. Two full-size
    arrays are allocated instead of six."""
    xhat, rstd, gamma = cache
    if not _float_same(dy, xhat, rstd, gamma):
        return layers.layernorm_backward(dy, cache)
    D = xhat.shape[-1]
    dy2 = dy.reshape(-1, D)
    xh = xhat.reshape(-1, D)
    tmp = dy2 * xh                                    # (rows, D) scratch
    dgamma = col_sums(tmp)
    dbeta = col_sums(dy2)
    gamma_d = gamma / D
    mean_g = dy2 @ gamma_d                            # mean over D of g = dy * gamma
    mean_gx = tmp @ gamma_d                           # mean over D of g * xhat
    np.multiply(xh, mean_gx[:, None], out=tmp)
    tmp += mean_g[:, None]                            # mean(g) + xhat * mean(g * xhat)
    dx = dy2 * gamma                                  # g
    dx -= tmp
    dx *= rstd.reshape(-1, 1)
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
