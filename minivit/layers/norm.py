"""Layer normalization (Ba et al. 2016), applied before every block in ViT (eqs. 2-4).

Each token's feature vector is normalized on its own (over the last axis D), then scaled
and shifted by learned gamma and beta:

    mu = mean(x),  var = mean((x - mu)^2)   (the *biased* variance: divide by D, not D-1)
    xhat = (x - mu) / sqrt(var + eps)
    y = gamma * xhat + beta
"""
from minivit.backend import get_array_module


def layernorm_forward(x, gamma, beta, eps=1e-6):
    """x: (..., D)   gamma, beta: (D,)   returns: y (..., D), cache.

    Over the last axis, each token on its own: mu = mean(x), var = mean((x - mu)^2) (the *biased*
    variance: divide by D), xhat = (x - mu) / sqrt(var + eps), y = gamma * xhat + beta.
    eps = 1e-6 as in the official ViT code. A token with zero variance gives xhat = 0.

    Keeps the input's dtype (float32 in, float32 out) and does not modify its inputs. Use the ``eps``
    argument (the checks pass other values, and call without it). float32 features with a large mean
    (~512) must keep float32 precision.

    Derivation:
        keepdims=True keeps mu and var lined up with their token. minivit's cache is
        (xhat, rstd = 1/sqrt(var + eps), gamma): enough for the backward.
    """
    if gamma.shape != (x.shape[-1],) or beta.shape != (x.shape[-1],):
        raise ValueError(f"LayerNorm over {x.shape[-1]} features needs gamma and beta of shape ({x.shape[-1]},), "
                         f"got {tuple(gamma.shape)} and {tuple(beta.shape)}")
    xp = get_array_module(x)
    mu = x.mean(axis=-1, keepdims=True)
    xc = x - mu
    var = (xc * xc).mean(axis=-1, keepdims=True)
    rstd = 1.0 / xp.sqrt(var + eps)                 # (..., 1)
    xhat = xc * rstd
    y = xhat * gamma
    y += beta
    return y, (xhat, rstd, gamma)


def layernorm_backward(dy, cache):
    """dy: (..., D) -> dx (..., D), dgamma (D,), dbeta (D,): the gradients with respect to x, gamma
    and beta.

    Keeps the dtype (float32 in, float32 out). Does not modify dy: the caller's array may be used
    elsewhere. Everything it needs comes from the cache (it may run after other forward calls). gamma
    and beta are shared by every token of every image (all axes but the last): a parameter gradient adds
    up the contributions of all of them, in the parameter's own shape.

    Derivation:
    With g = dy * gamma (the gradient reaching xhat), the chain rule through the mean and the
    variance collapses to

        dx = rstd * (g - mean(g) - xhat * mean(g * xhat))

    (means over the feature axis). dgamma and dbeta sum over every token of every image.
    """
    xhat, rstd, gamma = cache
    D = xhat.shape[-1]
    dy2 = dy.reshape(-1, D)
    dgamma = (dy2 * xhat.reshape(-1, D)).sum(axis=0)
    dbeta = dy2.sum(axis=0)
    g = dy * gamma
    dx = g - g.mean(axis=-1, keepdims=True) - xhat * (g * xhat).mean(axis=-1, keepdims=True)
    dx *= rstd
    return dx, dgamma, dbeta
