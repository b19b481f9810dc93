"""Exercise 1: Patchify + patch embedding (the linear layer).

TOPIC: patch
FUNCTION: linear_backward
EXPECT: VALID
KIND: backward

Correct: patches by loops (dtype kept), einsum linear layer, lists returned.
"""
import numpy as np


def patchify_forward(x, patch_size):
    B, H, W, C = x.shape
    P = patch_size
    gh, gw = H // P, W // P
    out = np.empty((B, gh * gw, P * P * C), dtype=x.dtype)
    for n in range(gh * gw):
        i, j = divmod(n, gw)
        out[:, n, :] = x[:, i * P:(i + 1) * P, j * P:(j + 1) * P, :].reshape(B, P * P * C)
    return [out, {"shape": x.shape, "P": P}]


def patchify_backward(dout, cache):
    B, H, W, C = cache["shape"]
    P = cache["P"]
    gw = W // P
    dx = np.zeros((B, H, W, C), dtype=dout.dtype)
    for n in range(dout.shape[1]):
        i, j = divmod(n, gw)
        dx[:, i * P:(i + 1) * P, j * P:(j + 1) * P, :] = dout[:, n].reshape(B, P, P, C)
    return dx


def linear_forward(x, w, b):
    return [np.einsum("...i,io->...o", x, w) + b, [x, w]]


def linear_backward(dy, cache):
    x, w = cache
    lead = tuple(range(dy.ndim - 1))
    dx = np.einsum("...o,io->...i", dy, w)
    dw = np.tensordot(x, dy, axes=(lead, lead))
    db = dy.sum(axis=lead)
    return [dx, dw, db]
