"""The fused kernels as drop-in ``ops.F`` functions: same signatures, outputs and caches as the plain ones.

Each function here runs its kernels (``minivit.fast.fused.kernels``) when its arrays are CuPy arrays,
and otherwise hands over to the function it replaces (``minivit.fast``'s, else the plain one), so
installing these changes nothing on the CPU. Caches keep the plain layout (a plain backward
accepts a fused forward's cache and vice versa), so any mix of fused and plain functions works,
which is what lets each kernel be switched on by itself (``fused.functions()``).

What is fused, beyond one kernel per plain function:
* ``mlp_forward``: the first layer's bias add goes into the GELU kernel (x W, then one pass for
  + b, tanh and the product) instead of a pass of its own;
* ``encoder_block_forward``: each residual add also applies the branch's dropout and drop-path
  masks (one pass instead of three), drawing the same random numbers in the same order;
* ``encoder_block_backward``: the residual gradient is added inside the LayerNorm backward
  kernel (``dz1 = LN'(dh) + dout`` in one pass) when the fused LayerNorm backward is installed.
"""
from __future__ import annotations

from minivit.fast.fused import kernels as fused
from minivit import layers, ops, optim
from minivit.fast.fused.kernels import on_gpu

# ops name -> the kernels it needs (all must be chosen for fused.functions() to install it)
NEEDS = {
    "softmax_forward": ("softmax_forward",),
    "softmax_backward": ("softmax_backward",),
    "layernorm_forward": ("layernorm_forward",),
    "layernorm_backward": ("layernorm_backward", "layernorm_param_grads"),
    "gelu_forward": ("gelu_bias_forward",),
    "gelu_backward": ("gelu_backward",),
    "mlp_forward": ("gelu_bias_forward",),
    "dropout_forward": ("dropout_forward",),
    "encoder_block_forward": ("residual_forward",),
    "encoder_block_backward": ("residual_backward",),
    "adamw_update": ("adamw_update",),
}
# What runs when the arrays are not CuPy arrays: the plain functions, or what fused.functions() is
# given as fallback (minivit.fast passes its CPU fast paths).
NEXT = {name: getattr(layers, name, None) or getattr(optim, name) for name in NEEDS}


def softmax_forward(x, axis=-1):
    if not on_gpu(x) or axis not in (-1, x.ndim - 1):
        return NEXT["softmax_forward"](x, axis)
    s = fused.launch_softmax_forward(x)
    return s, (s, axis)


def softmax_backward(dout, cache):
    s, axis = cache
    if not on_gpu(dout, s) or dout.shape != s.shape or axis not in (-1, s.ndim - 1):
        return NEXT["softmax_backward"](dout, cache)
    return fused.launch_softmax_backward(dout, s)


def layernorm_forward(x, gamma, beta, eps=1e-6):
    D = x.shape[-1]
    if not on_gpu(x, gamma, beta) or gamma.shape != (D,) or beta.shape != (D,):
        return NEXT["layernorm_forward"](x, gamma, beta, eps)       # (raises on bad shapes)
    y, xhat, rstd = fused.launch_layernorm_forward(x, gamma, beta, eps)
    return y, (xhat, rstd, gamma)


def _layernorm_backward(dy, cache, dres=None):
    xhat, rstd, gamma = cache
    dx = fused.launch_layernorm_backward(dy, xhat, rstd, gamma, dres)
    dgamma, dbeta = fused.launch_layernorm_param_grads(dy, xhat)
    return dx, dgamma, dbeta


def layernorm_backward(dy, cache):
    if not on_gpu(dy, *cache):
        return NEXT["layernorm_backward"](dy, cache)
    return _layernorm_backward(dy, cache)


def gelu_forward(x, approximate="tanh"):
    if approximate != "tanh" or not on_gpu(x):
        return NEXT["gelu_forward"](x, approximate)
    _, t, y = fused.launch_gelu_bias_forward(x, None)              # (x itself is left as it is)
    return y, (x, t, approximate)


def gelu_backward(dout, cache):
    x, t, approximate = cache
    if approximate != "tanh" or not on_gpu(dout, x, t):
        return NEXT["gelu_backward"](dout, cache)
    return fused.launch_gelu_backward(dout, x, t)


def mlp_forward(x, w1, b1, w2, b2, approximate="tanh"):
    """As ``layers.mlp_forward``; the bias b1 is added inside the GELU kernel."""
    if approximate != "tanh" or not on_gpu(x, w1, b1) or x.shape[-1] != w1.shape[0]:
        return NEXT["mlp_forward"](x, w1, b1, w2, b2, approximate)
    h = x.reshape(-1, x.shape[-1]) @ w1                              # (R, M) fresh: ours to overwrite
    h, t, a = fused.launch_gelu_bias_forward(h, b1)                  # h += b1 in place; t; a = GELU(h)
    shape = x.shape[:-1] + (w1.shape[1],)
    out, fc2_cache = ops.F.linear_forward(a.reshape(shape), w2, b2)
    return out, ((x, w1), (h.reshape(shape), t.reshape(shape), approximate), fc2_cache)


def _check_p(p, what, rng, train):
    if not 0.0 <= p < 1.0:
        raise ValueError(f"{what} probability must be in [0, 1), got {p}")
    active = train and p > 0.0
    if active and rng is None:
        raise ValueError(f"{what} in training mode needs a random generator (rng=...)")
    return active


def dropout_forward(x, p, rng=None, train=True):
    if not on_gpu(x):
        return NEXT["dropout_forward"](x, p, rng, train)
    if not _check_p(p, "dropout", rng, train):
        return x, None
    u = rng.random(x.shape, dtype=x.dtype)                          # the plain code's draw
    return fused.launch_dropout_forward(x, u, p)


def _residual(x, a, dropout, drop_path, rng, train):
    """x + drop_path(dropout(a)) in one pass; returns (out, dropout mask, drop-path mask).
    Draws in the plain block's order: the dropout uniforms (a's shape), then drop-path's (B, 1, ...)."""
    u = pmask = None
    if _check_p(dropout, "dropout", rng, train):
        u = rng.random(a.shape, dtype=a.dtype)
    if _check_p(drop_path, "drop-path", rng, train):
        pmask = (rng.random((a.shape[0],) + (1,) * (a.ndim - 1), dtype=a.dtype) >= drop_path).astype(a.dtype)
        pmask *= 1.0 / (1.0 - drop_path)                            # (B, 1, ...), as drop_path_forward
    if u is None and pmask is None:
        return x + a, None, None
    return fused.launch_residual_forward(x, a, u, pmask, dropout), u, pmask


def encoder_block_forward(x, p, num_heads, eps=1e-6, approximate="tanh",
                          dropout=0.0, drop_path=0.0, rng=None, train=False):
    """As ``layers.encoder_block_forward`` (eqs. 2-3), with the residual adds fused."""
    if not on_gpu(x):
        return NEXT["encoder_block_forward"](x, p, num_heads, eps, approximate, dropout, drop_path, rng, train)
    F = ops.F
    h, ln1 = F.layernorm_forward(x, p["ln1_gamma"], p["ln1_beta"], eps)
    a, attn = F.mhsa_forward(h, p["w_qkv"], p["b_qkv"], p["w_out"], p["b_out"], num_heads)
    z1, drop1, path1 = _residual(x, a, dropout, drop_path, rng, train)                 # eq. (2)
    h, ln2 = F.layernorm_forward(z1, p["ln2_gamma"], p["ln2_beta"], eps)
    m, mlp = F.mlp_forward(h, p["w1"], p["b1"], p["w2"], p["b2"], approximate)
    out, drop2, path2 = _residual(z1, m, dropout, drop_path, rng, train)               # eq. (3)
    return out, (ln1, attn, drop1, path1, ln2, mlp, drop2, path2)


def _branch_grad(dout, dmask, pmask):
    return dout if dmask is None and pmask is None else fused.launch_residual_backward(dout, dmask, pmask)


def _layernorm_backward_plus(dy, cache, dres):
    """LayerNorm's backward plus the residual gradient dres: in one kernel when the fused
    LayerNorm backward is the one installed, else the installed one and an add."""
    if ops.F.layernorm_backward is layernorm_backward and on_gpu(dy, dres, *cache):
        return _layernorm_backward(dy, cache, dres)
    dx, dgamma, dbeta = ops.F.layernorm_backward(dy, cache)
    dx += dres
    return dx, dgamma, dbeta


def encoder_block_backward(dout, cache):
    """As ``layers.encoder_block_backward``."""
    if not on_gpu(dout):
        return NEXT["encoder_block_backward"](dout, cache)
    F = ops.F
    ln1, attn, drop1, path1, ln2, mlp, drop2, path2 = cache
    g = {}
    dm = _branch_grad(dout, drop2, path2)
    dh, g["w1"], g["b1"], g["w2"], g["b2"] = F.mlp_backward(dm, mlp)
    dz1, g["ln2_gamma"], g["ln2_beta"] = _layernorm_backward_plus(dh, ln2, dout)       # + the residual path
    da = _branch_grad(dz1, drop1, path1)
    dh, g["w_qkv"], g["b_qkv"], g["w_out"], g["b_out"] = F.mhsa_backward(da, attn)
    dx, g["ln1_gamma"], g["ln1_beta"] = _layernorm_backward_plus(dh, ln1, dz1)
    return dx, g


def adamw_update(w, g, m, v, t, lr, b1=0.9, b2=0.999, eps=1e-8, weight_decay=0.0):
    if not on_gpu(w, g, m, v) or not (w.flags.c_contiguous and m.flags.c_contiguous and v.flags.c_contiguous):
        return NEXT["adamw_update"](w, g, m, v, t, lr, b1, b2, eps, weight_decay)
    fused.launch_adamw_update(w, g, m, v, t, lr, b1, b2, eps, weight_decay)
