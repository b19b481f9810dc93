"""Exercise 8: The pre-norm encoder block. A learner's solution (replaces exercises/ex08_block.py).

TOPIC: block
FUNCTION: encoder_block_forward
MISTAKE: The second LayerNorm is applied to the block input x instead of to z' = x + MSA(LN(x)).
KIND: forward
EXPECT: mlp_reads_input
"""
from minivit.ops import F   # minivit's functions (yours when training with --impl exercises)


def encoder_block_forward(x, p, num_heads, eps=1e-6, approximate="tanh",
                          dropout=0.0, drop_path=0.0, rng=None, train=False):
    """x: (B, T, D), p: dict of parameters -> out (B, T, D), cache."""
    h, ln1 = F.layernorm_forward(x, p["ln1_gamma"], p["ln1_beta"], eps)
    a, attn = F.mhsa_forward(h, p["w_qkv"], p["b_qkv"], p["w_out"], p["b_out"], num_heads)
    a, drop1 = F.dropout_forward(a, dropout, rng, train)
    a, path1 = F.drop_path_forward(a, drop_path, rng, train)
    z1 = x + a

    h2, ln2 = F.layernorm_forward(x, p["ln2_gamma"], p["ln2_beta"], eps)
    m, mlp = F.mlp_forward(h2, p["w1"], p["b1"], p["w2"], p["b2"], approximate)
    m, drop2 = F.dropout_forward(m, dropout, rng, train)
    m, path2 = F.drop_path_forward(m, drop_path, rng, train)
    out = z1 + m
    return out, (ln1, attn, drop1, path1, ln2, mlp, drop2, path2)


def encoder_block_backward(dout, cache):
    """dout: (B, T, D) -> dx (B, T, D), grads (dict keyed like the parameters)."""
    ln1, attn, drop1, path1, ln2, mlp, drop2, path2 = cache
    grads = {}
    dm = F.drop_path_backward(dout, path2)
    dm = F.dropout_backward(dm, drop2)
    dh2, grads["w1"], grads["b1"], grads["w2"], grads["b2"] = F.mlp_backward(dm, mlp)
    dz1, grads["ln2_gamma"], grads["ln2_beta"] = F.layernorm_backward(dh2, ln2)
    dz1 = dz1 + dout

    da = F.drop_path_backward(dz1, path1)
    da = F.dropout_backward(da, drop1)
    dh, grads["w_qkv"], grads["b_qkv"], grads["w_out"], grads["b_out"] = F.mhsa_backward(da, attn)
    dx, grads["ln1_gamma"], grads["ln1_beta"] = F.layernorm_backward(dh, ln1)
    dx = dx + dz1
    return dx, grads
