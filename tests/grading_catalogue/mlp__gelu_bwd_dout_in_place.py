"""Exercise 6: GELU + the MLP block.

TOPIC: mlp
FUNCTION: gelu_backward
EXPECT: input_modified
KIND: backward

GELU's backward multiplies the upstream gradient in place, `dout *= ...`, and returns it (the values
are right; the caller's dout changed).
"""
import math

import numpy as np
from minivit.layers.activation import _erf as erf   # elementwise erf, as imported by the exercise stub

C = math.sqrt(2 / math.pi)


def gelu_forward(x, approximate="tanh"):
    if approximate == "tanh":
        t = np.tanh(C * (x + 0.044715 * x ** 3))
        return 0.5 * x * (1 + t), (x, t, approximate)
    cdf = 0.5 * (1 + erf(x / math.sqrt(2)))
    return x * cdf, (x, cdf, approximate)


def gelu_backward(dout, cache):
    x, t, approximate = cache
    if approximate == "tanh":
        dt = (1 - t ** 2) * C * (1 + 3 * 0.044715 * x ** 2)
        dout *= 0.5 * (1 + t) + 0.5 * x * dt
        return dout
    pdf = np.exp(-0.5 * x ** 2) / math.sqrt(2 * math.pi)
    dout *= t + x * pdf
    return dout


def mlp_forward(x, w1, b1, w2, b2, approximate="tanh"):
    h = x @ w1 + b1
    a, gcache = gelu_forward(h, approximate)
    out = a @ w2 + b2
    return out, (x, w1, w2, a, gcache)


def mlp_backward(dout, cache):
    x, w1, w2, a, gcache = cache
    D, M = w1.shape
    da = dout @ w2.T
    dw2 = a.reshape(-1, M).T @ dout.reshape(-1, D)
    db2 = dout.reshape(-1, D).sum(axis=0)
    dh = gelu_backward(da, gcache)
    dx = dh @ w1.T
    dw1 = x.reshape(-1, D).T @ dh.reshape(-1, M)
    db1 = dh.reshape(-1, M).sum(axis=0)
    return dx, dw1, db1, dw2, db2
