"""Hints for exercise 3 (topic ``attention``): softmax and scaled dot-product attention."""

HINTS = {
    "softmax_forward": dict(
        approach="""\
Exponentiate, then normalize along the axis. exp overflows near 710 (float64) and 89 (float32),
and the grader tries scores of 1e4: use softmax(x) = softmax(x - c), for any constant c per row.""",
        steps="""\
m = the max of x along the axis, with keepdims=True (that axis of length 1);
e = exp(x - m): every value in (0, 1], the largest exactly 1; out = e / (sum of e along the axis,
keepdims=True). For the backward, the output itself (and the axis) is all you need.""",
        formula="""\
out = exp(x - max(x)) / sum(exp(x - max(x))), max and sum along the axis with keepdims=True.""",
        given="x, axis",
        code="""\
e = np.exp(x - x.max(axis=axis, keepdims=True))
out = e / e.sum(axis=axis, keepdims=True)""",
        returns=("out",)),
    "softmax_backward": dict(
        approach="""\
Every output s_i depends on every input x_j of its row (through the sum in the denominator).
Work out ds_i/dx_j in its two cases, i = j and i != j, then dx_j = sum_i dout_i ds_i/dx_j.
You never need the (T, T) Jacobian itself.""",
        steps="""\
ds_i/dx_j = s_i (delta_ij - s_j). Put into the sum, it gives two terms: one from the diagonal,
dout_j s_j, and one that is s_j times a single number per row: the row sum of dout * s (shape:
the axis of length 1, keepdims=True). The diagonal alone, s (1 - s), is not enough.""",
        formula="""\
dx = s * (dout - sum(dout * s)), the sum along the axis with keepdims=True.""",
        given="x, axis (the forward's inputs), dout",
        code="""\
e = np.exp(x - x.max(axis=axis, keepdims=True))
s = e / e.sum(axis=axis, keepdims=True)
dx = s * (dout - (dout * s).sum(axis=axis, keepdims=True))""",
        returns=("dx",)),
    "attention_forward": dict(
        approach="""\
Three steps, each a batched matrix product or your softmax: scores from q and k, weights by a
softmax over the keys, and the output as the weighted sum of the values. `@` batches over the
leading axes.""",
        steps="""\
S = q k^T / sqrt(d): (..., T, T), k^T being k.swapaxes(-1, -2), d = q.shape[-1];
A = softmax of S over the last axis: (..., T, T), every row sums to 1; out = A v: (..., T, d).
Keep q, k, v and A (and the scale) for the backward. Use math.sqrt: np.sqrt gives a NumPy float64
scalar, which turns float32 arrays into float64.""",
        formula="""\
out = softmax(q k^T / sqrt(d)) v.""",
        given="q, k, v",
        code="""\
S = q @ k.swapaxes(-1, -2) / math.sqrt(q.shape[-1])
e = np.exp(S - S.max(axis=-1, keepdims=True))
A = e / e.sum(axis=-1, keepdims=True)
out = A @ v""",
        returns=("out",)),
    "attention_backward": dict(
        approach="""\
Go backwards through the three steps: out = A v, A = softmax(S), S = scale * q k^T. Two are matrix
products, where the gradient of C = X Y is dX = dC Y^T and dY = X^T dC; the third is your softmax
backward, over the last axis (hand it A in the cache layout your softmax_backward expects).""",
        steps="""\
From out = A v: dA (..., T, T) and dv (..., T, d).
From A = softmax(S): dS (..., T, T), your softmax_backward of dA.
From S = scale * q k^T: dq and dk (..., T, d), each carrying the scale once.
"^T" is swapaxes(-1, -2) on the last two axes.""",
        formula="""\
dv = A^T dout,  dA = dout v^T,  dS = A * (dA - rowsum(dA * A)),
dq = scale * dS k,  dk = scale * dS^T q,  scale = 1 / sqrt(d).""",
        given="q, k, v (the forward's inputs), dout",
        code="""\
scale = 1 / math.sqrt(q.shape[-1])
S = scale * (q @ k.swapaxes(-1, -2))
e = np.exp(S - S.max(axis=-1, keepdims=True))
A = e / e.sum(axis=-1, keepdims=True)
dv = A.swapaxes(-1, -2) @ dout
dA = dout @ v.swapaxes(-1, -2)
dS = A * (dA - (dA * A).sum(axis=-1, keepdims=True))
dq = scale * (dS @ k)
dk = scale * (dS.swapaxes(-1, -2) @ q)""",
        returns=("dq", "dk", "dv")),
}
