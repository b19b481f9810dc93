"""Exercise 5: Layer normalization. A learner's solution (replaces exercises/ex05_layernorm.py).

The backward scales the upstream gradient in place, `dy *= gamma` (dgamma and dbeta are taken
before, so every value is right; the caller's dy changed).

TOPIC: layernorm
FUNCTION: layernorm_backward
EXPECT: input_modified
KIND: backward
"""
import numpy as np


def layernorm_forward(x, gamma, beta, eps=1e-6):
    mu = x.mean(axis=-1, keepdims=True)
    xc = x - mu
    var = (xc ** 2).mean(axis=-1, keepdims=True)
    rstd = 1.0 / np.sqrt(var + eps)
    xhat = xc * rstd
    return gamma * xhat + beta, (xhat, rstd, gamma)


def layernorm_backward(dy, cache):
    xhat, rstd, gamma = cache
    D = xhat.shape[-1]
    dgamma = (dy * xhat).reshape(-1, D).sum(axis=0)
    dbeta = dy.reshape(-1, D).sum(axis=0)
    dy *= gamma
    dx = rstd * (dy - dy.mean(axis=-1, keepdims=True) - xhat * (dy * xhat).mean(axis=-1, keepdims=True))
    return dx, dgamma, dbeta
