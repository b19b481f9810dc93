"""Hints for exercise 4 (topic ``multihead``): heads, and multi-head self-attention."""

HINTS = {
    "split_heads": dict(
        approach="""\
Only a rearrangement: the feature axis D = h*d splits into (head, feature inside the head), and the
head axis moves in front of the token axis.""",
        steps="""\
(B, T, D) -> reshape (B, T, h, d): index j of the new axis is head j's slice [j*d, (j+1)*d)
-> move the head axis before the tokens: (B, h, T, d). A bare reshape to (B, h, T, d) has the
right shape but mixes tokens and heads.""",
        formula="""\
x.reshape(B, T, h, D/h), axes (0, 2, 1, 3).""",
        given="x, num_heads",
        code="""\
B, T, D = x.shape
out = x.reshape(B, T, num_heads, D // num_heads).transpose(0, 2, 1, 3)""",
        returns=("out",)),
    "merge_heads": dict(
        approach="""\
The inverse of split_heads: put the head axis back next to the feature axis, then merge the two.""",
        steps="""\
(B, h, T, d) -> move the token axis in front of the heads: (B, T, h, d) -> reshape (B, T, h*d):
head j's features land at [j*d, (j+1)*d).""",
        formula="""\
x with axes (0, 2, 1, 3), reshaped to (B, T, h*d).""",
        given="x",
        code="""\
B, h, T, d = x.shape
out = x.transpose(0, 2, 1, 3).reshape(B, T, h * d)""",
        returns=("out",)),
    "split_heads_backward": dict(
        approach="""\
split_heads moves numbers and computes nothing: its gradient moves them back. Which of the
functions in this file does exactly the opposite move?""",
        steps="""\
dout (B, h, T, d) -> dx (B, T, h*d): the entry of dout for head j, token t, feature i goes back
to token t, feature j*d + i.""",
        formula="""\
dx = merge_heads(dout).""",
        given="dout",
        code="""\
B, h, T, d = dout.shape
dx = dout.transpose(0, 2, 1, 3).reshape(B, T, h * d)""",
        returns=("dx",)),
    "merge_heads_backward": dict(
        approach="""\
merge_heads only moves numbers: its gradient moves them back, which another function of this file
already does.""",
        steps="""\
dout (B, T, h*d) -> dx (B, h, T, d): feature j*d + i of token t goes back to head j, token t,
feature i.""",
        formula="""\
dx = split_heads(dout, num_heads).""",
        given="dout, num_heads",
        code="""\
B, T, D = dout.shape
dx = dout.reshape(B, T, num_heads, D // num_heads).transpose(0, 2, 1, 3)""",
        returns=("dx",)),
    "mhsa_forward": dict(
        approach="""\
Compose pieces you already have (through F, or your functions above): one linear projection to
q, k and v together, a rearrangement into heads, attention, merging the heads, the output
projection.""",
        steps="""\
qkv = linear(x, w_qkv, b_qkv): (B, T, 3D); its columns are [q | k | v], each [head 0 | head 1 ...]:
reshape (B, T, 3, h, d) and move the axes to (3, B, h, T, d): q, k, v each (B, h, T, d);
heads = attention(q, k, v) (B, h, T, d); merged = merge_heads(heads) (B, T, D);
out = linear(merged, w_out, b_out). Keep the three caches and h.""",
        formula="""\
qkv = x w_qkv + b_qkv -> reshape (B, T, 3, h, d), axes (2, 0, 3, 1, 4) -> q, k, v;
out = merge_heads(attention(q, k, v)) w_out + b_out.""",
        given="x, w_qkv, b_qkv, w_out, b_out, num_heads",
        code="""\
B, T, D = x.shape
qkv, _ = F.linear_forward(x, w_qkv, b_qkv)
qkv = qkv.reshape(B, T, 3, num_heads, D // num_heads).transpose(2, 0, 3, 1, 4)
heads, _ = F.attention_forward(qkv[0], qkv[1], qkv[2])
out, _ = F.linear_forward(F.merge_heads(heads), w_out, b_out)""",
        returns=("out",)),
    "mhsa_backward": dict(
        approach="""\
Go through the forward's steps in reverse order, each with its own backward (through F). The one
step without a ready-made backward is the q/k/v rearrangement: invert it yourself.""",
        steps="""\
output projection backward: dmerged (B, T, D), dw_out (D, D), db_out (D,);
merge_heads_backward: dheads (B, h, T, d); attention_backward: dq, dk, dv, each (B, h, T, d);
stack them: (3, B, h, T, d); undo the forward's axis move: (B, T, 3, h, d); reshape (B, T, 3D);
qkv projection backward: dx (B, T, D), dw_qkv (D, 3D), db_qkv (3D,).""",
        formula="""\
dqkv = stack(dq, dk, dv) with axes (1, 3, 0, 2, 4), reshaped to (B, T, 3D) (the inverse of the
forward's (2, 0, 3, 1, 4)); every other step is the backward of its forward step.""",
        given="x, w_qkv, b_qkv, w_out, b_out, num_heads (the forward's inputs), dout",
        code="""\
B, T, D = x.shape
h, d = num_heads, D // num_heads
qkv, qkv_cache = F.linear_forward(x, w_qkv, b_qkv)
qkv = qkv.reshape(B, T, 3, h, d).transpose(2, 0, 3, 1, 4)
heads, attn_cache = F.attention_forward(qkv[0], qkv[1], qkv[2])
_, out_cache = F.linear_forward(F.merge_heads(heads), w_out, b_out)
dmerged, dw_out, db_out = F.linear_backward(dout, out_cache)
dq, dk, dv = F.attention_backward(F.merge_heads_backward(dmerged, h), attn_cache)
dqkv = np.stack([dq, dk, dv]).transpose(1, 3, 0, 2, 4).reshape(B, T, 3 * D)
dx, dw_qkv, db_qkv = F.linear_backward(dqkv, qkv_cache)""",
        returns=("dx", "dw_qkv", "db_qkv", "dw_out", "db_out")),
}
