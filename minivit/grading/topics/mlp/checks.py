"""Grading topic `mlp`: GELU and the MLP block: its checks, wrong variants and
mistake messages. GELU's dx is read by its parts (the two product-rule terms and the inner
derivative, ``_gelu_terms``); the MLP's detectors name only MLP mistakes (a GELU bug is GELU's:
the engine re-runs a failed MLP check with the reference GELU and charges it there)."""

import math

import numpy as np

from minivit.layers.activation import erf
from minivit.grading.common import (MISTAKES, TOL64, Check, Fail, REF, _bias_mistakes, _call_backward, _call_forward, _copy,
    _grads_tuple, _mismatch, _rng, pointer)
from minivit.grading.topics.diagnosis import describe_terms
from minivit.grading.topics.explained import ExplainedPair

MISTAKES.update({
    "gelu_form_swapped": "Exact vs tanh GELU: you computed the other form than `approximate` asks for ('tanh': the "
                         "tanh approximation; 'none': the exact form with the normal CDF, see the docstring).",
    "gelu_sigmoid": "That is the sigmoid approximation x * sigmoid(1.702 x). minivit's GELU is the tanh form "
                    "(approximate='tanh') or the exact form (approximate='none'), see the docstring.",
    "gelu_square": "The tanh GELU's inner term uses x cubed (see the docstring's formula), not x squared.",
    "gelu_missing_half": "The factor 0.5 is missing (see the docstring's formula).",
    "gelu_product_rule": "The product rule is incomplete: GELU is x times a function of x, so its derivative has two "
                         "terms - one where x is differentiated, one where the function is.",
    "relu": "That is ReLU, not GELU.",
    "missing_activation": "The GELU between the two linear layers is missing (see the docstring's equation).",
    "activation_position": "GELU goes between the two linear layers (see the docstring's equation).",
    "missing_activation_backward": "The gradient must go back through GELU, between the two linear layers' backwards.",
    "gelu_inner_derivative": "The derivative of tanh's argument is off: differentiate the whole inner term, keeping "
                             "its constant factor and the power rule's factor on the cube (the result depends on x; it"
                             " is not a constant).",
    "gelu_sech_of_x": "tanh's derivative is taken at x: it belongs at tanh's own argument, the inner term the forward "
                      "computed (the same tanh value as in the forward).",
    "gelu_exact_pdf": "The normal density is off: check its normalizing constant and the / 2 in its exponent.",
    "mlp_approximate_not_passed": "mlp_forward does not pass `approximate` on to GELU: with approximate='none' the MLP"
                                  " must use the exact GELU.",
    "mlp_gelu_grad_at_output": "GELU's derivative is evaluated at its output: the backward needs it at GELU's input "
                               "(keep that input, or gelu_forward's cache, for the backward).",
})


# -- gelu and mlp -----------------------------------------------------------------------------------
_C = math.sqrt(2 / math.pi)


def _gelu(x, form):
    if form == "tanh":
        return 0.5 * x * (1 + np.tanh(_C * (x + 0.044715 * x ** 3)))
    if form == "none":
        return 0.5 * x * (1 + erf(x / math.sqrt(2)))
    if form == "sigmoid":
        return x / (1 + np.exp(-1.702 * x))
    if form == "square":
        return 0.5 * x * (1 + np.tanh(_C * (x + 0.044715 * x ** 2)))
    if form == "half":
        return x * (1 + np.tanh(_C * (x + 0.044715 * x ** 3)))
    if form == "relu":
        return np.maximum(x, 0)
    raise ValueError(form)


def _gelu_variant(form):
    def f(x, approximate="tanh"):
        if form == "swapped":
            return _gelu(x, "none" if approximate == "tanh" else "tanh")
        return _gelu(x, form)
    return f


def _gelu_terms(x, approx, dout):
    """GELU's dx by its parts ({name: array}, each of x's shape; dx is their sum).

    tanh form: "f" = dout * 0.5 (1 + t) and the two pieces of dout * x f'(x) = dout * 0.5 x (1 - t^2) c
    (1 + 3 k x^2): "xf'_1" (the 1) and "xf'_3kx2" (the 3 k x^2). Exact form: "f" = dout * Phi(x),
    "xf'" = dout * x phi(x)."""
    if approx == "tanh":
        t = np.tanh(_C * (x + 0.044715 * x ** 3))
        piece = dout * 0.5 * x * (1 - t * t) * _C
        return {"f": dout * 0.5 * (1 + t), "xf'_1": piece, "xf'_3kx2": piece * 3 * 0.044715 * x ** 2}
    return {"f": dout * 0.5 * (1 + erf(x / math.sqrt(2))), "xf'": dout * x * np.exp(-x * x / 2) / math.sqrt(2 * math.pi)}


def _gelu_dx_variants(x, approx, dout):
    """[(key, wrong dx)]: one product-rule term only, the inner derivative without its 3 (or its x^2
    or its c), sech^2 of x, a wrong normal density, the other form's derivative."""
    T = _gelu_terms(x, approx, dout)
    if approx == "tanh":
        sech_x = dout * 0.5 * x * (1 - np.tanh(x) ** 2) * _C * (1 + 3 * 0.044715 * x ** 2)
        out = [("gelu_product_rule", T["f"]), ("gelu_product_rule", T["xf'_1"] + T["xf'_3kx2"]),
               ("gelu_inner_derivative", T["f"] + T["xf'_1"] + T["xf'_3kx2"] / 3),
               ("gelu_inner_derivative", T["f"] + T["xf'_1"]),
               ("gelu_inner_derivative", T["f"] + (T["xf'_1"] + T["xf'_3kx2"]) / _C),
               ("gelu_sech_of_x", T["f"] + sech_x)]
    else:
        out = [("gelu_product_rule", T["f"]), ("gelu_product_rule", T["xf'"]),
               ("gelu_exact_pdf", T["f"] + T["xf'"] * math.sqrt(2 * math.pi)),
               ("gelu_exact_pdf", T["f"] + T["xf'"] * math.sqrt(2)),
               ("gelu_exact_pdf", T["f"] + T["xf'"] * np.exp(-x * x / 2))]
    other = "none" if approx == "tanh" else "tanh"
    out.append(("gelu_form_swapped", sum(_gelu_terms(x, other, dout).values())))
    return out


def _gelu_bwd_mistakes():
    """bwd_mistakes: each wrong dx of ``_gelu_dx_variants``, tried on the inputs of its own form."""
    out = []
    for form in ("tanh", "none"):
        for i, (key, _) in enumerate(_gelu_dx_variants(np.zeros(1), form, np.zeros(1))):
            def v(a, d, rc, rg, form=form, i=i):
                approx = a[1] if len(a) > 1 else "tanh"
                return {"dx": _gelu_dx_variants(a[0], approx, d)[i][1]} if approx == form else None
            out.append((key, v))
    return tuple(out)


def _explain_gelu(args, dout, ref_cache, mine, ref):
    """Which part of GELU's dx is missing or off (a least-squares fit onto ``_gelu_terms``)."""
    if _mismatch("dx", mine["dx"], ref["dx"]) is None:
        return ""
    T = _gelu_terms(args[0], args[1] if len(args) > 1 else "tanh", dout)
    names = {"f": "f(x) (the first product-rule term)", "xf'_1": "x f'(x) without the inner 3kx^2",
             "xf'_3kx2": "x f'(x)'s inner 3 * 0.044715 x^2 part", "xf'": "x phi(x) (the second product-rule term)"}
    return describe_terms("dx", mine["dx"], [(names[n], t) for n, t in T.items()], [1] * len(T), TOL64)


GELU = ExplainedPair(
    "gelu_forward", "gelu_backward", ("dx",),
    cases=lambda: (lambda r: [(2 * r((2, 5, 8)), "tanh"), (2 * r((3, 4)), "none"), (2 * r(6),), (3 * r((2, 3)), "none")])(
        _rng("gelu").standard_normal),
    fd_cases=lambda: (lambda r: [(r((2, 3, 4)), "tanh"), (r((2, 3, 4)), "none")])(_rng("gelu-fd").standard_normal),
    fwd_mistakes=(
        ("gelu_form_swapped", _gelu_variant("swapped")),
        ("gelu_sigmoid", _gelu_variant("sigmoid")),
        ("gelu_square", _gelu_variant("square")),
        ("gelu_missing_half", _gelu_variant("half")),
        ("relu", _gelu_variant("relu")),
    ),
    bwd_mistakes=_gelu_bwd_mistakes(),
    explain=_explain_gelu,
)


def _gelu_large_check(ns):
    x = np.array([[-100.0, -30.0, -10.0, -3.0, 0.0], [3.0, 10.0, 30.0, 100.0, -0.5]])
    for approx in ("tanh", "none"):
        args = (x, approx)
        out, cache = _call_forward(ns, "gelu_forward", args)
        want, ref_cache = REF.gelu_forward(*_copy(args))
        problem = _mismatch("the output", out, want)
        finite = np.all(np.isfinite(np.asarray(out, dtype=np.float64)))
        overflow = ("(See the checks above.)" if finite else
                    "Use np.tanh (a formula with exp overflows) and check large positive and negative x.")
        if problem:
            raise Fail(f"gelu_forward(x with |x| up to 100, approximate={approx!r}): {problem}. {overflow}"
                       f"\n{pointer('gelu_forward')}")
        dout = np.ones_like(x)
        dx = _grads_tuple("gelu_backward", _call_backward(ns, "gelu_backward", dout, cache), ("dx",))[0]
        problem = _mismatch("dx", dx, REF.gelu_backward(dout, ref_cache))
        if problem:
            overflow = ("Use np.tanh (a formula with exp overflows)." if not np.all(np.isfinite(dx.astype(np.float64)))
                        else "(See the checks above.)")
            raise Fail(f"gelu_backward(|x| up to 100, approximate={approx!r}): {problem}. {overflow}"
                       f"\n{pointer('gelu_backward')}")


def _mlp_variant(kind):
    """A wrong mlp_forward: "tanh_only" (approximate not passed on), "none" (no GELU), "after" (GELU last)."""
    def f(x, w1, b1, w2, b2, approximate="tanh"):
        h = x @ w1 + b1
        if kind == "tanh_only":
            return _gelu(h, "tanh") @ w2 + b2
        if kind == "none":
            return h @ w2 + b2
        if kind == "after":
            return _gelu(h @ w2 + b2, approximate)
        raise ValueError(kind)
    return f


def _mlp_chain(a, d, rc):
    """The reference's backward links: (da (B, T, M), dh (B, T, M)) for MLP args ``a`` and dout ``d``."""
    fc1, gelu_c, fc2 = rc
    da, _, _ = REF.linear_backward(d, fc2)
    return da, REF.gelu_backward(da, gelu_c)


def _first_layer(dh, rc):
    dx, dw1, db1 = REF.linear_backward(dh, rc[0])
    return {"dx": dx, "dw1": dw1, "db1": db1}


def _mlp_bwd_mistakes():
    """Wrong MLP backwards: b1/b2 not summed (or averaged), W1/W2's gradient transposed, no GELU on
    the way back, GELU's derivative taken at its output. (GELU's own mistakes are GELU's checks'.)"""
    out = []
    out += _bias_mistakes("db2")
    out += _bias_mistakes("db1", lambda a, d, rc: _mlp_chain(a, d, rc)[1])
    for name in ("dw1", "dw2"):
        out.append(("dw_transposed", lambda a, d, rc, rg, name=name: {name: rg[name].T}))
    out.append(("missing_activation_backward", lambda a, d, rc, rg: _first_layer(_mlp_chain(a, d, rc)[0], rc)))

    def at_output(a, d, rc, rg):
        x, w1, b1 = a[0], a[1], a[2]
        approx = a[5] if len(a) > 5 else "tanh"
        post, _ = REF.gelu_forward(x @ w1 + b1, approx)
        _, cache_at_output = REF.gelu_forward(post, approx)
        return _first_layer(REF.gelu_backward(_mlp_chain(a, d, rc)[0], cache_at_output), rc)
    out.append(("mlp_gelu_grad_at_output", at_output))
    return tuple(out)


def _explain_mlp(args, dout, ref_cache, mine, ref):
    """Which link of the chain breaks first: the second layer (dw2, db2), or the first (dx, dw1, db1)."""
    second = [n for n in ("dw2", "db2") if _mismatch(n, mine[n], ref[n]) is not None]
    first = [n for n in ("dx", "dw1", "db1") if _mismatch(n, mine[n], ref[n]) is not None]
    if second:
        return (f"Going back from the output, the first wrong link is the second linear layer "
                f"({', '.join(second)} wrong): its backward comes first.")
    if first:
        return (f"The second layer's gradients (dw2, db2) are right; {', '.join(first)} are not: check the links "
                "after it, back through GELU, then through the first linear layer.")
    return ""


def _mlp_cases():
    r = _rng("mlp").standard_normal

    def case(B, T, D, M, *approx):
        return (r((B, T, D)), r((D, M)) / math.sqrt(D), 0.5 * r(M), r((M, D)) / math.sqrt(M), 0.5 * r(D), *approx)
    return [case(2, 5, 8, 12, "tanh"), case(1, 3, 4, 16, "none"), case(2, 4, 6, 6)]


MLP = ExplainedPair(
    "mlp_forward", "mlp_backward", ("dx", "dw1", "db1", "dw2", "db2"),
    cases=_mlp_cases,
    fd_cases=lambda: (lambda r: [(r((2, 3, 4)), r((4, 6)) / 2, 0.5 * r(6), r((6, 4)) / 2, 0.5 * r(4), a)
                                 for a in ("tanh", "none")])(_rng("mlp-fd").standard_normal),
    wrt=lambda a: [a[0], a[1], a[2], a[3], a[4]],
    fwd_mistakes=(
        ("mlp_approximate_not_passed", _mlp_variant("tanh_only")),
        ("missing_activation", _mlp_variant("none")),
        ("activation_position", _mlp_variant("after")),
    ),
    bwd_mistakes=_mlp_bwd_mistakes(),
    derive=("dx",),
    explain=_explain_mlp,
)


def checks():
    """This topic's checks, in the order they run."""
    return GELU.checks() + [
        Check("gelu: |x| up to 100 stays finite and correct (both forms)", ("gelu_forward", "gelu_backward"), 1,
              _gelu_large_check)] + MLP.checks()
