"""Exercise 1: Patchify + patch embedding (the linear layer).

TOPIC: patch
FUNCTION: patchify_forward
EXPECT: patch_no_transpose
KIND: forward

One reshape, no transpose (both passes).
"""
import numpy as np


def patchify_forward(x, patch_size):
    B, H, W, C = x.shape
    return x.reshape(B, (H // patch_size) * (W // patch_size), -1), (x.shape, patch_size)


def patchify_backward(dout, cache):
    shape, P = cache
    return dout.reshape(shape)


def linear_forward(x, w, b):
    D_in = x.shape[-1]
    y = x.reshape(-1, D_in) @ w + b
    return y.reshape(*x.shape[:-1], w.shape[1]), (x, w)


def linear_backward(dy, cache):
    x, w = cache
    D_in, D_out = w.shape
    x2 = x.reshape(-1, D_in)
    dy2 = dy.reshape(-1, D_out)
    dx = (dy2 @ w.T).reshape(x.shape)
    dw = x2.T @ dy2
    db = dy2.sum(axis=0)
    return dx, dw, db
