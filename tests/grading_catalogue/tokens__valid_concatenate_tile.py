"""Exercise 2: Class token + position embeddings.

TOPIC: tokens
FUNCTION: cls_token_forward
EXPECT: VALID
KIND: forward

Correct: np.concatenate with np.tile, lists returned, sums via loops over the batch.
"""
import numpy as np


def cls_token_forward(x, cls):
    c = np.tile(cls, (x.shape[0], 1, 1)).astype(x.dtype)
    return [np.concatenate((c, x), axis=1), x.shape]


def cls_token_backward(dout, cache):
    dcls = np.zeros_like(dout[:1, :1])
    for b in range(dout.shape[0]):
        dcls += dout[b:b + 1, :1]
    return [dout[:, 1:].copy(), dcls]


def pos_embed_forward(x, pos):
    return x + pos, None


def pos_embed_backward(dout, cache):
    return dout.copy(), np.add.reduce(dout, axis=0, keepdims=True)
