"""Exercise 1: Patchify + patch embedding (the linear layer).

TOPIC: patch
FUNCTION: patchify_backward
EXPECT: VALID
KIND: backward

Correct: swapaxes instead of transpose, batched matmul for dw, db via ones.
"""
import numpy as np


def patchify_forward(x, patch_size):
    B, H, W, C = x.shape
    P = patch_size
    y = x.reshape(B, H // P, P, W // P, P, C).swapaxes(2, 3)
    return y.reshape(B, (H // P) * (W // P), P * P * C), (B, H, W, C, P)


def patchify_backward(dout, cache):
    B, H, W, C, P = cache
    y = dout.reshape(B, H // P, W // P, P, P, C).swapaxes(2, 3)
    return np.ascontiguousarray(y).reshape(B, H, W, C)


def linear_forward(x, w, b):
    D_in = x.shape[-1]
    y = x.reshape(-1, D_in) @ w + b
    return y.reshape(*x.shape[:-1], w.shape[1]), (x, w)


def linear_backward(dy, cache):
    x, w = cache
    D_out = w.shape[1]
    x2 = x.reshape(-1, w.shape[0])
    dy2 = dy.reshape(-1, D_out)
    ones = np.ones(dy2.shape[0], dtype=dy.dtype)
    return np.matmul(dy, w.T), np.matmul(x2.T, dy2), ones @ dy2
