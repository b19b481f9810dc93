"""Exercise 5: Layer normalization. A learner's solution (replaces exercises/ex05_layernorm.py).

TOPIC: layernorm
FUNCTION: layernorm_backward
MISTAKE: dgamma averages dy * xhat over the tokens instead of summing it.
KIND: backward
EXPECT: grad_mean_not_sum
"""
import numpy as np

from minivit.backend import get_array_module


def layernorm_forward(x, gamma, beta, eps=1e-6):
    """x: (..., D)   gamma, beta: (D,)   returns: y (..., D), cache."""
    mu = x.mean(axis=-1, keepdims=True)
    xc = x - mu
    var = (xc ** 2).mean(axis=-1, keepdims=True)
    rstd = 1.0 / np.sqrt(var + eps)
    xhat = xc * rstd
    y = gamma * xhat + beta
    return y, (xhat, rstd, gamma)


def layernorm_backward(dy, cache):
    """dy: (..., D) -> dx (..., D), dgamma (D,), dbeta (D,)."""
    xhat, rstd, gamma = cache
    D = xhat.shape[-1]
    dgamma = (dy * xhat).reshape(-1, D).mean(axis=0)
    dbeta = dy.reshape(-1, D).sum(axis=0)
    g = dy * gamma
    dx = rstd * (g - g.mean(axis=-1, keepdims=True) - xhat * (g * xhat).mean(axis=-1, keepdims=True))
    return dx, dgamma, dbeta
