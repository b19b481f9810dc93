"""Exercise 4: Multi-head self-attention. A learner's solution (replaces exercises/ex04_multihead.py).

Correct: q, k, v sliced from w_qkv by columns, a loop over the heads, lists returned.

TOPIC: multihead
FUNCTION: mhsa_backward
EXPECT: VALID
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


def mhsa_forward(x, w_qkv, b_qkv, w_out, b_out, num_heads):
    B, T, D = x.shape
    d = D // num_heads
    qkv = np.einsum("btd,de->bte", x, w_qkv) + b_qkv
    heads, saved = [], []
    for j in range(num_heads):
        q = qkv[..., j * d:(j + 1) * d]
        k = qkv[..., D + j * d:D + (j + 1) * d]
        v = qkv[..., 2 * D + j * d:2 * D + (j + 1) * d]
        s = np.einsum("bid,bjd->bij", q, k) / math.sqrt(d)
        p = np.exp(s - s.max(axis=-1, keepdims=True))
        p = p / p.sum(axis=-1, keepdims=True)
        heads.append(np.einsum("bij,bjd->bid", p, v))
        saved.append((q, k, v, p))
    merged = np.concatenate(heads, axis=-1)
    return [np.einsum("btd,de->bte", merged, w_out) + b_out, [x, w_qkv, w_out, merged, saved]]


def mhsa_backward(dout, cache):
    x, w_qkv, w_out, merged, saved = cache
    D = x.shape[-1]
    d = D // len(saved)
    dmerged = np.einsum("bte,de->btd", dout, w_out)
    dqkv = np.zeros(x.shape[:2] + (3 * D,), dtype=dout.dtype)
    for j, (q, k, v, p) in enumerate(saved):
        dh = dmerged[..., j * d:(j + 1) * d]
        dp = np.einsum("bid,bjd->bij", dh, v)
        ds = p * (dp - (dp * p).sum(axis=-1, keepdims=True)) / math.sqrt(d)
        dqkv[..., j * d:(j + 1) * d] = np.einsum("bij,bjd->bid", ds, k)
        dqkv[..., D + j * d:D + (j + 1) * d] = np.einsum("bij,bid->bjd", ds, q)
        dqkv[..., 2 * D + j * d:2 * D + (j + 1) * d] = np.einsum("bij,bid->bjd", p, dh)
    return [np.einsum("bte,de->btd", dqkv, w_qkv), np.einsum("btd,bte->de", x, dqkv), dqkv.sum(axis=(0, 1)),
            np.einsum("btd,bte->de", merged, dout), dout.sum(axis=(0, 1))]
