"""Self-attention (paper eqs. 5-8): softmax, scaled dot-product attention, heads, MSA.

    [q, k, v] = z U_qkv                      U_qkv: (D, 3D), split into h heads of width d = D/h
    A = softmax(q k^T / sqrt(d))             A: (B, h, T, T), rows sum to 1
    SA(z) = A v
    MSA(z) = [SA_1(z); ...; SA_h(z)] U_msa   U_msa: (D, D)

Composite operations call their pieces through ``F`` (``minivit.dispatch``, filled by
``minivit.ops``) so that a swapped-in piece (a learner's softmax, say) is used inside attention
and MSA too.

Dividing by sqrt(d) keeps the dot products' spread independent of the head width; without it
softmax saturates (one weight ~1, the rest ~0) and its gradients vanish.
"""
import math

from minivit.backend import get_array_module
from minivit.dispatch import F


# ----------------------------------------------------------------------------------- softmax
def softmax_forward(x, axis=-1):
    """Numerically stable softmax along ``axis``.

    Subtracting the row maximum changes nothing mathematically (softmax(x) = softmax(x - c))
    but keeps exp() from overflowing for large scores.
    returns: out (same shape as x), cache
    """
    xp = get_array_module(x)
    e = x - x.max(axis=axis, keepdims=True)
    xp.exp(e, out=e)
    e /= e.sum(axis=axis, keepdims=True)
    return e, (e, axis)


def softmax_backward(dout, cache):
    """Softmax Jacobian-vector product: dx = s * (dout - sum(dout * s)) along the axis.

    (From ds_i/dx_j = s_i (delta_ij - s_j); the full Jacobian is never built.)
    """
    s, axis = cache
    return s * (dout - (dout * s).sum(axis=axis, keepdims=True))


# ---------------------------------------------------------------- scaled dot-product attention
def attention_forward(q, k, v):
    """Scaled dot-product attention, batched over any leading axes.

    q, k, v: (..., T, d)
    returns: out (..., T, d) = softmax(q k^T / sqrt(d)) v, cache (holds the attention A (..., T, T))
    """
    d = q.shape[-1]
    scale = 1.0 / math.sqrt(d)
    scores = q @ k.swapaxes(-1, -2)          # (..., T, T)
    scores *= scale
    A, _ = F.softmax_forward(scores, axis=-1)
    out = A @ v
    return out, (q, k, v, A, scale)


def attention_backward(dout, cache):
    """dout: (..., T, d) -> dq, dk, dv, each (..., T, d).

    out = A v           =>  dA = dout v^T,         dv = A^T dout
    A = softmax(S)      =>  dS = A * (dA - rowsum(dA * A))
    S = scale * q k^T   =>  dq = scale * dS k,     dk = scale * dS^T q
    """
    q, k, v, A, scale = cache
    dv = A.swapaxes(-1, -2) @ dout
    dA = dout @ v.swapaxes(-1, -2)
    dS = F.softmax_backward(dA, (A, -1))
    dS *= scale
    dq = dS @ k
    dk = dS.swapaxes(-1, -2) @ q
    return dq, dk, dv


# ---------------------------------------------------------------------- split / merge heads
def split_heads(x, num_heads):
    """(B, T, h*d) -> (B, h, T, d): give every head its own slice of the features."""
    B, T, D = x.shape
    if D % num_heads:
        raise ValueError(f"width {D} is not divisible by the number of heads {num_heads}")
    return x.reshape(B, T, num_heads, D // num_heads).transpose(0, 2, 1, 3)


def merge_heads(x):
    """(B, h, T, d) -> (B, T, h*d): concatenate the heads' outputs (the [SA_1; ...; SA_h] of eq. 8)."""
    B, h, T, d = x.shape
    return x.transpose(0, 2, 1, 3).reshape(B, T, h * d)


# split and merge are each other's inverse, and so are their gradients:
def split_heads_backward(dout):
    """Gradient of split_heads: (B, h, T, d) -> (B, T, h*d)."""
    return merge_heads(dout)


def merge_heads_backward(dout, num_heads):
    """Gradient of merge_heads: (B, T, h*d) -> (B, h, T, d)."""
    return split_heads(dout, num_heads)


# ------------------------------------------------------------------ multi-head self-attention
def mhsa_forward(x, w_qkv, b_qkv, w_out, b_out, num_heads):
    """Multi-head self-attention (eqs. 5-8).

    x: (B, T, D)   w_qkv: (D, 3D) columns ordered [q | k | v], each split into heads (h, d)
    b_qkv: (3D,)   w_out: (D, D)   b_out: (D,)
    returns: out (B, T, D), cache
    """
    B, T, D = x.shape
    if D % num_heads:
        raise ValueError(f"width {D} is not divisible by the number of heads {num_heads}")
    d = D // num_heads
    qkv, qkv_cache = F.linear_forward(x, w_qkv, b_qkv)            # (B, T, 3D), one fused GEMM
    # (B, T, 3, h, d) -> (3, B, h, T, d): q, k, v each (B, h, T, d)
    qkv = qkv.reshape(B, T, 3, num_heads, d).transpose(2, 0, 3, 1, 4)
    heads, attn_cache = F.attention_forward(qkv[0], qkv[1], qkv[2])  # (B, h, T, d)
    merged = F.merge_heads(heads)                                 # (B, T, D)
    out, out_cache = F.linear_forward(merged, w_out, b_out)
    return out, (qkv_cache, attn_cache, out_cache, num_heads)


def mhsa_backward(dout, cache):
    """dout: (B, T, D) -> dx (B, T, D), dw_qkv, db_qkv, dw_out, db_out."""
    qkv_cache, attn_cache, out_cache, num_heads = cache
    dmerged, dw_out, db_out = F.linear_backward(dout, out_cache)
    dheads = F.merge_heads_backward(dmerged, num_heads)           # (B, h, T, d)
    dq, dk, dv = F.attention_backward(dheads, attn_cache)
    xp = get_array_module(dout)
    B, h, T, d = dq.shape
    dqkv = xp.stack([dq, dk, dv])                                 # (3, B, h, T, d)
    dqkv = dqkv.transpose(1, 3, 0, 2, 4).reshape(B, T, 3 * h * d)  # back to (B, T, 3D)
    dx, dw_qkv, db_qkv = F.linear_backward(dqkv, qkv_cache)
    return dx, dw_qkv, db_qkv, dw_out, db_out
