"""Exercise 5: Layer normalization. A learner's solution (replaces exercises/ex05_layernorm.py).

TOPIC: layernorm
FUNCTION: layernorm_forward
MISTAKE: The variance is computed as E[x^2] - E[x]^2, which cancels catastrophically in float32 when the features have a large mean.
KIND: forward
EXPECT: layernorm_float32_cancellation
"""
import numpy as np

from minivit.backend import get_array_module


def layernorm_forward(x, gamma, beta, eps=1e-6):
    """x: (..., D)   gamma, beta: (D,)   returns: y (..., D), cache."""
    mu = x.mean(axis=-1, keepdims=True)
    xc = x - mu
    var = (x ** 2).mean(axis=-1, keepdims=True) - mu ** 2
    rstd = 1.0 / np.sqrt(var + eps)
    xhat = xc * rstd
    y = gamma * xhat + beta
    return y, (xhat, rstd, gamma)


def layernorm_backward(dy, cache):
    """dy: (..., D) -> dx (..., D), dgamma (D,), dbeta (D,)."""
    xhat, rstd, gamma = cache
    D = xhat.shape[-1]
    dgamma = (dy * xhat).reshape(-1, D).sum(axis=0)
    dbeta = dy.reshape(-1, D).sum(axis=0)
    g = dy * gamma
    dx = rstd * (g - g.mean(axis=-1, keepdims=True) - xhat * (g * xhat).mean(axis=-1, keepdims=True))
    return dx, dgamma, dbeta
