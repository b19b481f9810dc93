"""Exercise 2: Class token + position embeddings. A learner's solution (replaces exercises/ex02_tokens.py).

TOPIC: tokens
FUNCTION: pos_embed_forward
MISTAKE: The position embeddings are added in place (x += pos), which overwrites the caller's input array.
KIND: forward
EXPECT: input_modified
"""
import numpy as np

from minivit.backend import get_array_module


def cls_token_forward(x, cls):
    """Prepend the class token: x (B, N, D), cls (1, 1, D) -> (B, N+1, D)."""
    B, N, D = x.shape
    out = np.empty((B, N + 1, D), dtype=x.dtype)
    out[:, 0] = cls[0, 0]
    out[:, 1:] = x
    return out, None


def cls_token_backward(dout, cache):
    """dout (B, N+1, D) -> dx (B, N, D), dcls (1, 1, D)."""
    dx = dout[:, 1:]
    dcls = dout[:, :1].sum(axis=0, keepdims=True)
    return dx, dcls


def pos_embed_forward(x, pos):
    """x (B, T, D) + pos (1, T, D)."""
    x += pos
    return x, None


def pos_embed_backward(dout, cache):
    """dout (B, T, D) -> dx (B, T, D), dpos (1, T, D)."""
    dx = dout
    dpos = dout.sum(axis=0, keepdims=True)
    return dx, dpos
