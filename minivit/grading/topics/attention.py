"""Grading topic `attention`: Softmax and scaled dot-product attention: its checks, wrong variants and
mistake messages."""

import math

import numpy as np

from minivit.grading.common import MISTAKES, Check, _rng, _softmax
from minivit.grading.pair import Pair, _edge_case_check

MISTAKES.update({
    "softmax_axis": "Softmax over the wrong axis: each slice along `axis` (for attention: each row of A, one "
                    "query's weights over all keys, the last axis) must sum to 1.",
    "softmax_keepdims": "keepdims=True is missing: x.max(axis=...) and e.sum(axis=...) drop the axis, so they "
                        "broadcast against the wrong axis. Use keepdims=True so each row uses its own max and sum.",
    "softmax_diagonal_jacobian": "Only the diagonal of the softmax Jacobian is used, dx = s (1 - s) dout. The "
                                 "off-diagonal terms -s_i s_j contribute too: dx = s * (dout - sum(dout * s, axis)).",
    "missing_scale": "The 1/sqrt(d) scale is missing: A = softmax(q k^T / sqrt(d)). Without it softmax saturates "
                     "for wide heads and its gradients vanish.",
    "scale_1_over_d": "The scores are divided by d; divide by sqrt(d): A = softmax(q k^T / sqrt(d)).",
    "scale_times_sqrt_d": "The scores are multiplied by sqrt(d); divide by it: A = softmax(q k^T / sqrt(d)).",
    "scale_model_width": "The scores are scaled by 1/sqrt(D), the model width. Each head works in its own "
                         "d = D / num_heads dimensions: scale by 1/sqrt(d).",
    "attention_transposed": "The attention matrix is transposed: out = A v with A[i, j] the weight of key j for "
                            "query i (rows sum to 1), not A^T v.",
    "missing_scale_backward": "dq and dk are missing the 1/sqrt(d) factor: S = q k^T / sqrt(d), so "
                              "dq = dS k / sqrt(d) and dk = dS^T q / sqrt(d).",
    "dk_not_transposed": "dk needs dS transposed: dk = scale * dS^T q (key j collects from every query i).",
    "dv_not_transposed": "dv needs A transposed: dv = A^T dout.",
})


# -- softmax and attention ----------------------------------------------------------------------
def _softmax_axis_variants():
    def make(k):
        def f(x, axis=-1):
            ax = axis % x.ndim
            if k >= x.ndim or k == ax:
                return None
            return _softmax(x, k)
        return f
    return tuple(("softmax_axis", make(k)) for k in range(4))


def _softmax_no_keepdims(x, axis=-1):
    e = np.exp(x - x.max(axis=axis))
    return e / e.sum(axis=axis)


SOFTMAX = Pair(
    "softmax_forward", "softmax_backward", ("dx",),
    cases=lambda: (lambda r: [(r((4, 7)), -1), (r((2, 3, 5)), -1), (r((2, 5, 3)), 1), (r((5, 5)), -1),
                              (r((3, 4)),), (r((3, 1)), -1)])(_rng("softmax").standard_normal),
    fd_cases=lambda: (lambda r: [(r((2, 3, 5)), -1), (r((2, 4, 3)), 1)])(_rng("softmax-fd").standard_normal),
    fwd_mistakes=_softmax_axis_variants() + (("softmax_keepdims", _softmax_no_keepdims),),
    bwd_mistakes=(
        ("softmax_diagonal_jacobian", lambda a, d, rc, rg: (lambda s: {"dx": s * (1 - s) * d})(
            _softmax(a[0], a[1] if len(a) > 1 else -1))),
    ),
)


def _attention_variant(scale="sqrt", axis=-1, transpose=False):
    def f(q, k, v):
        d = q.shape[-1]
        s = {"sqrt": 1 / math.sqrt(d), "none": 1.0, "d": 1 / d, "times": math.sqrt(d)}[scale]
        A = _softmax(q @ k.swapaxes(-1, -2) * s, axis)
        if transpose:
            A = A.swapaxes(-1, -2)
        return A @ v
    return f


def _attn_internal(args, dout, rc):
    q, k, v, A, scale = rc
    dA = dout @ v.swapaxes(-1, -2)
    dS = A * (dA - (dA * A).sum(axis=-1, keepdims=True))
    return q, k, v, A, scale, dS


ATTENTION = Pair(
    "attention_forward", "attention_backward", ("dq", "dk", "dv"),
    cases=lambda: (lambda r: [(r((2, 2, 5, 4)), r((2, 2, 5, 4)), r((2, 2, 5, 4))),
                              (r((3, 6, 8)), r((3, 6, 8)), r((3, 6, 8))),
                              (r((1, 1, 1, 4)), r((1, 1, 1, 4)), r((1, 1, 1, 4))),
                              (r((2, 1, 3, 2)), r((2, 1, 3, 2)), r((2, 1, 3, 2)))])(_rng("attention").standard_normal),
    fd_cases=lambda: (lambda r: [(r((2, 2, 3, 4)), r((2, 2, 3, 4)), r((2, 2, 3, 4)))])(
        _rng("attention-fd").standard_normal),
    wrt=lambda a: [a[0], a[1], a[2]],
    fwd_mistakes=(
        ("missing_scale", _attention_variant("none")),
        ("scale_1_over_d", _attention_variant("d")),
        ("scale_times_sqrt_d", _attention_variant("times")),
        ("softmax_axis", _attention_variant(axis=-2)),
        ("attention_transposed", _attention_variant(transpose=True)),
    ),
    bwd_mistakes=(
        ("missing_scale_backward", lambda a, d, rc, rg: {"dq": rg["dq"] * math.sqrt(a[0].shape[-1]),
                                                        "dk": rg["dk"] * math.sqrt(a[0].shape[-1])}),
        ("dk_not_transposed", lambda a, d, rc, rg: (lambda t: {"dk": t[4] * t[5] @ t[0]})(_attn_internal(a, d, rc))),
        ("dv_not_transposed", lambda a, d, rc, rg: {"dv": rc[3] @ d}),
        ("softmax_diagonal_jacobian", lambda a, d, rc, rg: (lambda q, k, v, A, s: {
            "dq": s * (A * (1 - A) * (d @ v.swapaxes(-1, -2))) @ k})(*rc)),
    ),
)


def _large_softmax_check(ns):
    rng = _rng("softmax-large")
    cases = [(rng.uniform(-1e4, 1e4, (3, 6)), -1), (1e3 + rng.standard_normal((2, 4, 5)) * 10, -1),
             (rng.uniform(-5e3, 5e3, (4, 3)), 0)]
    for args in cases:
        _edge_case_check(ns, rng, "softmax", args, ("dx",), f"with scores up to {np.abs(args[0]).max():.0f}",
                         "after large scores", "no_max_subtraction")


def _large_attention_check(ns):
    rng = _rng("attention-large")
    r = rng.standard_normal
    q, k, v = 60 * r((2, 2, 4, 8)), 60 * r((2, 2, 4, 8)), r((2, 2, 4, 8))
    top = np.abs(q @ k.swapaxes(-1, -2)).max() / math.sqrt(8)
    _edge_case_check(ns, rng, "attention", (q, k, v), ("dq", "dk", "dv"),
                     f"with scores q.k/sqrt(d) up to ~{top:.0f}", "after large scores", "no_max_subtraction")


def checks():
    """This topic's checks, in the order they run."""
    return SOFTMAX.checks() + [
        Check("softmax: large inputs (scores up to 1e4) stay finite and correct",
              ("softmax_forward", "softmax_backward"), 1, _large_softmax_check)] + ATTENTION.checks() + [
        Check("attention: large scores stay finite and correct", ("attention_forward", "attention_backward"), 1,
              _large_attention_check)]
