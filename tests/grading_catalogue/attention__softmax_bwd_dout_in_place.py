"""Exercise 3: Softmax + scaled dot-product attention.

TOPIC: attention
FUNCTION: softmax_backward
EXPECT: input_modified
KIND: backward

The softmax backward works in the upstream gradient's own array: `dout -= ...; dout *= s` (the values
are right, but the caller's dout changed).
"""
import math

import numpy as np


def softmax_forward(x, axis=-1):
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    s = e / e.sum(axis=axis, keepdims=True)
    return s, (s, axis)


def softmax_backward(dout, cache):
    s, axis = cache
    dout -= (dout * s).sum(axis=axis, keepdims=True)
    dout *= s
    return dout


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
    dA = dout @ v.swapaxes(-1, -2)
    dS = softmax_backward(dA, (A, -1))
    dq = scale * dS @ k
    dk = scale * dS.swapaxes(-1, -2) @ q
    return dq, dk, dv
