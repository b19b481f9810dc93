# run inside _reference/ (after copying the stubs there): python ../_make_reference.py
import os, sys; sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _fill import fill as _f  # noqa
from _fill import fill
fill("ex01_patch_embedding.py", {
"patchify_forward": """
B, H, W, C = x.shape
P = patch_size
gh, gw = H // P, W // P
out = x.reshape(B, gh, P, gw, P, C).transpose(0, 1, 3, 2, 4, 5).reshape(B, gh * gw, P * P * C)
return out, (x.shape, P)
""",
"patchify_backward": """
x_shape, P = cache
B, N, L = dout.shape
H, W = x_shape[1], x_shape[2]
gh, gw = H // P, W // P
C = L // (P * P)
return dout.reshape(B, gh, gw, P, P, C).transpose(0, 1, 3, 2, 4, 5).reshape(B, H, W, C)
""",
"linear_forward": """
x2 = x.reshape(-1, x.shape[-1])
y = x2 @ w + b
return y.reshape(*x.shape[:-1], w.shape[1]), (x, w)
""",
"linear_backward": """
x, w = cache
dy2 = dy.reshape(-1, dy.shape[-1])
x2 = x.reshape(-1, x.shape[-1])
dx = (dy2 @ w.T).reshape(x.shape)
dw = x2.T @ dy2
db = dy2.sum(axis=0)
return dx, dw, db
"""})
fill("ex02_tokens.py", {
"cls_token_forward": """
xp = get_array_module(x)
B, N, D = x.shape
out = xp.empty((B, N + 1, D), dtype=x.dtype)
out[:, 0] = cls[0, 0]
out[:, 1:] = x
return out, None
""",
"cls_token_backward": """
return dout[:, 1:], dout[:, :1].sum(axis=0, keepdims=True)
""",
"pos_embed_forward": """
return x + pos, None
""",
"pos_embed_backward": """
return dout, dout.sum(axis=0, keepdims=True)
"""})
fill("ex03_attention.py", {
"softmax_forward": """
xp = get_array_module(x)
e = xp.exp(x - x.max(axis=axis, keepdims=True))
e = e / e.sum(axis=axis, keepdims=True)
return e, (e, axis)
""",
"softmax_backward": """
s, axis = cache
return s * (dout - (dout * s).sum(axis=axis, keepdims=True))
""",
"attention_forward": """
d = q.shape[-1]
scale = 1.0 / math.sqrt(d)
S = (q @ k.swapaxes(-1, -2)) * scale
A, _ = softmax_forward(S, axis=-1)
return A @ v, (q, k, v, A, scale)
""",
"attention_backward": """
q, k, v, A, scale = cache
dv = A.swapaxes(-1, -2) @ dout
dA = dout @ v.swapaxes(-1, -2)
dS = softmax_backward(dA, (A, -1)) * scale
return dS @ k, dS.swapaxes(-1, -2) @ q, dv
"""})
fill("ex04_multihead.py", {
"split_heads": """
B, T, D = x.shape
return x.reshape(B, T, num_heads, D // num_heads).transpose(0, 2, 1, 3)
""",
"merge_heads": """
B, h, T, d = x.shape
return x.transpose(0, 2, 1, 3).reshape(B, T, h * d)
""",
"split_heads_backward": """
return merge_heads(dout)
""",
"merge_heads_backward": """
return split_heads(dout, num_heads)
""",
"mhsa_forward": """
B, T, D = x.shape
d = D // num_heads
qkv, qkv_cache = F.linear_forward(x, w_qkv, b_qkv)
qkv = qkv.reshape(B, T, 3, num_heads, d).transpose(2, 0, 3, 1, 4)
heads, attn_cache = F.attention_forward(qkv[0], qkv[1], qkv[2])
merged = merge_heads(heads)
out, out_cache = F.linear_forward(merged, w_out, b_out)
return out, (qkv_cache, attn_cache, out_cache, num_heads)
""",
"mhsa_backward": """
qkv_cache, attn_cache, out_cache, num_heads = cache
dmerged, dw_out, db_out = F.linear_backward(dout, out_cache)
dheads = merge_heads_backward(dmerged, num_heads)
dq, dk, dv = F.attention_backward(dheads, attn_cache)
xp = get_array_module(dout)
B, h, T, d = dq.shape
dqkv = xp.stack([dq, dk, dv]).transpose(1, 3, 0, 2, 4).reshape(B, T, 3 * h * d)
dx, dw_qkv, db_qkv = F.linear_backward(dqkv, qkv_cache)
return dx, dw_qkv, db_qkv, dw_out, db_out
"""})
fill("ex05_layernorm.py", {
"layernorm_forward": """
xp = get_array_module(x)
mu = x.mean(axis=-1, keepdims=True)
xc = x - mu
var = (xc * xc).mean(axis=-1, keepdims=True)
rstd = 1.0 / xp.sqrt(var + eps)
xhat = xc * rstd
return xhat * gamma + beta, (xhat, rstd, gamma)
""",
"layernorm_backward": """
xhat, rstd, gamma = cache
D = xhat.shape[-1]
dy2 = dy.reshape(-1, D)
dgamma = (dy2 * xhat.reshape(-1, D)).sum(axis=0)
dbeta = dy2.sum(axis=0)
g = dy * gamma
dx = (g - g.mean(axis=-1, keepdims=True) - xhat * (g * xhat).mean(axis=-1, keepdims=True)) * rstd
return dx, dgamma, dbeta
"""})
fill("ex06_mlp.py", {
"gelu_forward": """
xp = get_array_module(x)
C = math.sqrt(2.0 / math.pi)
if approximate == "tanh":
    t = xp.tanh(C * (x + 0.044715 * x ** 3))
    return 0.5 * x * (1.0 + t), (x, t, approximate)
if approximate == "none":
    cdf = 0.5 * (1.0 + erf(x / math.sqrt(2.0)))
    return x * cdf, (x, cdf, approximate)
raise ValueError(approximate)
""",
"gelu_backward": """
x, t, approximate = cache
xp = get_array_module(x)
if approximate == "tanh":
    C = math.sqrt(2.0 / math.pi)
    dinner = C * (1.0 + 3 * 0.044715 * x * x)
    return dout * 0.5 * (1.0 + t + x * (1.0 - t * t) * dinner)
pdf = xp.exp(-0.5 * x * x) / math.sqrt(2.0 * math.pi)
return dout * (t + x * pdf)
""",
"mlp_forward": """
h, c1 = F.linear_forward(x, w1, b1)
a, cg = gelu_forward(h, approximate)
out, c2 = F.linear_forward(a, w2, b2)
return out, (c1, cg, c2)
""",
"mlp_backward": """
c1, cg, c2 = cache
da, dw2, db2 = F.linear_backward(dout, c2)
dh = gelu_backward(da, cg)
dx, dw1, db1 = F.linear_backward(dh, c1)
return dx, dw1, db1, dw2, db2
"""})
fill("ex07_loss.py", {
"cross_entropy_forward": """
xp = get_array_module(logits)
B, K = logits.shape
if labels.ndim == 1:
    target = xp.zeros((B, K), dtype=logits.dtype)
    target[xp.arange(B), labels] = 1.0
else:
    target = labels.astype(logits.dtype, copy=True)
if label_smoothing:
    target = target * (1.0 - label_smoothing) + label_smoothing / K
shifted = logits - logits.max(axis=1, keepdims=True)
log_probs = shifted - xp.log(xp.exp(shifted).sum(axis=1, keepdims=True))
loss = -(target * log_probs).sum() / B
return float(loss), (log_probs, target)
""",
"cross_entropy_backward": """
log_probs, target = cache
xp = get_array_module(log_probs)
B = log_probs.shape[0]
return ((xp.exp(log_probs) - target) * (dloss / B)).astype(log_probs.dtype)
"""})
fill("ex08_block.py", {
"encoder_block_forward": """
h, ln1 = F.layernorm_forward(x, p['ln1_gamma'], p['ln1_beta'], eps)
a, attn = F.mhsa_forward(h, p['w_qkv'], p['b_qkv'], p['w_out'], p['b_out'], num_heads)
a, drop1 = F.dropout_forward(a, dropout, rng, train)
a, path1 = F.drop_path_forward(a, drop_path, rng, train)
z1 = x + a
h, ln2 = F.layernorm_forward(z1, p['ln2_gamma'], p['ln2_beta'], eps)
m, mlp = F.mlp_forward(h, p['w1'], p['b1'], p['w2'], p['b2'], approximate)
m, drop2 = F.dropout_forward(m, dropout, rng, train)
m, path2 = F.drop_path_forward(m, drop_path, rng, train)
return z1 + m, (ln1, attn, drop1, path1, ln2, mlp, drop2, path2)
""",
"encoder_block_backward": """
ln1, attn, drop1, path1, ln2, mlp, drop2, path2 = cache
g = {}
dm = F.drop_path_backward(dout, path2)
dm = F.dropout_backward(dm, drop2)
dh, g['w1'], g['b1'], g['w2'], g['b2'] = F.mlp_backward(dm, mlp)
dz1, g['ln2_gamma'], g['ln2_beta'] = F.layernorm_backward(dh, ln2)
dz1 = dz1 + dout
da = F.drop_path_backward(dz1, path1)
da = F.dropout_backward(da, drop1)
dh, g['w_qkv'], g['b_qkv'], g['w_out'], g['b_out'] = F.mhsa_backward(da, attn)
dx, g['ln1_gamma'], g['ln1_beta'] = F.layernorm_backward(dh, ln1)
return dx + dz1, g
"""})
fill("ex09_optim.py", {
"adamw_update": """
xp = get_array_module(w)
m *= b1
m += (1.0 - b1) * g
v *= b2
v += (1.0 - b2) * (g * g)
if weight_decay:
    w *= 1.0 - lr * weight_decay
step_size = lr * math.sqrt(1.0 - b2 ** t) / (1.0 - b1 ** t)
denom = xp.sqrt(v) + eps * math.sqrt(1.0 - b2 ** t)
w -= step_size * (m / denom)
""",
"warmup_cosine": """
if step < warmup_steps:
    return base_lr * (step + 1) / warmup_steps
decay_steps = total_steps - warmup_steps
progress = min(1.0, (step - warmup_steps) / decay_steps) if decay_steps > 0 else 1.0
return min_lr + 0.5 * (base_lr - min_lr) * (1.0 + math.cos(math.pi * progress))
"""})
