"""Self-attention (paper eqs. 5-8): softmax, scaled dot-product attention, heads, MSA.

    [q, k, v] = z U_qkv                      U_qkv: (D, 3D), split into h heads of width d = D/h
    A = softmax(q k^T / sqrt(d))             A: (B, h, T, T), rows sum to 1
    SA(z) = A v
    MSA(z) = [SA_1(z); ...; SA_h(z)] U_msa   U_msa: (D, D)

Composite operations call their pieces through ``F`` (``minivit.layers.dispatch``, filled by
``minivit.ops``) so that a swapped-in piece (a learner's softmax, say) is used inside attention
and MSA too.

Dividing by sqrt(d) keeps the dot products' spread independent of the head width; without it
softmax saturates (one weight ~1, the rest ~0) and its gradients vanish.
"""
import math

from minivit.backend import get_array_module
from minivit.layers.dispatch import F


# ----------------------------------------------------------------------------------- softmax
def softmax_forward(x, axis=-1):
    """Numerically stable softmax along ``axis``: out = exp(x) / sum(exp(x)) along that axis.

    x: any shape; every slice along ``axis`` sums to 1 in out. Scores as large as 1e4 must give
    finite results.
    returns: out (same shape as x), cache

    Keeps the input's dtype (float32 in, float32 out) and does not modify its inputs. ``axis`` may be
    any axis (the checks also use a non-default one): the cache must keep it for the backward.

    Derivation:
        Subtracting the row maximum changes nothing mathematically (softmax(x) = softmax(x - c))
        but keeps exp() from overflowing for large scores: e = exp(x - max(x)), out = e / sum(e),
        with keepdims=True so every row's max and sum line up with the row.
    """
    xp = get_array_module(x)
    e = x - x.max(axis=axis, keepdims=True)
    xp.exp(e, out=e)
    e /= e.sum(axis=axis, keepdims=True)
    return e, (e, axis)


def softmax_backward(dout, cache):
    """dout: the gradient with respect to softmax's output s -> dx, the same shape (with respect to x).

    Keeps the dtype (float32 in, float32 out). Does not modify dout: the caller's array may be used
    elsewhere. Everything it needs comes from the cache (it may run after other forward calls). The axis
    is the one softmax_forward was called with (keep it in the cache).

    Derivation:
        Softmax Jacobian-vector product: dx = s * (dout - sum(dout * s)) along the axis
        (from ds_i/dx_j = s_i (delta_ij - s_j); the full Jacobian is never built).
    """
    s, axis = cache
    return s * (dout - (dout * s).sum(axis=axis, keepdims=True))


# ---------------------------------------------------------------- scaled dot-product attention
def attention_forward(q, k, v):
    """Scaled dot-product attention (paper eqs. 5-7), batched over any leading axes.

    q, k, v: (..., T, d)
    returns: out (..., T, d) = softmax(q k^T / sqrt(d)) v (softmax over the last axis, the keys),
             cache (minivit's holds the attention A (..., T, T))

    Keeps the input's dtype (float32 in, float32 out) and does not modify its inputs. Scores q.k /
    sqrt(d) as large as ~1e4 must give finite, correct results.

    Derivation:
        S = q @ k.swapaxes(-1, -2) * scale with scale = 1 / math.sqrt(d) (a Python float keeps
        float32 arrays float32), A = softmax_forward(S, -1), out = A @ v.
    """
    d = q.shape[-1]
    scale = 1.0 / math.sqrt(d)
    scores = q @ k.swapaxes(-1, -2)          # (..., T, T)
    scores *= scale
    A, _ = F.softmax_forward(scores, axis=-1)
    out = A @ v
    return out, (q, k, v, A, scale)


def attention_backward(dout, cache):
    """dout: (..., T, d) -> dq, dk, dv, each (..., T, d): the gradients with respect to q, k and v.

    Keeps the dtype (float32 in, float32 out). Does not modify dout: the caller's array may be used
    elsewhere. Everything it needs comes from the cache (it may run after other forward calls). Batched:
    q, k, v may have any number of leading axes (``.T`` would reverse all of them).

    Derivation:
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
    """(B, T, h*d) -> (B, h, T, d): give every head its own slice of the features.

    Head j gets the features [j*d, (j+1)*d): out[:, j] is x[:, :, j*d:(j+1)*d]. num_heads = h.

    Keeps the input's dtype (float32 in, float32 out) and does not modify its inputs.

    Derivation:
        reshape (B, T, h, d), then transpose (0, 2, 1, 3); a bare reshape to (B, h, T, d) mixes tokens.
    """
    B, T, D = x.shape
    if D % num_heads:
        raise ValueError(f"width {D} is not divisible by the number of heads {num_heads}")
    return x.reshape(B, T, num_heads, D // num_heads).transpose(0, 2, 1, 3)


def merge_heads(x):
    """(B, h, T, d) -> (B, T, h*d): concatenate the heads' outputs (the [SA_1; ...; SA_h] of eq. 8).

    The inverse of split_heads: out[:, :, j*d:(j+1)*d] is x[:, j].

    Keeps the input's dtype (float32 in, float32 out) and does not modify its inputs.

    Derivation:
        transpose (0, 2, 1, 3) back to (B, T, h, d), then reshape to (B, T, h*d).
    """
    B, h, T, d = x.shape
    return x.transpose(0, 2, 1, 3).reshape(B, T, h * d)


# split and merge are each other's inverse, and so are their gradients:
def split_heads_backward(dout):
    """Gradient of split_heads: dout (B, h, T, d) -> dx (B, T, h*d).

    Keeps the dtype; does not modify dout.

    Derivation:
        split_heads only moves numbers: its gradient moves them back, which is merge_heads(dout).
    """
    return merge_heads(dout)


def merge_heads_backward(dout, num_heads):
    """Gradient of merge_heads: dout (B, T, h*d) -> dx (B, h, T, d).

    Keeps the dtype; does not modify dout.

    Derivation:
        The gradient of merge_heads is split_heads(dout, num_heads).
    """
    return split_heads(dout, num_heads)


# ------------------------------------------------------------------ multi-head self-attention
def mhsa_forward(x, w_qkv, b_qkv, w_out, b_out, num_heads):
    """Multi-head self-attention (eqs. 5-8).

    x: (B, T, D)   w_qkv: (D, 3D) columns ordered [q | k | v], each split into heads (h, d)
    b_qkv: (3D,)   w_out: (D, D)   b_out: (D,)   num_heads = h, d = D / h
    [q, k, v] = x w_qkv + b_qkv; head j attends with columns [j*d, (j+1)*d) of q, k and v;
    out = [SA_1; ...; SA_h] w_out + b_out, SA_j = softmax(q_j k_j^T / sqrt(d)) v_j.
    returns: out (B, T, D), cache

    Keeps the input's dtype (float32 in, float32 out) and does not modify its inputs.

    Derivation:
        qkv = F.linear_forward(x, w_qkv, b_qkv) (B, T, 3D) -> reshape (B, T, 3, h, d) -> transpose
        (2, 0, 3, 1, 4): q, k, v = qkv[0], qkv[1], qkv[2], each (B, h, T, d);
        heads = F.attention_forward(q, k, v); merged = F.merge_heads(heads) (B, T, D);
        out = F.linear_forward(merged, w_out, b_out). Keep every step's cache.
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
    """dout: (B, T, D) -> dx (B, T, D), dw_qkv (D, 3D), db_qkv (3D,), dw_out (D, D), db_out (D,).

    Keeps the dtype (float32 in, float32 out). Does not modify dout: the caller's array may be used
    elsewhere. Everything it needs comes from the cache (it may run after other forward calls). The
    weights and biases are shared by every token of every image: a parameter gradient adds up the
    contributions of all of them, in the parameter's own shape.

    Derivation:
        The forward's steps backwards: linear_backward of the output projection,
        merge_heads_backward, attention_backward, stack dq, dk, dv (3, B, h, T, d) and undo the
        forward's transpose: transpose (1, 3, 0, 2, 4) and reshape to (B, T, 3D), then
        linear_backward of the qkv projection. (The key part of db_qkv comes out exactly 0:
        see minivit.gradcheck.KEY_BIAS_NOTE.)
    """
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
