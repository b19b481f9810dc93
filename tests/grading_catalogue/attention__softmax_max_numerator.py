"""Exercise 3: Softmax + scaled dot-product attention.

TOPIC: attention
FUNCTION: softmax_forward
EXPECT: softmax_max_in_numerator_only
KIND: forward

Subtracts the max in the numerator only.
"""
import math

import numpy as np


def softmax_forward(x, axis=-1):
    top = np.exp(x - np.max(x, axis=axis, keepdims=True))
    s = top / np.sum(np.exp(x), axis=axis, keepdims=True)
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
    dA = dout @ v.swapaxes(-1, -2)
    dS = softmax_backward(dA, (A, -1))
    dq = scale * dS @ k
    dk = scale * dS.swapaxes(-1, -2) @ q
    return dq, dk, dv
