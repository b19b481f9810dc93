"""Exercise 5: Layer normalization. A learner's solution (replaces exercises/ex05_layernorm.py).

Correct: np.var / np.mean, a list returned from both functions, dx by the sum-form of the formula.

TOPIC: layernorm
FUNCTION: layernorm_backward
EXPECT: VALID
KIND: backward
"""
import numpy as np


def layernorm_forward(x, gamma, beta, eps=1e-6):
    mean = np.mean(x, axis=-1, keepdims=True)
    inv = 1.0 / np.sqrt(np.var(x, axis=-1, keepdims=True) + eps)
    xhat = (x - mean) * inv
    return [xhat * gamma + beta, [xhat, inv, gamma]]


def layernorm_backward(dy, cache):
    xhat, inv, gamma = cache
    D = xhat.shape[-1]
    axes = tuple(range(dy.ndim - 1))
    g = dy * gamma
    dx = (D * g - g.sum(axis=-1, keepdims=True) - xhat * np.sum(g * xhat, axis=-1, keepdims=True)) * inv / D
    return [dx, np.sum(dy * xhat, axis=axes), np.sum(dy, axis=axes)]
