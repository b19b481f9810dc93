"""Hints for exercise 8 (topic ``block``): the pre-norm encoder block."""

HINTS = {
    "encoder_block_forward": dict(
        approach="""\
Eqs. (2) and (3) as written, with every piece through F: each branch is LayerNorm -> sub-block
(MSA, then the MLP) -> dropout -> drop-path, and is added to its own input (the residual).""",
        steps="""\
h1 = LN1(x) (B, T, D); a = MSA(h1) (B, T, D), then dropout, then drop-path; z1 = x + a.
h2 = LN2(z1); m = MLP(h2, approximate), then dropout, then drop-path; out = z1 + m.
The masks are drawn from rng in this order: branch 1 dropout, drop-path, branch 2 dropout,
drop-path (pass rng and train to each). Keep all eight caches.""",
        formula="""\
z1 = x + drop_path(dropout(MSA(LN1(x))));  out = z1 + drop_path(dropout(MLP(LN2(z1)))).""",
        given="x, p, num_heads, eps, approximate, dropout, drop_path, rng, train",
        code="""\
h, _ = F.layernorm_forward(x, p["ln1_gamma"], p["ln1_beta"], eps)
a, _ = F.mhsa_forward(h, p["w_qkv"], p["b_qkv"], p["w_out"], p["b_out"], num_heads)
a, _ = F.drop_path_forward(F.dropout_forward(a, dropout, rng, train)[0], drop_path, rng, train)
z1 = x + a
h, _ = F.layernorm_forward(z1, p["ln2_gamma"], p["ln2_beta"], eps)
m, _ = F.mlp_forward(h, p["w1"], p["b1"], p["w2"], p["b2"], approximate)
m, _ = F.drop_path_forward(F.dropout_forward(m, dropout, rng, train)[0], drop_path, rng, train)
out = z1 + m""",
        returns=("out",)),
    "encoder_block_backward": dict(
        approach="""\
Back through eq. (3), then eq. (2), every sub-operation's backward through F, in the reverse order
of the forward. A residual z = x + f(x) sends the upstream gradient two ways, through f and straight
on to x: add the two.""",
        steps="""\
From dout: drop-path backward, dropout backward, MLP backward, LN2 backward -> the branch's
gradient at z1 (B, T, D) and the MLP's and LN2's parameter gradients. The residual out = z1 + ...
also carries dout straight to z1: dz1 is the total gradient at z1.
From dz1: drop-path, dropout, MSA, LN1 backwards -> the branch's gradient at x and the MSA's and
LN1's parameter gradients; the first residual carries dz1 straight to x as well. grads: one entry per
key of p, shaped like it.""",
        formula="""\
dz1 = LN2'(MLP'(dropout'(drop_path'(dout)))) + dout;  dx = LN1'(MSA'(dropout'(drop_path'(dz1)))) + dz1
(f' meaning f's backward, each with its own forward cache).""",
        given="x, p, num_heads, eps, approximate, dropout, drop_path, rng, train (the forward's inputs), dout",
        code="""\
h, ln1 = F.layernorm_forward(x, p["ln1_gamma"], p["ln1_beta"], eps)
a, attn = F.mhsa_forward(h, p["w_qkv"], p["b_qkv"], p["w_out"], p["b_out"], num_heads)
a, drop1 = F.dropout_forward(a, dropout, rng, train)
a, path1 = F.drop_path_forward(a, drop_path, rng, train)
h, ln2 = F.layernorm_forward(x + a, p["ln2_gamma"], p["ln2_beta"], eps)
m, mlp = F.mlp_forward(h, p["w1"], p["b1"], p["w2"], p["b2"], approximate)
m, drop2 = F.dropout_forward(m, dropout, rng, train)
m, path2 = F.drop_path_forward(m, drop_path, rng, train)
dh, dw1, db1, dw2, db2 = F.mlp_backward(F.dropout_backward(F.drop_path_backward(dout, path2), drop2), mlp)
dz1_branch, dln2_gamma, dln2_beta = F.layernorm_backward(dh, ln2)
dz1 = dz1_branch + dout
da = F.dropout_backward(F.drop_path_backward(dz1, path1), drop1)
dh, dw_qkv, db_qkv, dw_out, db_out = F.mhsa_backward(da, attn)
dx_branch, dln1_gamma, dln1_beta = F.layernorm_backward(dh, ln1)
dx = dx_branch + dz1
grads = dict(ln1_gamma=dln1_gamma, ln1_beta=dln1_beta, w_qkv=dw_qkv, b_qkv=db_qkv, w_out=dw_out,
             b_out=db_out, ln2_gamma=dln2_gamma, ln2_beta=dln2_beta, w1=dw1, b1=db1, w2=dw2, b2=db2)""",
        returns=("dx", "grads")),
}
