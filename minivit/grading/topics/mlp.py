"""Grading topic `mlp`: GELU and the MLP block: its checks, wrong variants and
mistake messages."""

import math

import numpy as np

from minivit.layers.activation import _erf
from minivit.grading.common import (MISTAKES, Check, Fail, REF, _bias_variants, _call_forward, _copy, _grads_tuple,
    _mismatch, _rng)
from minivit.grading.pair import Pair

MISTAKES.update({
    "gelu_form_swapped": "Exact vs tanh GELU: you computed the other form than `approximate` asks for. "
                         "approximate='tanh': 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))); "
                         "approximate='none': x * Phi(x) = 0.5 x (1 + erf(x / sqrt(2))).",
    "gelu_sigmoid": "That is the sigmoid approximation x * sigmoid(1.702 x). minivit's GELU is the tanh form "
                    "(approximate='tanh') or the exact x * Phi(x) (approximate='none').",
    "gelu_square": "The tanh GELU's inner term is c (x + 0.044715 x^3), with x cubed.",
    "gelu_missing_half": "The factor 0.5 is missing: gelu(x) ~ 0.5 x (1 + tanh(...)).",
    "gelu_product_rule": "The product rule is incomplete: GELU is x times a function of x, so "
                         "d/dx [x * f(x)] = f(x) + x f'(x) (tanh form: f = 0.5 (1 + t); exact form: f = Phi, f' = phi).",
    "relu": "That is ReLU, not GELU.",
    "missing_activation": "The GELU between the two linear layers is missing: MLP(x) = GELU(x W1 + b1) W2 + b2.",
    "activation_position": "GELU goes between the two linear layers: MLP(x) = GELU(x W1 + b1) W2 + b2.",
    "missing_activation_backward": "The gradient must go back through GELU: dh = gelu_backward(da) before the first "
                                   "linear layer's backward.",
})


# -- gelu and mlp -----------------------------------------------------------------------------------
_C = math.sqrt(2 / math.pi)


def _gelu(x, form):
    if form == "tanh":
        return 0.5 * x * (1 + np.tanh(_C * (x + 0.044715 * x ** 3)))
    if form == "none":
        return 0.5 * x * (1 + _erf(x / math.sqrt(2)))
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


def _gelu_product_rule(a, d, rc, rg):
    x = a[0]
    approx = a[1] if len(a) > 1 else "tanh"
    if approx == "tanh":
        return {"dx": d * 0.5 * (1 + np.tanh(_C * (x + 0.044715 * x ** 3)))}
    return {"dx": d * 0.5 * (1 + _erf(x / math.sqrt(2)))}


GELU = Pair(
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
    bwd_mistakes=(("gelu_product_rule", _gelu_product_rule),),
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
            raise Fail(f"gelu_forward(x with |x| up to 100, approximate={approx!r}): {problem}. {overflow}")
        dout = np.ones_like(x)
        dx = _grads_tuple("gelu_backward", ns["gelu_backward"](dout.copy(), cache), ("dx",))[0]
        problem = _mismatch("dx", dx, REF.gelu_backward(dout, ref_cache))
        if problem:
            overflow = ("Use np.tanh (a formula with exp overflows)." if not np.all(np.isfinite(dx.astype(np.float64)))
                        else "(See the checks above.)")
            raise Fail(f"gelu_backward(|x| up to 100, approximate={approx!r}): {problem}. {overflow}")


def _mlp_variant(kind):
    def f(x, w1, b1, w2, b2, approximate="tanh"):
        h = x @ w1 + b1
        if kind == "swapped":
            return _gelu(h, "none" if approximate == "tanh" else "tanh") @ w2 + b2
        if kind == "none":
            return h @ w2 + b2
        if kind == "after":
            return _gelu(h @ w2 + b2, approximate)
        raise ValueError(kind)
    return f


def _mlp_bwd_mistakes():
    out = []

    def dh_of(rc, d):
        fc1, gelu_c, fc2 = rc
        da, _, _ = REF.linear_backward(d, fc2)
        return REF.gelu_backward(da, gelu_c), da

    for name in ("db2", "db1"):
        for k, key in enumerate(("bias_grad_not_summed", "bias_grad_not_summed", "grad_mean_not_sum",
                                 "bias_grad_not_summed")):
            def v(a, d, rc, rg, name=name, k=k):
                dy = d if name == "db2" else dh_of(rc, d)[0]
                return _bias_variants(name, dy, tuple(range(d.ndim - 1)))[k][1]
            out.append((key, v))

    def no_act(a, d, rc, rg):
        _, da = dh_of(rc, d)
        dx, dw1, db1 = REF.linear_backward(da, rc[0])
        return {"dx": dx, "dw1": dw1, "db1": db1}
    out.append(("missing_activation_backward", no_act))
    return tuple(out)


def _mlp_cases():
    r = _rng("mlp").standard_normal

    def case(B, T, D, M, *approx):
        return (r((B, T, D)), r((D, M)) / math.sqrt(D), 0.5 * r(M), r((M, D)) / math.sqrt(M), 0.5 * r(D), *approx)
    return [case(2, 5, 8, 12, "tanh"), case(1, 3, 4, 16, "none"), case(2, 4, 6, 6)]


MLP = Pair(
    "mlp_forward", "mlp_backward", ("dx", "dw1", "db1", "dw2", "db2"),
    cases=_mlp_cases,
    fd_cases=lambda: (lambda r: [(r((2, 3, 4)), r((4, 6)) / 2, 0.5 * r(6), r((6, 4)) / 2, 0.5 * r(4), a)
                                 for a in ("tanh", "none")])(_rng("mlp-fd").standard_normal),
    wrt=lambda a: [a[0], a[1], a[2], a[3], a[4]],
    fwd_mistakes=(
        ("gelu_form_swapped", _mlp_variant("swapped")),
        ("missing_activation", _mlp_variant("none")),
        ("activation_position", _mlp_variant("after")),
    ),
    bwd_mistakes=_mlp_bwd_mistakes(),
    derive=("dx",),
)


def checks():
    """This topic's checks, in the order they run."""
    return GELU.checks() + [
        Check("gelu: |x| up to 100 stays finite and correct (both forms)", ("gelu_forward", "gelu_backward"), 1,
              _gelu_large_check)] + MLP.checks()
