"""Grading topic `layernorm`: Layer normalization: its checks, wrong variants and
mistake messages."""

import numpy as np

from minivit.grading.common import MISTAKES, Check, _bias_variants, _rng
from minivit.grading.pair import Pair, _edge_case_check

MISTAKES.update({
    "unbiased_variance": "Biased vs unbiased variance: you divided by D - 1 (np.var(..., ddof=1), torch.var's "
                         "default). LayerNorm uses the biased variance, mean((x - mu)^2): divide by D.",
    "eps_outside_sqrt": "eps belongs inside the square root: xhat = (x - mu) / sqrt(var + eps), not "
                        "(x - mu) / (sqrt(var) + eps).",
    "missing_eps": "eps is missing: xhat = (x - mu) / sqrt(var + eps). It keeps a token whose features are all "
                   "equal (var = 0) from dividing by zero.",
    "layernorm_axis": "Normalized over the wrong axis: LayerNorm normalizes each token's feature vector on its "
                      "own, with mean and variance over the last axis (D) only.",
    "gamma_beta_swapped": "gamma and beta are swapped: y = gamma * xhat + beta.",
    "layernorm_dx_constant_stats": "dx treats the mean and the variance as constants, but they depend on x too: "
                                   "dx = rstd * (g - mean(g) - xhat * mean(g * xhat)) with g = dy * gamma.",
    "layernorm_dx_no_variance_term": "dx is missing the variance term: dx = rstd * (g - mean(g) - xhat * "
                                     "mean(g * xhat)) with g = dy * gamma.",
    "dgamma_uses_x": "dgamma must use the normalized input: dgamma = sum(dy * xhat), not sum(dy * x).",
})


# -- layernorm --------------------------------------------------------------------------------------
def _ln_variant(ddof=0, eps_mode="inside", axis=-1, swap=False):
    def f(x, g, b, eps=1e-6):
        ax = axis if axis != "all" else None
        mu = x.mean(axis=ax, keepdims=True)
        var = ((x - mu) ** 2).sum(axis=ax, keepdims=True) / ((x.size if ax is None else x.shape[ax]) - ddof)
        if eps_mode == "inside":
            xhat = (x - mu) / np.sqrt(var + eps)
        elif eps_mode == "outside":
            xhat = (x - mu) / (np.sqrt(var) + eps)
        else:
            xhat = (x - mu) / np.sqrt(var)
        return xhat * b + g if swap else xhat * g + b
    return f


def _ln_internal(a, dout):
    x, g = a[0], a[1]
    eps = a[3] if len(a) > 3 else 1e-6
    mu = x.mean(axis=-1, keepdims=True)
    var = ((x - mu) ** 2).mean(axis=-1, keepdims=True)
    rstd = 1 / np.sqrt(var + eps)
    return (x - mu) * rstd, rstd, dout * g


LAYERNORM = Pair(
    "layernorm_forward", "layernorm_backward", ("dx", "dgamma", "dbeta"),
    cases=lambda: (lambda r: [(r((2, 5, 8)), 1 + 0.3 * r(8), 0.3 * r(8), 1e-6),
                              (r((3, 7)), 1 + 0.3 * r(7), 0.3 * r(7), 1e-5),
                              (0.05 * r((1, 2, 3, 16)), 1 + 0.3 * r(16), 0.3 * r(16), 1e-2),
                              (r((2, 3, 6)), 1 + 0.3 * r(6), 0.3 * r(6))])(_rng("layernorm").standard_normal),
    fd_cases=lambda: (lambda r: [(r((2, 3, 5)), 1 + r(5), r(5), 1e-6), (0.1 * r((2, 4)), 1 + r(4), r(4), 1e-2)])(
        _rng("layernorm-fd").standard_normal),
    wrt=lambda a: [a[0], a[1], a[2]],
    fwd_mistakes=(
        ("unbiased_variance", _ln_variant(ddof=1)),
        ("eps_outside_sqrt", _ln_variant(eps_mode="outside")),
        ("missing_eps", _ln_variant(eps_mode="none")),
        ("layernorm_axis", _ln_variant(axis=0)),
        ("layernorm_axis", _ln_variant(axis="all")),
        ("gamma_beta_swapped", _ln_variant(swap=True)),
    ),
    bwd_mistakes=(
        ("layernorm_dx_constant_stats", lambda a, d, rc, rg: (lambda xh, rs, g: {"dx": g * rs})(*_ln_internal(a, d))),
        ("layernorm_dx_no_variance_term", lambda a, d, rc, rg: (lambda xh, rs, g: {
            "dx": rs * (g - g.mean(axis=-1, keepdims=True))})(*_ln_internal(a, d))),
        ("dgamma_uses_x", lambda a, d, rc, rg: {"dgamma": (d * a[0]).reshape(-1, a[0].shape[-1]).sum(axis=0)}),
    ) + tuple((key, (lambda k: lambda a, d, rc, rg: _bias_variants("dbeta", d, tuple(range(d.ndim - 1)))[k][1])(k))
              for k, key in enumerate(("bias_grad_not_summed", "bias_grad_not_summed", "grad_mean_not_sum"))) + tuple(
        (key, (lambda k: lambda a, d, rc, rg: (lambda xh: _bias_variants("dgamma", d * xh, tuple(range(d.ndim - 1)))[k][1])(
            _ln_internal(a, d)[0]))(k))
        for k, key in enumerate(("bias_grad_not_summed", "bias_grad_not_summed", "grad_mean_not_sum"))),
)


def _layernorm_zero_variance_check(ns):
    rng = _rng("layernorm-const")
    x = rng.standard_normal((2, 3, 6))
    x[0, 1] = 0.7                         # one token whose features are all equal: var = 0
    x[1, 2] = 0.0
    args = (x, 1 + 0.3 * rng.standard_normal(6), 0.3 * rng.standard_normal(6), 1e-6)
    _edge_case_check(ns, rng, "layernorm", args, ("dx", "dgamma", "dbeta"),
                     "with a token whose features are all equal (variance 0)", "with a zero-variance token",
                     "missing_eps")


def checks():
    """This topic's checks, in the order they run."""
    return LAYERNORM.checks() + [
        Check("layernorm: a token with zero variance stays finite and correct",
              ("layernorm_forward", "layernorm_backward"), 1, _layernorm_zero_variance_check)]
