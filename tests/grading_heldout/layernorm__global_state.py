"""Exercise 5: Layer normalization. A learner's solution (replaces exercises/ex05_layernorm.py).

TOPIC: layernorm
FUNCTION: layernorm_backward
MISTAKE: xhat, rstd and gamma are kept in a module-level dict instead of the cache, so the backward uses the values of the most recent forward call, not of the call it belongs to.
KIND: backward
EXPECT: state_outside_cache
"""
import numpy as np

from minivit.backend import get_array_module

_saved = {}


def layernorm_forward(x, gamma, beta, eps=1e-6):
    """x: (..., D)   gamma, beta: (D,)   returns: y (..., D), cache."""
    mu = x.mean(axis=-1, keepdims=True)
    xc = x - mu
    var = (xc ** 2).mean(axis=-1, keepdims=True)
    rstd = 1.0 / np.sqrt(var + eps)
    xhat = xc * rstd
    y = gamma * xhat + beta
    _saved["xhat"], _saved["rstd"], _saved["gamma"] = xhat, rstd, gamma
    return y, None


def layernorm_backward(dy, cache):
    """dy: (..., D) -> dx (..., D), dgamma (D,), dbeta (D,)."""
    xhat, rstd, gamma = _saved["xhat"], _saved["rstd"], _saved["gamma"]
    D = xhat.shape[-1]
    dgamma = (dy * xhat).reshape(-1, D).sum(axis=0)
    dbeta = dy.reshape(-1, D).sum(axis=0)
    g = dy * gamma
    dx = rstd * (g - g.mean(axis=-1, keepdims=True) - xhat * (g * xhat).mean(axis=-1, keepdims=True))
    return dx, dgamma, dbeta
