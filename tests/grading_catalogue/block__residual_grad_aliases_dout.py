"""Exercise 8: The pre-norm encoder block.

TOPIC: block
FUNCTION: encoder_block_backward
EXPECT: input_modified
KIND: backward

The residual's gradient starts as the upstream gradient itself, `dz1 = dout; dz1 += ...`: every value
is right, but the caller's dout changed.
"""
from minivit.ops import F   # minivit's functions (yours when training with --impl exercises)


def encoder_block_forward(x, p, num_heads, eps=1e-6, approximate="tanh",
                          dropout=0.0, drop_path=0.0, rng=None, train=False):
    h, ln1 = F.layernorm_forward(x, p["ln1_gamma"], p["ln1_beta"], eps)
    a, attn = F.mhsa_forward(h, p["w_qkv"], p["b_qkv"], p["w_out"], p["b_out"], num_heads)
    a, drop1 = F.dropout_forward(a, dropout, rng, train)
    a, path1 = F.drop_path_forward(a, drop_path, rng, train)
    z1 = x + a
    h, ln2 = F.layernorm_forward(z1, p["ln2_gamma"], p["ln2_beta"], eps)
    m, mlp = F.mlp_forward(h, p["w1"], p["b1"], p["w2"], p["b2"], approximate)
    m, drop2 = F.dropout_forward(m, dropout, rng, train)
    m, path2 = F.drop_path_forward(m, drop_path, rng, train)
    out = z1 + m
    return out, (ln1, attn, drop1, path1, ln2, mlp, drop2, path2)


def encoder_block_backward(dout, cache):
    ln1, attn, drop1, path1, ln2, mlp, drop2, path2 = cache
    grads = {}
    dm = F.drop_path_backward(dout, path2)
    dm = F.dropout_backward(dm, drop2)
    dh, grads["w1"], grads["b1"], grads["w2"], grads["b2"] = F.mlp_backward(dm, mlp)
    dln2, grads["ln2_gamma"], grads["ln2_beta"] = F.layernorm_backward(dh, ln2)
    dz1 = dout
    dz1 += dln2
    da = F.drop_path_backward(dz1, path1)
    da = F.dropout_backward(da, drop1)
    dh, grads["w_qkv"], grads["b_qkv"], grads["w_out"], grads["b_out"] = F.mhsa_backward(da, attn)
    dx, grads["ln1_gamma"], grads["ln1_beta"] = F.layernorm_backward(dh, ln1)
    dx = dx + dz1
    return dx, grads
