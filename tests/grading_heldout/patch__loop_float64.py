"""Exercise 1: Patchify + patch embedding (the linear layer). A learner's solution (replaces exercises/ex01_patch_embedding.py).

TOPIC: patch
FUNCTION: patchify_forward
MISTAKE: The output buffer is made with np.zeros without a dtype, so float32 images come back as float64 patches.
KIND: forward
EXPECT: float64_promotion
"""
import numpy as np

from minivit.backend import get_array_module


def patchify_forward(x, patch_size):
    """Cut images into flattened patches: (B, H, W, C) -> (B, N, P*P*C)."""
    B, H, W, C = x.shape
    P = patch_size
    gh, gw = H // P, W // P
    out = np.zeros((B, gh * gw, P * P * C))
    n = 0
    for i in range(gh):
        for j in range(gw):
            patch = x[:, i * P:(i + 1) * P, j * P:(j + 1) * P, :]
            out[:, n, :] = patch.reshape(B, P * P * C)
            n += 1
    return out, (x.shape, P)


def patchify_backward(dout, cache):
    """(B, N, P*P*C) -> dx (B, H, W, C)."""
    x_shape, P = cache
    B, H, W, C = x_shape
    gh, gw = H // P, W // P
    dx = dout.reshape(B, gh, gw, P, P, C)
    dx = dx.transpose(0, 1, 3, 2, 4, 5)            # back to (B, gh, P, gw, P, C)
    dx = dx.reshape(B, H, W, C)
    return dx


def linear_forward(x, w, b):
    """y = x @ w + b.   x: (..., D_in)   w: (D_in, D_out)   b: (D_out,)"""
    D_in = x.shape[-1]
    x2 = x.reshape(-1, D_in)
    y = x2 @ w + b
    y = y.reshape(*x.shape[:-1], w.shape[1])
    return y, (x, w)


def linear_backward(dy, cache):
    """dy: (..., D_out) -> dx (..., D_in), dw (D_in, D_out), db (D_out,)."""
    x, w = cache
    D_in, D_out = w.shape
    x2 = x.reshape(-1, D_in)
    dy2 = dy.reshape(-1, D_out)
    dx = (dy2 @ w.T).reshape(x.shape)
    dw = x2.T @ dy2
    db = dy2.sum(axis=0)
    return dx, dw, db
