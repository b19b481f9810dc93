"""Exercise 5: Layer normalization. A learner's solution (replaces exercises/ex05_layernorm.py).

Correct: the backward written step by step through var and mu (the long chain rule).

TOPIC: layernorm
FUNCTION: layernorm_backward
EXPECT: VALID
KIND: backward
"""
import numpy as np


def layernorm_forward(x, gamma, beta, eps=1e-6):
    D = x.shape[-1]
    mu = x.sum(axis=-1, keepdims=True) / D
    xc = x - mu
    var = (xc * xc).sum(axis=-1, keepdims=True) / D
    std = np.sqrt(var + eps)
    xhat = xc / std
    return xhat * gamma + beta, (xc, std, xhat, gamma)


def layernorm_backward(dy, cache):
    xc, std, xhat, gamma = cache
    D = xc.shape[-1]
    dxhat = dy * gamma
    dvar = np.sum(dxhat * xc, axis=-1, keepdims=True) * -0.5 * std ** -3
    dmu = -np.sum(dxhat / std, axis=-1, keepdims=True) - 2.0 * dvar * np.mean(xc, axis=-1, keepdims=True)
    dx = dxhat / std + dvar * 2.0 * xc / D + dmu / D
    flat = dy.reshape(-1, D)
    return dx, (flat * xhat.reshape(-1, D)).sum(0), flat.sum(0)
