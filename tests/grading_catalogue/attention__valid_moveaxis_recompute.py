"""Exercise 3: Softmax + scaled dot-product attention.

TOPIC: attention
FUNCTION: attention_backward
EXPECT: VALID
KIND: backward

Correct: softmax via moveaxis, the backward recomputes A from q and k, a one-element tuple.
"""
import math

import numpy as np


def softmax_forward(x, axis=-1):
    y = np.moveaxis(x, axis, -1)
    e = np.exp(y - y.max(-1)[..., None])
    s = np.moveaxis(e / e.sum(-1)[..., None], -1, axis)
    return s, (s, axis)


def softmax_backward(dout, cache):
    s, axis = cache
    dot = (dout * s).sum(axis=axis, keepdims=True)
    return (s * (dout - dot),)


def attention_forward(q, k, v):
    scale = 1.0 / math.sqrt(q.shape[-1])
    A, _ = softmax_forward(np.matmul(q, np.swapaxes(k, -1, -2)) / math.sqrt(q.shape[-1]), -1)
    return np.matmul(A, v), (q, k, v)


def attention_backward(dout, cache):
    q, k, v = cache
    scale = 1.0 / math.sqrt(q.shape[-1])
    A, _ = softmax_forward(q @ np.swapaxes(k, -1, -2) * scale, -1)
    dv = np.swapaxes(A, -1, -2) @ dout
    (dS,) = softmax_backward(dout @ np.swapaxes(v, -1, -2), (A, -1))
    return (dS @ k) * scale, (np.swapaxes(dS, -1, -2) @ q) * scale, dv
