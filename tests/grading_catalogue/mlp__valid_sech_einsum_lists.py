"""Exercise 6: GELU + the MLP block. A learner's solution (replaces exercises/ex06_mlp.py).

Correct: tanh derivative via 1/cosh^2, exact form via np.vectorize(math.erf), einsum, lists returned.

TOPIC: mlp
FUNCTION: mlp_backward
EXPECT: VALID
KIND: backward
"""
import math

import numpy as np
from minivit.layers.activation import _erf as erf   # elementwise erf, as imported by the exercise stub

C = math.sqrt(2 / math.pi)


_erf = np.vectorize(math.erf, otypes=[float])


def gelu_forward(x, approximate="tanh"):
    if approximate == "tanh":
        u = C * (x + 0.044715 * x ** 3)
        return [0.5 * x * (1 + np.tanh(u)), [x, approximate]]
    cdf = (0.5 * (1 + _erf(x / math.sqrt(2)))).astype(x.dtype)
    return [x * cdf, [x, approximate]]


def gelu_backward(dout, cache):
    x, approximate = cache
    if approximate == "tanh":
        u = C * (x + 0.044715 * x ** 3)
        with np.errstate(over="ignore"):
            sech2 = 1 / np.cosh(u) ** 2
        return dout * (0.5 * (1 + np.tanh(u)) + 0.5 * x * sech2 * C * (1 + 0.134145 * x * x))
    cdf = (0.5 * (1 + _erf(x / math.sqrt(2)))).astype(x.dtype)
    return dout * (cdf + x * np.exp(-x * x / 2) / math.sqrt(2 * math.pi))


def mlp_forward(x, w1, b1, w2, b2, approximate="tanh"):
    h = np.einsum("btd,dm->btm", x, w1) + b1
    a, gc = gelu_forward(h, approximate)
    return [np.einsum("btm,md->btd", a, w2) + b2, [x, w1, w2, a, gc]]


def mlp_backward(dout, cache):
    x, w1, w2, a, gc = cache
    dw2 = np.einsum("btm,btd->md", a, dout)
    dh = gelu_backward(np.einsum("btd,md->btm", dout, w2), gc)
    return [np.einsum("btm,dm->btd", dh, w1), np.einsum("btd,btm->dm", x, dh), dh.sum(axis=(0, 1)),
            dw2, dout.sum(axis=(0, 1))]
