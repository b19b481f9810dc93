"""Exercise 3: Softmax + scaled dot-product attention. A learner's solution (replaces exercises/ex03_attention.py).

TOPIC: attention
FUNCTION: none
MISTAKE: none
KIND: backward
EXPECT: VALID

Valid but unusual (must get full marks): softmax_forward returns [out, cache] as a list, and attention_backward is written with np.einsum (the row sum of dA * A taken explicitly) and returns a list [dq, dk, dv].
"""
import math

import numpy as np

from minivit.backend import get_array_module


def softmax_forward(x, axis=-1):
    """Numerically stable softmax along axis."""
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    s = e / e.sum(axis=axis, keepdims=True)
    return [s, (s, axis)]


def softmax_backward(dout, cache):
    """dx = s * (dout - sum(dout * s)) along the axis."""
    s, axis = cache
    dx = s * (dout - (dout * s).sum(axis=axis, keepdims=True))
    return dx


def attention_forward(q, k, v):
    """out = softmax(q k^T / sqrt(d)) v.   q, k, v: (..., T, d)"""
    d = q.shape[-1]
    scale = 1.0 / math.sqrt(d)
    S = (q @ k.swapaxes(-1, -2)) * scale
    A, _ = softmax_forward(S, axis=-1)
    out = A @ v
    return out, (q, k, v, A, scale)


def attention_backward(dout, cache):
    """dout (..., T, d) -> dq, dk, dv."""
    q, k, v, A, scale = cache
    dv = np.einsum("...ij,...ik->...jk", A, dout)
    dA = np.einsum("...ik,...jk->...ij", dout, v)
    dS = A * dA - A * np.einsum("...ij,...ij->...i", A, dA)[..., None]
    dq = np.einsum("...ij,...jk->...ik", dS, k) * scale
    dk = np.einsum("...ij,...ik->...jk", dS, q) * scale
    return [dq, dk, dv]
