"""Exercise 4: Multi-head self-attention. A learner's solution (replaces exercises/ex04_multihead.py).

Correct: q, k, v via np.split of the projection, heads by swapaxes, attention through F (the stub's hint).

TOPIC: multihead
FUNCTION: mhsa_backward
EXPECT: VALID
KIND: backward
"""
import math

import numpy as np


def split_heads(x, num_heads):
    B, T, D = x.shape
    return np.swapaxes(x.reshape(B, T, num_heads, -1), 1, 2)


def merge_heads(x):
    B, h, T, d = x.shape
    return np.swapaxes(x, 1, 2).reshape(B, T, -1)


def split_heads_backward(dout):
    return merge_heads(dout)


def merge_heads_backward(dout, num_heads):
    return split_heads(dout, num_heads)


from minivit.ops import F   # the other topics' functions (minivit's while grading)


def mhsa_forward(x, w_qkv, b_qkv, w_out, b_out, num_heads):
    qkv = x @ w_qkv + b_qkv
    q, k, v = (split_heads(p, num_heads) for p in np.split(qkv, 3, axis=-1))
    heads, attn = F.attention_forward(q, k, v)
    merged = merge_heads(heads)
    return merged @ w_out + b_out, (x, w_qkv, w_out, merged, attn, num_heads)


def mhsa_backward(dout, cache):
    x, w_qkv, w_out, merged, attn, num_heads = cache
    D = x.shape[-1]
    flat = dout.reshape(-1, D)
    dq, dk, dv = F.attention_backward(merge_heads_backward(dout @ w_out.T, num_heads), attn)
    dqkv = np.concatenate([split_heads_backward(g) for g in (dq, dk, dv)], axis=-1)
    return (dqkv @ w_qkv.T, x.reshape(-1, D).T @ dqkv.reshape(-1, 3 * D), dqkv.reshape(-1, 3 * D).sum(0),
            merged.reshape(-1, D).T @ flat, flat.sum(0))
