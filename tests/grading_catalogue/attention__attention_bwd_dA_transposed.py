"""Exercise 3: Softmax + scaled dot-product attention.

TOPIC: attention
FUNCTION: attention_backward
EXPECT: dA_transposed
KIND: backward

dA = v dout^T.
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
    scores = q @ k.swapaxes(-1, -2) * scale
    A, _ = softmax_forward(scores, axis=-1)
    out = A @ v
    return out, (q, k, v, A, scale)


def attention_backward(dout, cache):
    q, k, v, A, scale = cache
    dv = A.swapaxes(-1, -2) @ dout
    dA = v @ dout.swapaxes(-1, -2)
    dS = softmax_backward(dA, (A, -1))
    return scale * dS @ k, scale * dS.swapaxes(-1, -2) @ q, dv
