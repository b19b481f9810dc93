"""Exercise 2: Class token + position embeddings.

TOPIC: tokens
FUNCTION: pos_embed_backward
EXPECT: VALID
KIND: backward

Correct: np.add for the forward, einsum sums, a cache that is not used.
"""
import numpy as np


def cls_token_forward(x, cls):
    B, N, D = x.shape
    out = np.empty((B, N + 1, D), dtype=x.dtype)
    out[:, 0] = cls[0, 0]
    out[:, 1:] = x
    return out, None


def cls_token_backward(dout, cache):
    return dout[:, 1:, :], np.sum(dout[:, 0, :], axis=0).reshape(1, 1, -1)


def pos_embed_forward(x, pos):
    out = np.add(x, pos)
    return out, (x.shape, pos.shape)


def pos_embed_backward(dout, cache):
    dpos = np.einsum("btd->td", dout)[None]
    return dout, dpos
