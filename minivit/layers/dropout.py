"""Dropout (inverted): at training time zero each value with probability p and scale the
survivors by 1/(1-p), so nothing needs rescaling at evaluation time, where dropout is the identity.
"""


def dropout_forward(x, p, rng=None, train=True):
    """x: any shape -> out same shape, cache.

    p: drop probability in [0, 1).  rng: a Generator of x's array library (``backend.make_rng``),
    required when training with p > 0.  At evaluation (``train=False``) or p == 0: identity.
    """
    if not 0.0 <= p < 1.0:
        raise ValueError(f"dropout probability must be in [0, 1), got {p}")
    if not train or p == 0.0:
        return x, None
    if rng is None:
        raise ValueError("dropout in training mode needs a random generator (rng=...)")
    mask = rng.random(x.shape, dtype=x.dtype) >= p
    mask = mask.astype(x.dtype)
    mask *= 1.0 / (1.0 - p)
    return x * mask, mask


def dropout_backward(dout, cache):
    """The gradient flows only through the kept values, with the same 1/(1-p) scale."""
    mask = cache
    return dout if mask is None else dout * mask


def drop_path_forward(x, p, rng=None, train=True):
    """Stochastic depth (Huang et al. 2016): drop a whole residual branch for some samples.

    x: (B, ...) the branch's output. Each sample's branch is zeroed with probability p and the
    kept ones scaled by 1/(1-p). Identity at evaluation. returns: out, cache (the (B, 1, ...) mask).
    """
    if not 0.0 <= p < 1.0:
        raise ValueError(f"drop-path probability must be in [0, 1), got {p}")
    if not train or p == 0.0:
        return x, None
    if rng is None:
        raise ValueError("drop-path in training mode needs a random generator (rng=...)")
    shape = (x.shape[0],) + (1,) * (x.ndim - 1)
    mask = (rng.random(shape, dtype=x.dtype) >= p).astype(x.dtype)
    mask *= 1.0 / (1.0 - p)
    return x * mask, mask


drop_path_backward = dropout_backward   # same rule: multiply by the (broadcast) mask
