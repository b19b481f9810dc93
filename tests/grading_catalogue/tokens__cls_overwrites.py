"""Exercise 2: Class token + position embeddings.

TOPIC: tokens
FUNCTION: cls_token_forward
EXPECT: cls_overwrites
KIND: forward

Writes the class token over patch 0.
"""
import numpy as np


def cls_token_forward(x, cls):
    out = x.copy()
    out[:, 0, :] = cls[0, 0, :]
    return out, None


def cls_token_backward(dout, cache):
    dx = dout[:, 1:]
    dcls = dout[:, :1].sum(axis=0, keepdims=True)
    return dx, dcls


def pos_embed_forward(x, pos):
    return x + pos, None


def pos_embed_backward(dout, cache):
    return dout, dout.sum(axis=0, keepdims=True)
