"""Exercise 3: Softmax + scaled dot-product attention.

TOPIC: attention
FUNCTION: attention_forward
EXPECT: VALID
KIND: forward

Correct: log-sum-exp softmax, einsum, lists instead of tuples, the cache holds other things.
"""
import math

import numpy as np


def softmax_forward(x, axis=-1):
    m = np.max(x, axis=axis, keepdims=True)
    lse = m + np.log(np.sum(np.exp(x - m), axis=axis, keepdims=True))
    s = np.exp(x - lse)
    return [s, {"s": s, "axis": axis}]


def softmax_backward(dout, cache):
    s, axis = cache["s"], cache["axis"]
    inner = np.sum(dout * s, axis=axis, keepdims=True)
    return s * dout - s * inner


def attention_forward(q, k, v):
    scale = 1 / math.sqrt(q.shape[-1])
    scores = np.einsum("...id,...jd->...ij", q, k) * scale
    A, _ = softmax_forward(scores)
    return [np.einsum("...ij,...jd->...id", A, v), [q, k, v, A]]


def attention_backward(dout, cache):
    q, k, v, A = cache
    scale = 1 / math.sqrt(q.shape[-1])
    dv = np.einsum("...ij,...id->...jd", A, dout)
    dA = np.einsum("...id,...jd->...ij", dout, v)
    dS = A * dA - A * np.sum(A * dA, axis=-1, keepdims=True)
    dq = np.einsum("...ij,...jd->...id", dS, k) * scale
    dk = np.einsum("...ij,...id->...jd", dS, q) * scale
    return [dq, dk, dv]
