"""Correct learner-style bodies for every exercise function (written by hand, not imported from
minivit). make_cases.py fills them into fresh stubs and plants one mistake per case."""

BODIES = {}
EXTRA = {}   # topic -> helper code appended after the imports

# ------------------------------------------------------------------ patch
BODIES["patchify_forward"] = '''
B, H, W, C = x.shape
P = patch_size
gh, gw = H // P, W // P
t = x.reshape(B, gh, P, gw, P, C)
t = t.transpose(0, 1, 3, 2, 4, 5)
out = t.reshape(B, gh * gw, P * P * C)
return out, (x.shape, P)
'''
BODIES["patchify_backward"] = '''
(B, H, W, C), P = cache
gh, gw = H // P, W // P
t = dout.reshape(B, gh, gw, P, P, C)
t = t.transpose(0, 1, 3, 2, 4, 5)
dx = t.reshape(B, H, W, C)
return dx
'''
BODIES["linear_forward"] = '''
x2 = x.reshape(-1, x.shape[-1])
y = x2 @ w + b
y = y.reshape(x.shape[:-1] + (w.shape[1],))
return y, (x, w)
'''
BODIES["linear_backward"] = '''
x, w = cache
D_in, D_out = w.shape
dy2 = dy.reshape(-1, D_out)
x2 = x.reshape(-1, D_in)
dx = (dy2 @ w.T).reshape(x.shape)
dw = x2.T @ dy2
db = dy2.sum(axis=0)
return dx, dw, db
'''

# ------------------------------------------------------------------ tokens
BODIES["cls_token_forward"] = '''
B, N, D = x.shape
cls_rows = np.broadcast_to(cls, (B, 1, D)).astype(x.dtype)
out = np.concatenate([cls_rows, x], axis=1)
return out, None
'''
BODIES["cls_token_backward"] = '''
dx = dout[:, 1:]
dcls = dout[:, 0:1].sum(axis=0, keepdims=True)
return dx, dcls
'''
BODIES["pos_embed_forward"] = '''
out = x + pos
return out, None
'''
BODIES["pos_embed_backward"] = '''
dx = dout
dpos = dout.sum(axis=0, keepdims=True)
return dx, dpos
'''

# ------------------------------------------------------------------ attention
BODIES["softmax_forward"] = '''
m = np.max(x, axis=axis, keepdims=True)
e = np.exp(x - m)
s = e / np.sum(e, axis=axis, keepdims=True)
return s, (s, axis)
'''
BODIES["softmax_backward"] = '''
s, axis = cache
dot = np.sum(dout * s, axis=axis, keepdims=True)
dx = s * (dout - dot)
return dx
'''
BODIES["attention_forward"] = '''
d = q.shape[-1]
scale = 1.0 / math.sqrt(d)
scores = np.matmul(q, np.swapaxes(k, -1, -2)) * scale
A, _ = softmax_forward(scores, axis=-1)
out = np.matmul(A, v)
return out, (q, k, v, A, scale)
'''
BODIES["attention_backward"] = '''
q, k, v, A, scale = cache
dv = np.matmul(np.swapaxes(A, -1, -2), dout)
dA = np.matmul(dout, np.swapaxes(v, -1, -2))
dS = softmax_backward(dA, (A, -1))
dq = np.matmul(dS, k) * scale
dk = np.matmul(np.swapaxes(dS, -1, -2), q) * scale
return dq, dk, dv
'''

# ------------------------------------------------------------------ multihead
BODIES["split_heads"] = '''
B, T, D = x.shape
d = D // num_heads
return x.reshape(B, T, num_heads, d).transpose(0, 2, 1, 3)
'''
BODIES["merge_heads"] = '''
B, h, T, d = x.shape
return x.transpose(0, 2, 1, 3).reshape(B, T, h * d)
'''
BODIES["split_heads_backward"] = '''
B, h, T, d = dout.shape
return dout.transpose(0, 2, 1, 3).reshape(B, T, h * d)
'''
BODIES["merge_heads_backward"] = '''
B, T, D = dout.shape
d = D // num_heads
return dout.reshape(B, T, num_heads, d).transpose(0, 2, 1, 3)
'''
BODIES["mhsa_forward"] = '''
B, T, D = x.shape
h = num_heads
qkv, c_in = F.linear_forward(x, w_qkv, b_qkv)
q = split_heads(qkv[..., 0:D], h)
k = split_heads(qkv[..., D:2 * D], h)
v = split_heads(qkv[..., 2 * D:3 * D], h)
heads, c_att = F.attention_forward(q, k, v)
merged = merge_heads(heads)
out = merged @ w_out + b_out
return out, (c_in, c_att, merged, w_out, h)
'''
BODIES["mhsa_backward"] = '''
c_in, c_att, merged, w_out, h = cache
B, T, D = dout.shape
db_out = dout.sum(axis=(0, 1))
dw_out = merged.reshape(-1, D).T @ dout.reshape(-1, D)
dmerged = dout @ w_out.T
dheads = merge_heads_backward(dmerged, h)
dq, dk, dv = F.attention_backward(dheads, c_att)
dqkv = np.concatenate([split_heads_backward(dq), split_heads_backward(dk),
                       split_heads_backward(dv)], axis=-1)
dx, dw_qkv, db_qkv = F.linear_backward(dqkv, c_in)
return dx, dw_qkv, db_qkv, dw_out, db_out
'''

# ------------------------------------------------------------------ layernorm
BODIES["layernorm_forward"] = '''
D = x.shape[-1]
mu = np.mean(x, axis=-1, keepdims=True)
xc = x - mu
var = np.mean(xc ** 2, axis=-1, keepdims=True)
rstd = 1.0 / np.sqrt(var + eps)
xhat = xc * rstd
y = gamma * xhat + beta
return y, (xhat, rstd, gamma)
'''
BODIES["layernorm_backward"] = '''
xhat, rstd, gamma = cache
D = xhat.shape[-1]
dbeta = dy.reshape(-1, D).sum(axis=0)
dgamma = (dy * xhat).reshape(-1, D).sum(axis=0)
dxhat = dy * gamma
dx = rstd * (dxhat - dxhat.mean(axis=-1, keepdims=True)
             - xhat * (dxhat * xhat).mean(axis=-1, keepdims=True))
return dx, dgamma, dbeta
'''

# ------------------------------------------------------------------ mlp
BODIES["gelu_forward"] = '''
if approximate == "tanh":
    c = math.sqrt(2.0 / math.pi)
    u = c * (x + 0.044715 * x * x * x)
    t = np.tanh(u)
    y = 0.5 * x * (1.0 + t)
    return y, (x, t, "tanh")
if approximate == "none":
    cdf = 0.5 * (1.0 + erf(x / math.sqrt(2.0)))
    y = x * cdf
    return y, (x, cdf, "none")
raise ValueError(f"unknown approximate {approximate!r}")
'''
BODIES["gelu_backward"] = '''
x, t, form = cache
if form == "tanh":
    c = math.sqrt(2.0 / math.pi)
    du = c * (1.0 + 3 * 0.044715 * x * x)
    local = 0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * du
else:
    pdf = np.exp(-0.5 * x * x) / math.sqrt(2.0 * math.pi)
    local = t + x * pdf
dx = dout * local
return dx
'''
BODIES["mlp_forward"] = '''
hpre = x @ w1 + b1
a, cg = gelu_forward(hpre, approximate)
out = a @ w2 + b2
return out, (x, w1, w2, a, cg)
'''
BODIES["mlp_backward"] = '''
x, w1, w2, a, cg = cache
D, M = w1.shape
db2 = dout.sum(axis=(0, 1))
dw2 = a.reshape(-1, M).T @ dout.reshape(-1, D)
da = dout @ w2.T
dh = gelu_backward(da, cg)
db1 = dh.sum(axis=(0, 1))
dw1 = x.reshape(-1, D).T @ dh.reshape(-1, M)
dx = dh @ w1.T
return dx, dw1, db1, dw2, db2
'''

# ------------------------------------------------------------------ loss
BODIES["cross_entropy_forward"] = '''
B, K = logits.shape
if labels.ndim == 1:
    t = np.zeros((B, K), dtype=logits.dtype)
    t[np.arange(B), labels] = 1.0
else:
    t = labels.astype(logits.dtype)
if label_smoothing > 0:
    t *= 1.0 - label_smoothing
    t += label_smoothing / K
z = logits - logits.max(axis=1, keepdims=True)
logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
loss = -(t * logp).sum() / B
return float(loss), (logp, t)
'''
BODIES["cross_entropy_backward"] = '''
logp, t = cache
B = logp.shape[0]
p = np.exp(logp)
dlogits = (p - t) * (dloss / B)
return dlogits.astype(logp.dtype, copy=False)
'''

# ------------------------------------------------------------------ block
EXTRA["block"] = '''

def _drop(x, p, rng, train, per_sample):
    """Inverted dropout (per element) or drop-path (per sample); returns out, mask or None."""
    if not train or p == 0.0:
        return x, None
    shape = (x.shape[0],) + (1,) * (x.ndim - 1) if per_sample else x.shape
    keep = (rng.random(shape, dtype=x.dtype) >= p).astype(x.dtype)
    mask = keep / (1.0 - p)
    return x * mask, mask


def _undrop(d, mask):
    return d if mask is None else d * mask
'''
BODIES["encoder_block_forward"] = '''
h1, ln1 = F.layernorm_forward(x, p["ln1_gamma"], p["ln1_beta"], eps)
a, attn = F.mhsa_forward(h1, p["w_qkv"], p["b_qkv"], p["w_out"], p["b_out"], num_heads)
a, m1 = _drop(a, dropout, rng, train, per_sample=False)
a, m2 = _drop(a, drop_path, rng, train, per_sample=True)
z1 = x + a
h2, ln2 = F.layernorm_forward(z1, p["ln2_gamma"], p["ln2_beta"], eps)
m, mlp = F.mlp_forward(h2, p["w1"], p["b1"], p["w2"], p["b2"], approximate)
m, m3 = _drop(m, dropout, rng, train, per_sample=False)
m, m4 = _drop(m, drop_path, rng, train, per_sample=True)
out = z1 + m
return out, (ln1, attn, m1, m2, ln2, mlp, m3, m4)
'''
BODIES["encoder_block_backward"] = '''
ln1, attn, m1, m2, ln2, mlp, m3, m4 = cache
g = {}
dm = _undrop(dout, m4)
dm = _undrop(dm, m3)
dh2, g["w1"], g["b1"], g["w2"], g["b2"] = F.mlp_backward(dm, mlp)
dz1, g["ln2_gamma"], g["ln2_beta"] = F.layernorm_backward(dh2, ln2)
dz1 = dz1 + dout
da = _undrop(dz1, m2)
da = _undrop(da, m1)
dh1, g["w_qkv"], g["b_qkv"], g["w_out"], g["b_out"] = F.mhsa_backward(da, attn)
dx, g["ln1_gamma"], g["ln1_beta"] = F.layernorm_backward(dh1, ln1)
dx = dx + dz1
return dx, g
'''

# ------------------------------------------------------------------ optim
BODIES["adamw_update"] = '''
m *= b1
m += (1 - b1) * g
v *= b2
v += (1 - b2) * g * g
m_hat = m / (1 - b1 ** t)
v_hat = v / (1 - b2 ** t)
w -= lr * (m_hat / (np.sqrt(v_hat) + eps) + weight_decay * w)
'''
BODIES["warmup_cosine"] = '''
if step < warmup_steps:
    return base_lr * (step + 1) / warmup_steps
progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
progress = min(1.0, progress)
return min_lr + 0.5 * (base_lr - min_lr) * (1.0 + math.cos(math.pi * progress))
'''

TOPIC_FILES = {
    "patch": "ex01_patch_embedding.py", "tokens": "ex02_tokens.py", "attention": "ex03_attention.py",
    "multihead": "ex04_multihead.py", "layernorm": "ex05_layernorm.py", "mlp": "ex06_mlp.py",
    "loss": "ex07_loss.py", "block": "ex08_block.py", "optim": "ex09_optim.py",
}
