"""Grading topic `layernorm`: Layer normalization: its checks, wrong variants and
mistake messages. dx is read by its parts: the path through xhat, through the mean, through
the variance (``_dx_terms``)."""

import numpy as np

from minivit.grading.common import MISTAKES, TOL32, TOL64, Check, Fail, REF, _bias_variants, _call_backward, \
    _call_forward, _copy, _fail_with, _mismatch, _rng, pointer
from minivit.grading.pair import _edge_case_check
from minivit.grading.topics.diagnosis import describe_terms
from minivit.grading.topics.explained import ExplainedPair

MISTAKES.update({
    "unbiased_variance": "Biased vs unbiased variance: you divided by D - 1 (torch.var's default). LayerNorm uses the "
                         "biased variance: divide by D.",
    "eps_outside_sqrt": "eps belongs inside the square root, added to the variance, not to the standard deviation.",
    "missing_eps": "eps is missing from the normalization: it keeps a token whose features are all equal (variance 0) "
                   "from dividing by zero.",
    "eps_argument_ignored": "eps is not the value asked for: the `eps` argument when one is passed, the signature's "
                            "default when not. A constant in place of the argument, or another default than the "
                            "docstring's, gives this (the grader passes eps = 1e-2 and also calls without eps).",
    "layernorm_axis": "Normalized over the wrong axis: LayerNorm normalizes each token's feature vector on its "
                      "own, with mean and variance over the last axis (D) only.",
    "gamma_beta_swapped": "gamma and beta are swapped: gamma scales the normalized input, beta shifts it.",
    "layernorm_float32_cancellation": "The variance loses its digits in float32 when the features have a large mean: "
                                      "E[x^2] - E[x]^2 subtracts two nearly equal large numbers. Compute it from the "
                                      "centered values instead (np.var does).",
    "layernorm_dx_constant_stats": "dx treats the mean and the variance as constants, but both depend on x: dx is "
                                   "missing the terms through the mean and through the variance.",
    "layernorm_dx_no_variance_term": "dx is missing the term through the variance: every feature of a token moves its "
                                     "variance, and with it the normalization's scale.",
    "layernorm_dx_no_mean_term": "dx is missing the term through the mean: every feature of a token moves its mean.",
    "layernorm_dx_term_sign": "A term of dx has the wrong sign: check the signs of the terms through the mean and "
                              "through the variance in your derivation.",
    "layernorm_dx_term_scale": "A term of dx is off by a constant factor: check that each term averages over the D "
                               "features (a sum needs / D) and the constants of the variance's derivative (the 2 of "
                               "the square, the 1/2 of the square root).",
    "layernorm_dx_no_gamma": "dx forgets gamma: the gradient that reaches xhat has gone through the multiplication by "
                             "gamma.",
    "layernorm_dx_rstd": "dx has the wrong power of the reciprocal standard deviation in front: count how many times "
                         "each path goes through the division by the standard deviation.",
    "dgamma_uses_x": "dgamma must use the normalized input xhat, not the raw x: gamma multiplies xhat.",
})


# -- forward variants ----------------------------------------------------------------------------------
def _ln_variant(ddof=0, eps_mode="inside", axis=-1, swap=False, fixed_eps=None):
    """A wrong layernorm_forward(x, gamma, beta, eps) -> y (the mistake given by the arguments)."""
    def f(x, g, b, eps=1e-6):
        eps = eps if fixed_eps is None else fixed_eps
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


# -- dx by its parts -------------------------------------------------------------------------------------
def _ln_internal(a, dout):
    """(xhat (..., D), rstd (..., 1), g = dout * gamma (..., D)) for layernorm args ``a``."""
    x, g = a[0], a[1]
    eps = a[3] if len(a) > 3 else 1e-6
    mu = x.mean(axis=-1, keepdims=True)
    var = ((x - mu) ** 2).mean(axis=-1, keepdims=True)
    rstd = 1 / np.sqrt(var + eps)
    return (x - mu) * rstd, rstd, dout * g


def _dx_terms(a, dout, gamma=True):
    """The three paths of dx (each (..., D)): through xhat directly (rstd * g), through the mean
    (-rstd * mean(g)) and through the variance (-rstd * xhat * mean(g * xhat)); dx is their sum.
    gamma=False: the same with g = dout (the gradient of a learner who forgot gamma)."""
    xhat, rstd, g = _ln_internal(a, dout)
    if not gamma:
        g = dout
    through_mean = np.broadcast_to(-rstd * g.mean(axis=-1, keepdims=True), g.shape)
    return rstd * g, through_mean, -rstd * xhat * (g * xhat).mean(axis=-1, keepdims=True)


# (key, coefficients of the three paths in the learner's dx); "D": the feature count (a sum for a mean)
DX_COMBINATIONS = (
    ("layernorm_dx_constant_stats", (1, 0, 0)),
    ("layernorm_dx_no_mean_term", (1, 0, 1)),
    ("layernorm_dx_no_variance_term", (1, 1, 0)),
    ("layernorm_dx_term_sign", (1, -1, 1)), ("layernorm_dx_term_sign", (1, 1, -1)),
    ("layernorm_dx_term_sign", (1, -1, -1)), ("layernorm_dx_term_sign", (-1, 1, 1)),
    ("layernorm_dx_term_scale", (1, "D", "D")), ("layernorm_dx_term_scale", (1, "D", 1)),
    ("layernorm_dx_term_scale", (1, 1, "D")), ("layernorm_dx_term_scale", (1, 1, 2)),
    ("layernorm_dx_term_scale", (1, 1, 0.5)),
)


def _combine(coef, terms, D):
    """sum_i coef[i] * terms[i], with "D" standing for the feature count."""
    return sum((D if c == "D" else c) * t for c, t in zip(coef, terms))


def _dx_variant(coef, gamma=True, rstd_power=1):
    """A wrong dx: the paths combined with ``coef``; gamma=False: g = dy; rstd_power: rstd^p in front."""
    def v(a, d, rc, rg):
        terms = _dx_terms(a, d, gamma)
        rstd = _ln_internal(a, d)[1]
        return {"dx": _combine(coef, terms, d.shape[-1]) * rstd ** (rstd_power - 1)}
    return v


def _dgamma_variants():
    """dgamma/dbeta not summed or averaged over the tokens; dgamma = sum(dy * x)."""
    def lead(d):
        return tuple(range(d.ndim - 1))
    out = [("dgamma_uses_x", lambda a, d, rc, rg: {"dgamma": (d * a[0]).reshape(-1, a[0].shape[-1]).sum(axis=0)})]
    for k, key in enumerate(("bias_grad_not_summed", "bias_grad_not_summed", "grad_mean_not_sum")):
        out.append((key, lambda a, d, rc, rg, k=k: _bias_variants("dbeta", d, lead(d))[k][1]))
        out.append((key, lambda a, d, rc, rg, k=k: _bias_variants("dgamma", d * _ln_internal(a, d)[0], lead(d))[k][1]))
    return out


def _explain_dx(args, dout, ref_cache, mine, ref):
    """Which path of dx is missing, off in sign or in scale (a least-squares fit onto the three)."""
    if _mismatch("dx", mine["dx"], ref["dx"]) is None:
        return ""
    names = ("through xhat", "through the mean", "through the variance")
    return describe_terms("dx", mine["dx"], list(zip(names, _dx_terms(args, dout))), [1, 1, 1], TOL64)


def _cases():
    """The float64 inputs, the eps = 1e-2 one first (small variance: a hard-coded eps shows at once)."""
    r = _rng("layernorm").standard_normal
    return [(0.05 * r((1, 2, 3, 16)), 1 + 0.3 * r(16), 0.3 * r(16), 1e-2),
            (r((2, 5, 8)), 1 + 0.3 * r(8), 0.3 * r(8), 1e-6),
            (r((3, 7)), 1 + 0.3 * r(7), 0.3 * r(7), 1e-5),
            (r((2, 3, 6)), 1 + 0.3 * r(6), 0.3 * r(6))]


LAYERNORM = ExplainedPair(
    "layernorm_forward", "layernorm_backward", ("dx", "dgamma", "dbeta"),
    cases=_cases,
    fd_cases=lambda: (lambda r: [(r((2, 3, 5)), 1 + r(5), r(5), 1e-6), (0.1 * r((2, 4)), 1 + r(4), r(4), 1e-2)])(
        _rng("layernorm-fd").standard_normal),
    wrt=lambda a: [a[0], a[1], a[2]],
    fwd_mistakes=(
        ("unbiased_variance", _ln_variant(ddof=1)),
        ("eps_outside_sqrt", _ln_variant(eps_mode="outside")),
        ("missing_eps", _ln_variant(eps_mode="none")),
        ("eps_argument_ignored", _ln_variant(fixed_eps=1e-5)),
        ("eps_argument_ignored", _ln_variant(fixed_eps=1e-6)),
        ("layernorm_axis", _ln_variant(axis=0)),
        ("layernorm_axis", _ln_variant(axis="all")),
        ("gamma_beta_swapped", _ln_variant(swap=True)),
    ),
    bwd_mistakes=tuple((key, _dx_variant(coef)) for key, coef in DX_COMBINATIONS) + (
        ("layernorm_dx_no_gamma", _dx_variant((1, 1, 1), gamma=False)),
        ("layernorm_dx_rstd", _dx_variant((1, 1, 1), rstd_power=0)),
        ("layernorm_dx_rstd", _dx_variant((1, 1, 1), rstd_power=2)),
    ) + tuple(_dgamma_variants()),
    explain=_explain_dx,
)


def _layernorm_zero_variance_check(ns):
    rng = _rng("layernorm-const")
    x = rng.standard_normal((2, 3, 6))
    x[0, 1] = 0.7                         # one token whose features are all equal: var = 0
    x[1, 2] = 0.0
    args = (x, 1 + 0.3 * rng.standard_normal(6), 0.3 * rng.standard_normal(6), 1e-6)
    _edge_case_check(ns, rng, "layernorm", args, ("dx", "dgamma", "dbeta"),
                     "with a token whose features are all equal (variance 0)", "with a zero-variance token",
                     "missing_eps", LAYERNORM)


LARGE_MEAN = 512.0


def large_mean_input():
    """float32 (x (3, 5, 32), gamma, beta, eps) whose features have mean 512 and std ~1.

    The deviations are multiples of 1/64, so every float32 sum of the mean is exact: minivit's
    two-pass variance stays ~1e-7 from the float64 answer (1000x under TOL32), while
    E[x^2] - E[x]^2 loses ~1e-2 (100x over it); tests/test_grading_layernorm_mlp_multihead.py
    measures both margins."""
    r = _rng("layernorm-large-mean").standard_normal
    x = LARGE_MEAN + np.round(r((3, 5, 32)) * 64) / 64
    return tuple(np.asarray(v, dtype=np.float32) for v in (x, 1 + 0.3 * r(32), 0.3 * r(32))) + (1e-6,)


def _layernorm_large_mean_check(ns):
    args = large_mean_input()
    out, cache = _call_forward(ns, "layernorm_forward", args)
    up = tuple(a.astype(np.float64) for a in args[:3]) + args[3:]
    want, ref_cache = REF.layernorm_forward(*_copy(up))
    call = "layernorm_forward(x (3, 5, 32) float32 with mean 512 and std 1)"
    if getattr(out, "dtype", None) != np.float32:
        _fail_with(f"{call} returned {getattr(out, 'dtype', type(out).__name__)}.", "float64_promotion",
                   at="layernorm_forward")
    problem = _mismatch("the output", out, want, TOL32)
    if problem:
        if _precision_only(ns, up, want):
            _fail_with(f"{call}: {problem}.", "layernorm_float32_cancellation", at="layernorm_forward")
        raise Fail(f"{call}: {problem}.\nNext step: pass the float64 checks first, then print the variance "
                   "you compute for one token next to np.var of it.\n" + pointer("layernorm_forward"))
    dout = _rng("layernorm-large-mean-dy").standard_normal(want.shape)
    if not _backward_right_in_float64(ns, up, dout, ref_cache):
        return            # a wrong backward is charged by the backward's own checks, not to the forward here
    grads = _call_backward(ns, "layernorm_backward", dout.astype(np.float32), cache)
    for name, g, w in zip(("dx", "dgamma", "dbeta"), grads, REF.layernorm_backward(dout, ref_cache)):
        problem = _mismatch(name, g, w, TOL32)
        if problem:
            raise Fail(f"layernorm_backward after {call}: {problem}. It is right in float64 on this input, so "
                       "precision is lost in float32 only (recomputing statistics from x in the backward loses it "
                       "the way the forward's variance can).\n" + pointer("layernorm_backward"))


def _backward_right_in_float64(ns, up, dout, ref_cache):
    """The learner's backward matches the reference on this input in float64 (then a float32
    difference below is a precision problem of this input, worth a point of its own)."""
    try:
        _, cache64 = _call_forward(ns, "layernorm_forward", up)
        grads = _call_backward(ns, "layernorm_backward", dout, cache64)
    except Exception:     # a backward that raises is charged by its own checks
        return False
    return all(_mismatch(n, g, w, TOL64) is None for n, g, w in
               zip(("dx", "dgamma", "dbeta"), grads, REF.layernorm_backward(dout, ref_cache)))


def _precision_only(ns, up, want):
    """The learner's forward is right in float64 on this input and right in float32 once the mean
    is removed: the float32 error comes from the large mean (the variance cancels)."""
    out64, _ = _call_forward(ns, "layernorm_forward", up)
    if _mismatch("the output", out64, want, TOL64) is not None:
        return False
    x = up[0]
    centered = ((x - x.mean(axis=-1, keepdims=True)).astype(np.float32),) + tuple(
        np.asarray(a, np.float32) for a in up[1:3]) + up[3:]
    out32, _ = _call_forward(ns, "layernorm_forward", centered)
    want_c, _ = REF.layernorm_forward(*_copy(tuple(np.asarray(a, np.float64) for a in centered[:3]) + up[3:]))
    return _mismatch("the output", out32, want_c, TOL32) is None


def checks():
    """This topic's checks, in the order they run."""
    return LAYERNORM.checks() + [
        Check("layernorm: a token with zero variance stays finite and correct",
              ("layernorm_forward", "layernorm_backward"), 1, _layernorm_zero_variance_check),
        Check("layernorm: float32 features with a large mean (512) keep their precision",
              ("layernorm_forward", "layernorm_backward"), 1, _layernorm_large_mean_check,
              function="layernorm_forward")]
