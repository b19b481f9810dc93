"""Exercise 3: Softmax + scaled dot-product attention. A learner's solution (replaces exercises/ex03_attention.py).

TOPIC: attention
FUNCTION: attention_backward
MISTAKE: The softmax backward inside attention sums dA * A over the query axis (axis=-2) instead of over each row's keys (axis=-1).
KIND: backward
EXPECT: softmax_backward_wrong_axis
"""
import math

import numpy as np

from minivit.backend import get_array_module


def softmax_forward(x, axis=-1):
    """Numerically stable softmax along axis."""
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    s = e / e.sum(axis=axis, keepdims=True)
    return s, (s, axis)


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
    dv = A.swapaxes(-1, -2) @ dout
    dA = dout @ v.swapaxes(-1, -2)
    dS = A * (dA - (dA * A).sum(axis=-2, keepdims=True))
    dq = scale * (dS @ k)
    dk = scale * (dS.swapaxes(-1, -2) @ q)
    return dq, dk, dv
