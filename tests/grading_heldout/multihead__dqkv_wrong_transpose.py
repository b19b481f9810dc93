"""Exercise 4: Multi-head self-attention. A learner's solution (replaces exercises/ex04_multihead.py).

TOPIC: multihead
FUNCTION: mhsa_backward
MISTAKE: The stacked (3, B, h, T, d) gradient is transposed to (B, T, h, 3, d) instead of (B, T, 3, h, d) before the reshape, so dq, dk, dv go back to the wrong columns of the qkv projection.
KIND: backward
EXPECT: dqkv_layout
"""
import math

import numpy as np

from minivit.backend import get_array_module
from minivit.ops import F   # minivit's functions (yours when training with --impl exercises)


def split_heads(x, num_heads):
    """(B, T, h*d) -> (B, h, T, d)."""
    B, T, D = x.shape
    d = D // num_heads
    return x.reshape(B, T, num_heads, d).transpose(0, 2, 1, 3)


def merge_heads(x):
    """(B, h, T, d) -> (B, T, h*d)."""
    B, h, T, d = x.shape
    return x.transpose(0, 2, 1, 3).reshape(B, T, h * d)


def split_heads_backward(dout):
    """(B, h, T, d) -> (B, T, h*d)."""
    return merge_heads(dout)


def merge_heads_backward(dout, num_heads):
    """(B, T, h*d) -> (B, h, T, d)."""
    return split_heads(dout, num_heads)


def mhsa_forward(x, w_qkv, b_qkv, w_out, b_out, num_heads):
    """Multi-head self-attention. x: (B, T, D) -> out (B, T, D), cache."""
    B, T, D = x.shape
    h = num_heads
    d = D // h
    qkv, qkv_cache = F.linear_forward(x, w_qkv, b_qkv)          # (B, T, 3D)
    qkv = qkv.reshape(B, T, 3, h, d).transpose(2, 0, 3, 1, 4)   # (3, B, h, T, d)
    q, k, v = qkv[0], qkv[1], qkv[2]
    heads, attn_cache = F.attention_forward(q, k, v)
    merged = merge_heads(heads)
    out, out_cache = F.linear_forward(merged, w_out, b_out)
    return out, (qkv_cache, attn_cache, out_cache, h)


def mhsa_backward(dout, cache):
    """dout (B, T, D) -> dx, dw_qkv, db_qkv, dw_out, db_out."""
    qkv_cache, attn_cache, out_cache, h = cache
    dmerged, dw_out, db_out = F.linear_backward(dout, out_cache)
    dheads = merge_heads_backward(dmerged, h)
    dq, dk, dv = F.attention_backward(dheads, attn_cache)
    B, _, T, d = dq.shape
    dqkv = np.stack([dq, dk, dv])                                # (3, B, h, T, d)
    dqkv = dqkv.transpose(1, 3, 2, 0, 4).reshape(B, T, 3 * h * d)
    dx, dw_qkv, db_qkv = F.linear_backward(dqkv, qkv_cache)
    return dx, dw_qkv, db_qkv, dw_out, db_out
