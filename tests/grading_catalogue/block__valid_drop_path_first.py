"""Exercise 8: The pre-norm encoder block. A learner's solution (replaces exercises/ex08_block.py).

Correct: each branch draws drop-path before dropout (the same distribution), lists instead of tuples, a dict cache.

TOPIC: block
FUNCTION: encoder_block_backward
EXPECT: VALID
KIND: backward
"""
from minivit.ops import F   # minivit's functions (yours when training with --impl exercises)


def encoder_block_forward(x, p, num_heads, eps=1e-6, approximate="tanh",
                          dropout=0.0, drop_path=0.0, rng=None, train=False):
    cache = {}
    h, cache["ln1"] = F.layernorm_forward(x, p["ln1_gamma"], p["ln1_beta"], eps)
    a, cache["attn"] = F.mhsa_forward(h, p["w_qkv"], p["b_qkv"], p["w_out"], p["b_out"], num_heads)
    a, cache["path1"] = F.drop_path_forward(a, drop_path, rng, train)
    a, cache["drop1"] = F.dropout_forward(a, dropout, rng, train)
    z1 = x + a
    h, cache["ln2"] = F.layernorm_forward(z1, p["ln2_gamma"], p["ln2_beta"], eps)
    m, cache["mlp"] = F.mlp_forward(h, p["w1"], p["b1"], p["w2"], p["b2"], approximate)
    m, cache["path2"] = F.drop_path_forward(m, drop_path, rng, train)
    m, cache["drop2"] = F.dropout_forward(m, dropout, rng, train)
    return [z1 + m, cache]


def encoder_block_backward(dout, cache):
    g = {}
    dm = F.drop_path_backward(F.dropout_backward(dout, cache["drop2"]), cache["path2"])
    dh, dw1, db1, dw2, db2 = F.mlp_backward(dm, cache["mlp"])
    g.update(w1=dw1, b1=db1, w2=dw2, b2=db2)
    dz1, g["ln2_gamma"], g["ln2_beta"] = F.layernorm_backward(dh, cache["ln2"])
    dz1 += dout
    da = F.drop_path_backward(F.dropout_backward(dz1, cache["drop1"]), cache["path1"])
    dh, g["w_qkv"], g["b_qkv"], g["w_out"], g["b_out"] = F.mhsa_backward(da, cache["attn"])
    dx, g["ln1_gamma"], g["ln1_beta"] = F.layernorm_backward(dh, cache["ln1"])
    dx += dz1
    return [dx, g]
