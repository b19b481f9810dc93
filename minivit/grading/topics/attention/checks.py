"""Grading topic `attention`: Softmax and scaled dot-product attention: its checks, the forward's wrong
variants and mistake messages (the backward's variants and diagnosis: ``backward.py``)."""

import math

import numpy as np

from minivit.grading.common import MISTAKES, REF, Check, Fail, _call_backward, _call_forward, _copy, _fail_with, \
    _grads_tuple, _mismatch, _rng, _softmax, pointer
from minivit.grading.topics.attention.backward import (attention_backward_variants, explain_attention,
                                                       explain_softmax, softmax_backward_variants,
                                                       wrong_forward_grads)
from minivit.grading.topics.parts import PartsPair

MISTAKES.update({
    "softmax_axis": "Softmax over the wrong axis: each slice along `axis` (for attention: each row of A, one "
                    "query's weights over all keys, the last axis) must sum to 1.",
    "softmax_diagonal_jacobian": "Only the diagonal of the softmax Jacobian is used. The off-diagonal entries "
                                 "contribute too: each probability of a slice depends on every score of that slice.",
    "missing_scale": "The 1/sqrt(d) scale of the scores is missing (see the docstring's equation). Without it softmax "
                     "saturates for wide heads and its gradients vanish.",
    "scale_1_over_d": "The scores are divided by d; the docstring's scale is 1/sqrt(d).",
    "scale_times_sqrt_d": "The scores are multiplied by sqrt(d); the docstring's scale divides by it.",
    "scale_model_width": "The scores are scaled by 1/sqrt(D), the model width. Each head works in its own "
                         "d = D / num_heads dimensions: scale by 1/sqrt(d).",
    "attention_transposed": "The attention matrix is transposed: A[i, j] is the weight of key j for query i (each row "
                            "sums to 1), and query i's output mixes the values with row i of A.",
    "missing_scale_backward": "dq and dk are missing the 1/sqrt(d) factor: the forward scales the scores, so the scale"
                              " reaches the gradients of q and k.",
    "dk_not_transposed": "dk needs dS transposed: key j collects from every query i, along column j of dS.",
    "dv_not_transposed": "dv needs A transposed: value j receives from every query i, weighted by A[i, j] (column j of"
                         " A).",
    "softmax_global_max": "The maximum subtracted is the maximum of the whole array, not of each slice along `axis`: a"
                          " slice far below the global maximum underflows to exp(...) = 0 everywhere, and its softmax "
                          "becomes 0/0 = NaN. Use one maximum per slice.",
    "softmax_normalized_over_all": "The exponentials are divided by their sum over the whole array: each slice along "
                                   "`axis` must sum to 1 on its own.",
    "softmax_max_in_numerator_only": "The maximum is subtracted in the numerator only, so the numerator and the "
                                     "denominator no longer match: shift the scores once, before exp, and use the same"
                                     " exponentials in both.",
    "scale_wrong_dim": "The scale uses another axis's size: d is the size of each query/key vector, the LAST axis (q "
                       "is (..., T, d); the other axes count batches, heads or tokens).",
    "scores_transposed": "The scores are k q^T instead of q k^T: row i of S holds query i's scores against every "
                         "key j (S[i, j] = q_i . k_j), so that the softmax over the last axis weighs the keys.",
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


def _softmax_over_all(x, axis=-1, global_max=True):
    e = np.exp(x - (x.max() if global_max else x.max(axis=axis, keepdims=True)))
    return e / e.sum()


def _softmax_max_numerator(x, axis=-1):
    return np.exp(x - x.max(axis=axis, keepdims=True)) / np.exp(x).sum(axis=axis, keepdims=True)


SOFTMAX = PartsPair(
    "softmax_forward", "softmax_backward", ("dx",),
    cases=lambda: (lambda r: [(r((4, 7)), -1), (r((2, 3, 5)), -1), (r((2, 5, 3)), 1), (r((5, 5)), -1),
                              (r((3, 4)),), (r((3, 1)), -1)])(_rng("softmax").standard_normal),
    fd_cases=lambda: (lambda r: [(r((2, 3, 5)), -1), (r((2, 4, 3)), 1)])(_rng("softmax-fd").standard_normal),
    fwd_mistakes=_softmax_axis_variants() + (("softmax_normalized_over_all", _softmax_over_all),
                                             ("softmax_max_in_numerator_only", _softmax_max_numerator),
                                             ("softmax_normalized_over_all",
                                              lambda x, axis=-1: _softmax_over_all(x, axis, global_max=False))),
    bwd_mistakes=softmax_backward_variants(),
    explain=explain_softmax,
)


def _attention_variant(scale="sqrt", axis=-1, transpose=False, softmax=_softmax, scores_t=False):
    """A wrong attention forward: another scale (an int: 1/sqrt of q.shape[scale], another axis than
    d), softmax axis or softmax, A or the scores transposed."""
    def f(q, k, v):
        d = q.shape[-1]
        if isinstance(scale, int):
            return None if scale >= q.ndim - 1 or q.shape[scale] == d else \
                _softmax(q @ k.swapaxes(-1, -2) / math.sqrt(q.shape[scale]), -1) @ v
        s = {"sqrt": 1 / math.sqrt(d), "none": 1.0, "d": 1 / d, "times": math.sqrt(d)}[scale]
        S = (k @ q.swapaxes(-1, -2) if scores_t else q @ k.swapaxes(-1, -2)) * s
        A = softmax(S, axis)
        if transpose:
            A = A.swapaxes(-1, -2)
        return A @ v
    return f


def _consistent_with_wrong_forward():
    """(forward mistake key, variant) pairs: the exact gradients of each wrong attention forward (a
    backward that is right for the learner's wrong forward), in the bwd_mistakes form."""
    def make(scale=None, dim=None, **kw):
        def variant(args, dout, rc, ref):
            q, k, v = args
            d = q.shape[-1]
            if dim is not None and (dim >= q.ndim - 1 or q.shape[dim] == d):
                return None
            c = 1 / math.sqrt(q.shape[dim]) if dim is not None else scale(d)
            return wrong_forward_grads(q, k, v, dout, c, **kw)
        return variant
    right = lambda d: 1 / math.sqrt(d)             # noqa: E731
    return (("missing_scale", make(lambda d: 1.0)), ("scale_1_over_d", make(lambda d: 1 / d)),
            ("scale_times_sqrt_d", make(lambda d: math.sqrt(d))), ("softmax_axis", make(right, axis=-2)),
            ("attention_transposed", make(right, transpose=True)), ("scores_transposed", make(right, scores_t=True)),
            *(("scale_wrong_dim", make(dim=i)) for i in range(3)))


ATTENTION = PartsPair(
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
        ("scores_transposed", _attention_variant(scores_t=True)),
        ("scale_wrong_dim", _attention_variant(scale=0)),
        ("scale_wrong_dim", _attention_variant(scale=1)),
        ("scale_wrong_dim", _attention_variant(scale=2)),
        ("softmax_normalized_over_all", _attention_variant(softmax=_softmax_over_all)),
        ("softmax_normalized_over_all", _attention_variant(softmax=lambda x, a: _softmax_over_all(x, a, False))),
    ),
    bwd_mistakes=attention_backward_variants() + _consistent_with_wrong_forward(),
    derive=(),                        # the wrong forwards' gradients are exact: _consistent_with_wrong_forward
    explain=explain_attention,
)


def _overflow_key(out, scores, v=None, axis=-1):
    """The overflow mistake a non-finite output shows, when one fits exactly: exp without the max
    ("no_max_subtraction") or minus the whole array's max ("softmax_global_max"). scores: the
    softmax input; v: attention's values (out = A v), None for softmax itself."""
    got = np.asarray(out, dtype=np.float64)
    for key, shift in (("no_max_subtraction", 0.0), ("softmax_global_max", scores.max())):
        with np.errstate(all="ignore"):
            e = np.exp(scores - shift)
            want = e / e.sum(axis=axis, keepdims=True)
            want = want if v is None else want @ v
        bad = ~np.isfinite(want)
        if want.shape == got.shape and bad.any() and np.array_equal(bad, ~np.isfinite(got)) and \
                np.allclose(got[~bad], want[~bad], rtol=1e-6, atol=0):
            return key
    return None


def _right_on_ordinary_input(ns, op, backward=False):
    """The learner's ``{op}_forward`` (and, backward=True, ``{op}_backward``) match the reference on
    the float64 checks' first input (then a large-input failure is about large inputs only)."""
    pair = SOFTMAX if op == "softmax" else ATTENTION
    args = pair.cases()[0]
    try:
        out, cache = _call_forward(ns, f"{op}_forward", args)
        want, ref_cache = getattr(REF, f"{op}_forward")(*_copy(args))
        if _mismatch("out", out, want):
            return False
        if not backward:
            return True
        dout = _rng(f"{op}-ordinary").standard_normal(want.shape)
        grads = pair.learner_grads(_call_backward(ns, f"{op}_backward", dout, cache))
        return all(_mismatch(n, g, r) is None for n, g, r in zip(pair.grads, grads, pair.ref_grads(
            getattr(REF, f"{op}_backward")(dout, ref_cache))))
    except Exception:
        return False


def _finite(a):
    return bool(np.all(np.isfinite(np.asarray(a, dtype=np.float64))))


def _large_case(ns, op, args, scores, v, what):
    """One huge-scores input for ``{op}_forward`` / ``{op}_backward``: compared with the reference;
    a non-finite forward is named only when it fits one overflow mistake exactly. Advice only where
    its premise holds: overflow advice for a non-finite result, and the function at fault named."""
    out, cache = _call_forward(ns, f"{op}_forward", args)
    want, ref_cache = getattr(REF, f"{op}_forward")(*_copy(args))
    problem = _mismatch("the output", out, want)
    fwd, bwd = f"{op}_forward", f"{op}_backward"
    if problem:
        where = f"{fwd} with {what}: {problem}."
        key = _overflow_key(out, scores, v, args[1] if op == "softmax" else -1)
        if key:
            _fail_with(where, key, at=fwd)
        if not _right_on_ordinary_input(ns, op):
            raise Fail(f"{where} It differs on ordinary inputs too: see the float64 checks first.\n{pointer(fwd)}")
        step = ("an exponential overflowed: find the first inf or NaN (print the largest exponent you pass to exp)."
                if not _finite(out) else "it is right on ordinary inputs, so precision is lost only when the scores "
                "are large: print the intermediate values of one row of this input.")
        raise Fail(f"{where}\nNext step: {step}\n{pointer(fwd)}")
    names = ("dx",) if op == "softmax" else ("dq", "dk", "dv")
    dout = _rng(f"{op}-large-dout").standard_normal(want.shape)
    grads = _grads_tuple(bwd, _call_backward(ns, bwd, dout, cache), names)
    refs = getattr(REF, bwd)(dout, ref_cache)
    for name, g, r in zip(names, grads, refs if isinstance(refs, tuple) else (refs,)):
        problem = _mismatch(name, g, r)
        if problem:
            where = f"{bwd} after {fwd} with {what}: {problem}."
            if not _right_on_ordinary_input(ns, op, backward=True):
                raise Fail(f"{where} It differs on ordinary inputs too: see the float64 checks first.\n{pointer(bwd)}")
            step = ("the backward overflowed: it can work from the probabilities your forward cached, without "
                    "exponentiating the scores again." if not _finite(g) else "it is right on ordinary inputs, "
                    "so precision is lost only when the scores are large: print its intermediate values here.")
            raise Fail(f"{where}\nNext step: {step}\n{pointer(bwd)}")


def _large_softmax_check(ns):
    rng = _rng("softmax-large")
    cases = [(rng.uniform(-1e4, 1e4, (3, 6)), -1), (1e3 + rng.standard_normal((2, 4, 5)) * 10, -1),
             (rng.uniform(-5e3, 5e3, (4, 3)), 0)]
    for args in cases:
        _large_case(ns, "softmax", args, args[0], None, f"scores up to {np.abs(args[0]).max():.0f}")


def _large_attention_check(ns):
    rng = _rng("attention-large")
    r = rng.standard_normal
    q, k, v = 60 * r((2, 2, 4, 8)), 60 * r((2, 2, 4, 8)), r((2, 2, 4, 8))
    scores = q @ k.swapaxes(-1, -2) / math.sqrt(8)
    _large_case(ns, "attention", (q, k, v), scores, v, f"scores q.k/sqrt(d) up to ~{np.abs(scores).max():.0f}")


def checks():
    """This topic's checks, in the order they run (the overflow checks grade the forwards)."""
    return SOFTMAX.checks() + [
        Check("softmax: large inputs (scores up to 1e4) stay finite and correct",
              ("softmax_forward", "softmax_backward"), 1, _large_softmax_check, "softmax_forward")] + \
        ATTENTION.checks() + [
        Check("attention: large scores stay finite and correct", ("attention_forward", "attention_backward"), 1,
              _large_attention_check, "attention_forward")]
