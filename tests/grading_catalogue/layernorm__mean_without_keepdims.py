"""Exercise 5: Layer normalization. A learner's solution (replaces exercises/ex05_layernorm.py).

The mean drops its axis (no keepdims), so x - mu does not line up.

TOPIC: layernorm
FUNCTION: layernorm_forward
EXPECT: broadcast_keepdims
KIND: forward
"""
import numpy as np


def layernorm_forward(x, gamma, beta, eps=1e-6):
    mu = x.mean(axis=-1)
    xc = x - mu
    var = (xc ** 2).mean(axis=-1, keepdims=True)
    rstd = 1.0 / np.sqrt(var + eps)
    xhat = xc * rstd
    return gamma * xhat + beta, (xhat, rstd, gamma)


def layernorm_backward(dy, cache):
    xhat, rstd, gamma = cache
    D = xhat.shape[-1]
    g = dy * gamma
    dx = rstd * (g - g.mean(axis=-1, keepdims=True) - xhat * (g * xhat).mean(axis=-1, keepdims=True))
    dgamma = (dy * xhat).reshape(-1, D).sum(axis=0)
    dbeta = dy.reshape(-1, D).sum(axis=0)
    return dx, dgamma, dbeta
