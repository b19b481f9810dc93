"""Exercise 5: Layer normalization. A learner's solution (replaces exercises/ex05_layernorm.py).

The backward reads xhat and rstd from module-level variables set by the last forward.

TOPIC: layernorm
FUNCTION: layernorm_backward
EXPECT: state_outside_cache
KIND: backward
"""
import numpy as np

_last = {}


def layernorm_forward(x, gamma, beta, eps=1e-6):
    mu = x.mean(axis=-1, keepdims=True)
    xc = x - mu
    var = (xc ** 2).mean(axis=-1, keepdims=True)
    rstd = 1.0 / np.sqrt(var + eps)
    xhat = xc * rstd
    _last.update(xhat=xhat, rstd=rstd)
    return gamma * xhat + beta, gamma


def layernorm_backward(dy, cache):
    gamma = cache
    xhat, rstd = _last["xhat"], _last["rstd"]
    D = xhat.shape[-1]
    g = dy * gamma
    dx = rstd * (g - g.mean(axis=-1, keepdims=True) - xhat * (g * xhat).mean(axis=-1, keepdims=True))
    dgamma = (dy * xhat).reshape(-1, D).sum(axis=0)
    dbeta = dy.reshape(-1, D).sum(axis=0)
    return dx, dgamma, dbeta
