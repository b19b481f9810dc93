"""Exercise 1: Patchify + patch embedding (the linear layer).

TOPIC: patch
FUNCTION: linear_forward
EXPECT: linear_w_transposed
KIND: forward

y = x @ w.T + b.
"""
import numpy as np


def patchify_forward(x, patch_size):
    B, H, W, C = x.shape
    P = patch_size
    out = x.reshape(B, H // P, P, W // P, P, C).transpose(0, 1, 3, 2, 4, 5).reshape(B, -1, P * P * C)
    return out, (x.shape, P)


def patchify_backward(dout, cache):
    (B, H, W, C), P = cache
    dx = dout.reshape(B, H // P, W // P, P, P, C).transpose(0, 1, 3, 2, 4, 5).reshape(B, H, W, C)
    return dx


def linear_forward(x, w, b):
    return x @ w.T + b, (x, w)


def linear_backward(dy, cache):
    x, w = cache
    x2, dy2 = x.reshape(-1, x.shape[-1]), dy.reshape(-1, dy.shape[-1])
    return (dy2 @ w).reshape(x.shape), dy2.T @ x2, dy2.sum(axis=0)
