"""Exercise 3: Softmax + scaled dot-product attention.

TOPIC: attention
FUNCTION: attention_forward
EXPECT: UNNAMED
KIND: forward

The scores use k.T on the batched (..., T, d) keys: .T reverses every axis, not only the last two.
"""
import math

import numpy as np


def softmax_forward(x, axis=-1):
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    s = e / e.sum(axis=axis, keepdims=True)
    return s, (s, axis)


def softmax_backward(dout, cache):
    s, axis = cache
    return s * (dout - (dout * s).sum(axis=axis, keepdims=True))


def attention_forward(q, k, v):
    d = q.shape[-1]
    scale = 1.0 / math.sqrt(d)
    scores = q @ k.T * scale
    A, _ = softmax_forward(scores, axis=-1)
    out = A @ v
    return out, (q, k, v, A, scale)


def attention_backward(dout, cache):
    q, k, v, A, scale = cache
    dv = A.swapaxes(-1, -2) @ dout
    dA = dout @ v.swapaxes(-1, -2)
    dS = softmax_backward(dA, (A, -1))
    dq = scale * dS @ k
    dk = scale * dS.swapaxes(-1, -2) @ q
    return dq, dk, dv
