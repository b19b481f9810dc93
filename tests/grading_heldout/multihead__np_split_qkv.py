"""Exercise 4: Multi-head self-attention. A learner's solution (replaces exercises/ex04_multihead.py).

TOPIC: multihead
FUNCTION: none
MISTAKE: none
KIND: forward
EXPECT: VALID

Valid but unusual (must get full marks): mhsa_forward splits the fused qkv with np.split(qkv, 3, axis=-1) and then split_heads on each, and mhsa_backward concatenates split_heads_backward of dq, dk, dv: the same layout as the reshape/transpose of the hints.
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
    q, k, v = np.split(qkv, 3, axis=-1)                          # [q | k | v]
    q, k, v = split_heads(q, h), split_heads(k, h), split_heads(v, h)
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
    dqkv = np.concatenate([split_heads_backward(dq), split_heads_backward(dk),
                           split_heads_backward(dv)], axis=-1)    # (B, T, 3D)
    dx, dw_qkv, db_qkv = F.linear_backward(dqkv, qkv_cache)
    return dx, dw_qkv, db_qkv, dw_out, db_out
