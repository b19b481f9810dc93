"""The pre-norm transformer encoder block (paper eqs. 2 and 3):

    z' = z  + MSA(LN(z))        (2)
    z  = z' + MLP(LN(z'))       (3)

LayerNorm comes *before* each sub-block and the residual connection adds the sub-block's
output to its input. In the backward pass a residual splits the gradient in two: the
upstream gradient flows unchanged into z, and also through the sub-block.

Optional regularization on each residual branch: dropout and stochastic depth (drop-path).

The sub-operations are called through ``F`` (``minivit.layers.dispatch``, filled by ``minivit.ops``) so
that a swapped-in implementation (a learner's LayerNorm, say) is used inside the block too.

Parameters come in a dict ``p`` with the keys of BLOCK_PARAM_NAMES; the backward returns a
dict of gradients with the same keys.
"""
from minivit.layers.dispatch import F

BLOCK_PARAM_NAMES = (
    "ln1_gamma", "ln1_beta",                  # LayerNorm before attention
    "w_qkv", "b_qkv", "w_out", "b_out",       # multi-head self-attention
    "ln2_gamma", "ln2_beta",                  # LayerNorm before the MLP
    "w1", "b1", "w2", "b2",                   # MLP
)


def encoder_block_forward(x, p, num_heads, eps=1e-6, approximate="tanh",
                          dropout=0.0, drop_path=0.0, rng=None, train=False):
    """x: (B, T, D), p: dict of parameters (keys BLOCK_PARAM_NAMES) -> out (B, T, D), cache.

    z1 = x + MSA(LN1(x)) (eq. 2), out = z1 + MLP(LN2(z1)) (eq. 3); LN1, LN2 with eps, the MLP's
    GELU of the form ``approximate``. dropout / drop_path: probabilities applied to each residual
    branch when ``train`` is True (rng: a Generator of x's array library).

    Keeps the input's dtype (float32 in, float32 out) and does not modify its inputs.

    Derivation:
        Each branch: F.layernorm_forward -> F.mhsa_forward (branch 1) or F.mlp_forward (branch 2)
        -> F.dropout_forward -> F.drop_path_forward (both with rng and train) -> add to the
        residual. Keep every cache.
    """
    h, ln1 = F.layernorm_forward(x, p["ln1_gamma"], p["ln1_beta"], eps)
    a, attn = F.mhsa_forward(h, p["w_qkv"], p["b_qkv"], p["w_out"], p["b_out"], num_heads)
    a, drop1 = F.dropout_forward(a, dropout, rng, train)
    a, path1 = F.drop_path_forward(a, drop_path, rng, train)
    z1 = x + a                                                            # eq. (2)

    h, ln2 = F.layernorm_forward(z1, p["ln2_gamma"], p["ln2_beta"], eps)
    m, mlp = F.mlp_forward(h, p["w1"], p["b1"], p["w2"], p["b2"], approximate)
    m, drop2 = F.dropout_forward(m, dropout, rng, train)
    m, path2 = F.drop_path_forward(m, drop_path, rng, train)
    out = z1 + m                                                          # eq. (3)
    return out, (ln1, attn, drop1, path1, ln2, mlp, drop2, path2)


def encoder_block_backward(dout, cache):
    """dout: (B, T, D) -> dx (B, T, D), grads (a dict keyed like p, each shaped like its parameter).

    Keeps the dtype (float32 in, float32 out). Does not modify dout: the caller's array may be used
    elsewhere. Everything it needs comes from the cache (it may run after other forward calls). Each
    parameter is shared by every token of every image: a parameter gradient adds up the contributions of
    all of them, in the parameter's own shape.

    Derivation:
        Backwards through eq. (3), then eq. (2). Each residual splits the gradient: it reaches
        z1 through LN2/MLP *and* straight on, so dz1 = (gradient through LN2/MLP) + dout, and
        dx = (gradient through LN1/MSA) + dz1. Undo drop_path before dropout (reverse order).
    """
    ln1, attn, drop1, path1, ln2, mlp, drop2, path2 = cache
    g = {}
    # eq. (3) backwards: out = z1 + MLP(LN(z1)) -> the gradient reaches z1 by two paths.
    dm = F.drop_path_backward(dout, path2)
    dm = F.dropout_backward(dm, drop2)
    dh, g["w1"], g["b1"], g["w2"], g["b2"] = F.mlp_backward(dm, mlp)
    dz1, g["ln2_gamma"], g["ln2_beta"] = F.layernorm_backward(dh, ln2)
    dz1 += dout                                                           # the residual path
    # eq. (2) backwards: z1 = x + MSA(LN(x)).
    da = F.drop_path_backward(dz1, path1)
    da = F.dropout_backward(da, drop1)
    dh, g["w_qkv"], g["b_qkv"], g["w_out"], g["b_out"] = F.mhsa_backward(da, attn)
    dx, g["ln1_gamma"], g["ln1_beta"] = F.layernorm_backward(dh, ln1)
    dx += dz1
    return dx, g
