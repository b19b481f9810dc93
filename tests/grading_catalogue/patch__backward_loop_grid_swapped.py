"""Exercise 1: Patchify + patch embedding (the linear layer).

TOPIC: patch
FUNCTION: patchify_backward
EXPECT: UNNAMED
KIND: backward

A loop backward that swaps the grid row and column counts: on a non-square image the slice is
empty and NumPy says "could not broadcast input array from shape ...". That is not a keepdims
mistake, so broadcast_keepdims must not be named.
"""
import numpy as np


def patchify_forward(x, patch_size):
    B, H, W, C = x.shape
    P = patch_size
    out = x.reshape(B, H // P, P, W // P, P, C).transpose(0, 1, 3, 2, 4, 5).reshape(B, -1, P * P * C)
    return out, (x.shape, P)


def patchify_backward(dout, cache):
    (B, H, W, C), P = cache
    dx = np.zeros((B, H, W, C), dtype=dout.dtype)
    rows, cols = W // P, H // P                    # swapped: rows should be H // P
    for i in range(rows):
        for j in range(cols):
            patch = dout[:, i * cols + j].reshape(B, P, P, C)
            dx[:, i * P:(i + 1) * P, j * P:(j + 1) * P, :] = patch
    return dx


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
