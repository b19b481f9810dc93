"""Exercise 6: GELU + the MLP block. A learner's solution (replaces exercises/ex06_mlp.py).

TOPIC: mlp
FUNCTION: mlp_backward
MISTAKE: The gradients are returned as (dx, dw2, db2, dw1, db1) instead of in the forward's parameter order (dx, dw1, db1, dw2, db2).
KIND: backward
EXPECT: grads_wrong_order
"""
import math

import numpy as np

from minivit.backend import get_array_module
from minivit.layers.activation import _erf as erf   # elementwise erf, NumPy and CuPy
from minivit.ops import F   # minivit's functions (yours when training with --impl exercises)

C = math.sqrt(2 / math.pi)
K = 0.044715


def gelu_forward(x, approximate="tanh"):
    """x: any shape -> y same shape, cache. approximate: 'tanh' or 'none' (exact erf)."""
    if approximate == "tanh":
        t = np.tanh(C * (x + K * x ** 3))
        y = 0.5 * x * (1 + t)
        return y, (x, t, approximate)
    if approximate == "none":
        Phi = 0.5 * (1 + erf(x / math.sqrt(2)))
        return x * Phi, (x, Phi, approximate)
    raise ValueError(f"unknown approximate={approximate!r}")


def gelu_backward(dout, cache):
    """dout: same shape as x -> dx."""
    x, t, approximate = cache
    if approximate == "tanh":
        dinner = C * (1 + 3 * K * x ** 2)
        local = 0.5 * (1 + t) + 0.5 * x * (1 - t ** 2) * dinner
    else:
        Phi = t
        phi = np.exp(-0.5 * x ** 2) / math.sqrt(2 * math.pi)
        local = Phi + x * phi
    return dout * local


def mlp_forward(x, w1, b1, w2, b2, approximate="tanh"):
    """x: (B, T, D) -> out (B, T, D), cache."""
    h, fc1_cache = F.linear_forward(x, w1, b1)
    a, gelu_cache = gelu_forward(h, approximate)
    out, fc2_cache = F.linear_forward(a, w2, b2)
    return out, (fc1_cache, gelu_cache, fc2_cache)


def mlp_backward(dout, cache):
    """dout: (B, T, D) -> dx (B, T, D), dw1, db1, dw2, db2."""
    fc1_cache, gelu_cache, fc2_cache = cache
    da, dw2, db2 = F.linear_backward(dout, fc2_cache)
    dh = gelu_backward(da, gelu_cache)
    dx, dw1, db1 = F.linear_backward(dh, fc1_cache)
    return dx, dw2, db2, dw1, db1
