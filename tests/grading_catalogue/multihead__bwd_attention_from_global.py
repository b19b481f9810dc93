"""Exercise 4: Multi-head self-attention. A learner's solution (replaces exercises/ex04_multihead.py).

The attention weights are kept in a module-level variable instead of the cache.

TOPIC: multihead
FUNCTION: mhsa_backward
EXPECT: state_outside_cache
KIND: backward
"""
import math

import numpy as np


def split_heads(x, num_heads):
    B, T, D = x.shape
    return x.reshape(B, T, num_heads, D // num_heads).transpose(0, 2, 1, 3)


def merge_heads(x):
    B, h, T, d = x.shape
    return x.transpose(0, 2, 1, 3).reshape(B, T, h * d)


def split_heads_backward(dout):
    return merge_heads(dout)


def merge_heads_backward(dout, num_heads):
    return split_heads(dout, num_heads)


def _softmax(s):
    e = np.exp(s - s.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def mhsa_forward(x, w_qkv, b_qkv, w_out, b_out, num_heads):
    B, T, D = x.shape
    d = D // num_heads
    qkv = x @ w_qkv + b_qkv                                   # (B, T, 3D)
    q, k, v = qkv.reshape(B, T, 3, num_heads, d).transpose(2, 0, 3, 1, 4)
    scale = 1.0 / math.sqrt(d)
    A = _softmax(q @ k.swapaxes(-1, -2) * scale)              # (B, h, T, T)
    global _A
    _A = A
    merged = merge_heads(A @ v)
    out = merged @ w_out + b_out
    return out, (x, w_qkv, w_out, q, k, v, A, merged, scale, num_heads)


def mhsa_backward(dout, cache):
    x, w_qkv, w_out, q, k, v, _, merged, scale, num_heads = cache
    A = _A
    B, T, D = x.shape
    dw_out = merged.reshape(-1, D).T @ dout.reshape(-1, D)
    db_out = dout.reshape(-1, D).sum(axis=0)
    dheads = merge_heads_backward(dout @ w_out.T, num_heads)
    dA = dheads @ v.swapaxes(-1, -2)
    dv = A.swapaxes(-1, -2) @ dheads
    dS = A * (dA - (dA * A).sum(axis=-1, keepdims=True))
    dq = dS @ k * scale
    dk = dS.swapaxes(-1, -2) @ q * scale
    dqkv = np.stack([dq, dk, dv]).transpose(1, 3, 0, 2, 4).reshape(B, T, 3 * D)
    dx = dqkv @ w_qkv.T
    dw_qkv = x.reshape(-1, D).T @ dqkv.reshape(-1, 3 * D)
    db_qkv = dqkv.reshape(-1, 3 * D).sum(axis=0)
    return dx, dw_qkv, db_qkv, dw_out, db_out
