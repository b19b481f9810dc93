"""NumPy stand-ins for the fused kernels' launchers (minivit.fast.fused.kernels.launch_*), for CPU tests.

Each has its launcher's signature and contract, including what it changes in place (the
GELU input becomes x W + b, the uniform draws become the dropout mask, AdamW updates w, m, v),
and computes with the plain functions. They let the CPU suite test everything around the
kernels: the verification harness (minivit.fast.fused.verification) and the fused ops functions' caches
and random draws (minivit.fast.fused.ops). They say nothing about the CUDA code itself.
"""
from minivit import layers, optim


def gelu_bias_forward(h, bias=None):
    if bias is not None:
        h += bias
    y, (_, t, _) = layers.gelu_forward(h)
    return h, t, y


def gelu_backward(dout, x, t):
    return layers.gelu_backward(dout, (x, t, "tanh"))


def _mask_in_place(u, p):
    u[...] = (u >= p).astype(u.dtype) * (1.0 / (1.0 - p))
    return u


def dropout_forward(x, u, p):
    _mask_in_place(u, p)
    return x * u, u


def residual_forward(x, a, u=None, pmask=None, p=0.0):
    v = a
    if u is not None:
        v = v * _mask_in_place(u, p)
    if pmask is not None:
        v = v * pmask
    return x + v


def residual_backward(dout, dmask=None, pmask=None):
    v = dout.copy()
    if pmask is not None:
        v = v * pmask
    if dmask is not None:
        v = v * dmask
    return v


def softmax_forward(x):
    return layers.softmax_forward(x)[0]


def softmax_backward(dout, s):
    return layers.softmax_backward(dout, (s, -1))


def layernorm_forward(x, gamma, beta, eps):
    y, (xhat, rstd, _) = layers.layernorm_forward(x, gamma, beta, eps)
    return y, xhat, rstd


def layernorm_backward(dy, xhat, rstd, gamma, dres=None):
    dx = layers.layernorm_backward(dy, (xhat, rstd, gamma))[0]
    return dx if dres is None else dx + dres


def layernorm_param_grads(dy, xhat):
    D = xhat.shape[-1]
    dy2, xh = dy.reshape(-1, D), xhat.reshape(-1, D)
    return (dy2 * xh).sum(axis=0), dy2.sum(axis=0)


def adamw_update(w, g, m, v, t, lr, b1=0.9, b2=0.999, eps=1e-8, weight_decay=0.0):
    optim.adamw_update(w, g, m, v, t, lr, b1, b2, eps, weight_decay)


LAUNCHERS = {name: fn for name, fn in globals().items()
             if callable(fn) and not name.startswith("_") and fn.__module__ == __name__}
