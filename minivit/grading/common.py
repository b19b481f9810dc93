"""Shared pieces of the checks: tolerances, the MISTAKES registry, Fail/Check, comparing arrays,
calling the learner's functions. Each topic's checks (``topics/<topic>/checks.py``) add its own
mistakes to MISTAKES."""
from __future__ import annotations

import inspect
import zlib
from dataclasses import dataclass

import numpy as np

from minivit import gradcheck, ops
from minivit.grading.wire import Opaque

REF = ops.reference()          # minivit's own implementations, the answer key

TOL64 = 1e-6                   # float64: max |got - want| / max |want|
TOL32 = 1e-4                   # float32 results against the float64 reference
FD_TOL = 1e-6                  # relative error (gradcheck.rel_error) against finite differences
KEY_ZERO_TOL = 1e-8            # |gradient| of the key bias, which is exactly zero
TOPIC_TIMEOUT_S = 30.0         # wall-clock limit per topic (import included): `grade --timeout`


# key -> what the learner sees. Each topic file adds its own mistakes (MISTAKES.update);
# these are shared by several topics.
MISTAKES = {
    "bias_grad_not_summed": "A parameter's gradient is not summed over the batch and the tokens. Every position (every"
                            " token of every image) used the same parameter, so its gradient collects all their "
                            "contributions, and it has the parameter's own shape.",
    "grad_mean_not_sum": "A parameter's gradient is averaged over the batch/tokens instead of summed. The loss "
                         "already carries the 1/B; each use of a shared parameter adds its full contribution.",
    "no_max_subtraction": "exp() overflowed for large inputs (inf or NaN in the result). A softmax does not change "
                          "when the same number is subtracted from every score of a slice: choose it so that no "
                          "exponent is large and positive (and for a log-softmax, never take the log of a probability "
                          "that underflowed to 0).",
    "float64_promotion": "float32 inputs gave a float64 result: something promoted the dtype - typically a NumPy "
                         "float64 scalar (np.sqrt of a Python number is one; math.sqrt gives a plain float) or an "
                         "array created without a dtype (np.zeros(shape) is float64; pass dtype=x.dtype).",
    "input_modified": "An argument was modified in place (`x -= ...`, `x *= ...` or `x[...] = ...` on an argument): "
                      "the caller's array changed. In a model the same array is used elsewhere too (an upstream "
                      "gradient feeds several branches, an input feeds the residual), so this corrupts other results. "
                      "Compute into a new array instead (x = x - ...).",
    "state_outside_cache": "Your backward uses something that is not in its cache (a module-level or global "
                           "variable, an attribute set by the forward?): called after two forwards, as in a model "
                           "with several blocks, it used the other forward's values. Put everything the backward "
                           "needs into the cache the forward returns.",
    "grads_wrong_order": "The gradients are returned in the wrong order.",
    "broadcast_keepdims": "Shapes that do not line up. A sum/max/mean over an axis drops that axis unless you pass "
                          "keepdims=True (then it pairs the wrong numbers or fails); otherwise an operand needs a "
                          "reshape or a transpose - and `.T` on an array with more than two axes reverses ALL its "
                          "axes, not only the last two.",
}


class Fail(Exception):
    """A failed check; the message is the learner's feedback, ``mistake`` the detected mistake's key."""

    def __init__(self, message, mistake=None):
        super().__init__(message)
        self.mistake = mistake


@dataclass
class Check:
    name: str                 # shown to the learner
    functions: tuple          # the learner's functions it calls
    points: int
    run: object               # run(ns) -> None, raises Fail; ns[fname](*args) calls the learner's function
    function: str = ""        # the function it grades (`grade --only`); default: the last of `functions`
    needs: tuple = ()         # a consistency check: counts only when these functions pass their value checks (gate.py)

    def __post_init__(self):
        self.function = self.function or self.functions[-1]


# ------------------------------------------------------------------------------ helpers
def _rng(label):
    return np.random.default_rng(zlib.crc32(label.encode()))


def _copy(a):
    if isinstance(a, np.ndarray):
        return a.copy()
    if isinstance(a, dict):
        return {k: _copy(v) for k, v in a.items()}
    if isinstance(a, tuple):
        return tuple(_copy(v) for v in a)
    return a


def _cast(a, dtype):
    if isinstance(a, np.ndarray) and np.issubdtype(a.dtype, np.floating):
        return a.astype(dtype)
    if isinstance(a, dict):
        return {k: _cast(v, dtype) for k, v in a.items()}
    if isinstance(a, tuple):
        return tuple(_cast(v, dtype) for v in a)
    return a


def _same(a, b):
    if isinstance(a, np.ndarray):
        return isinstance(b, np.ndarray) and a.shape == b.shape and np.array_equal(a, b, equal_nan=True)
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    return True


def _kind(x):
    if isinstance(x, Opaque):
        n = x.type_name
        return f"{'an' if n[0] in 'aeiou' else 'a'} {n} object"
    if isinstance(x, np.ndarray):
        return f"an array of shape {tuple(x.shape)}"
    if isinstance(x, (tuple, list)):
        return f"a {type(x).__name__} of {len(x)} items"
    if x is None:
        return "None"
    n = type(x).__name__
    return f"{'an' if n[0] in 'aeiou' else 'a'} {n}"


def _as_array(name, x):
    if isinstance(x, np.ndarray):
        return x
    raise Fail(f"{name} should be a NumPy array, got {_kind(x)}")


def _mismatch(name, got, want, tol=TOL64):
    """None when ``got`` matches ``want`` (same shape, relative difference < tol), else a description."""
    got = _as_array(name, got)
    if got.shape != want.shape:
        return f"{name} has shape {tuple(got.shape)}, expected {tuple(want.shape)}"
    g, w = got.astype(np.float64), want.astype(np.float64)
    if not np.all(np.isfinite(g)):
        return f"{name} contains NaN or inf" + ("" if np.all(np.isfinite(w)) else " (so does the reference)")
    if w.size == 0:
        return None
    diff = np.abs(g - w)
    scale = max(float(np.abs(w).max()), 1e-30)
    if float(diff.max()) <= tol * scale:
        return None
    if not np.any(g):
        return f"{name} is all zeros"
    ix = np.unravel_index(int(np.argmax(diff)), diff.shape)
    ix_s = tuple(int(i) for i in ix)
    return (f"{name} differs from the reference: largest difference {diff.max():.3g} at index {ix_s} "
            f"(expected {w[ix]:.6g}, got {g[ix]:.6g})")


def _safe(variant, *args):
    """variant(*args) with NumPy warnings silenced; None when it raises (it does not apply here)."""
    try:
        with np.errstate(all="ignore"):
            return variant(*args)
    except Exception:
        return None


def pointer(fname):
    """The "stuck? hint" line for the function at fault (a check's feedback that carries one keeps it:
    report.with_hint adds the check's own function only when the feedback names none)."""
    from minivit.grading.report import HINT_LINE
    return HINT_LINE.format(function=fname)


def _fail_with(message, mistake, at=None):
    """Fail naming ``mistake``; at: the function at fault, when it is not the check's own."""
    raise Fail(f"{message}\n{MISTAKES[mistake]}" + (f"\n{pointer(at)}" if at else ""), mistake)


def _signature_names(fname):
    return list(inspect.signature(getattr(REF, fname)).parameters)


def _describe_args(fname, args):
    names = _signature_names(fname)
    parts = []
    for n, a in zip(names, args):
        if isinstance(a, np.ndarray):
            parts.append(f"{n} {tuple(a.shape)}")
        elif isinstance(a, dict):
            parts.append(f"{n} (D={a['ln1_gamma'].shape[0]}, D_mlp={a['b1'].shape[0]})" if "b1" in a else n)
        elif isinstance(a, (int, float, str)) and not isinstance(a, bool):
            parts.append(f"{n}={a!r}")
    return ", ".join(parts)


def _check_inputs_unchanged(fname, before, after):
    names = _signature_names(fname)
    for n, b, a in zip(names, before, after):
        if not _same(b, a):
            _fail_with(f"{fname} changed its input `{n}` in place.", "input_modified", at=fname)


def _call_backward(ns, fname, *args):
    """The learner's backward on copies of ``args`` (the upstream gradient, the cache handle, any
    other argument): an argument it changes in place (`dout *= ...`) fails, named with its name."""
    mine = _copy(args)
    res = ns[fname](*mine)
    _check_inputs_unchanged(fname, args, mine)
    return res


def _call_forward(ns, fname, args):
    """Call the learner's forward on copies of ``args``; check it returns (out, cache) and leaves inputs alone."""
    mine = _copy(args)
    res = ns[fname](*mine)
    if not (isinstance(res, (tuple, list)) and len(res) == 2):
        raise Fail(f"{fname} must return a pair (out, cache); it returned {_kind(res)}")
    _check_inputs_unchanged(fname, args, mine)
    return res


def _grads_tuple(fname, res, names):
    """The learner's backward result as a list of arrays in the order of ``names``."""
    n = len(names)
    if n == 1:
        if isinstance(res, (tuple, list)) and len(res) == 1:
            res = res[0]
        if isinstance(res, (tuple, list)):
            raise Fail(f"{fname} must return one array ({names[0]}); it returned {_kind(res)}")
        return [_as_array(names[0], res)]
    if not isinstance(res, (tuple, list)) or len(res) != n:
        raise Fail(f"{fname} must return {n} gradients ({', '.join(names)}); it returned {_kind(res)}")
    return [_as_array(nm, g) for nm, g in zip(names, res)]


def _fd(forward, args, dout, arrays, names):
    """Finite-difference gradients of sum(forward(*args) * dout) w.r.t. ``arrays`` (objects inside args)."""
    out = {}
    for a, nm in zip(arrays, names):
        out[nm] = gradcheck.numerical_gradient(lambda: forward(*args), a, dout)
    return out


def _softmax(x, axis=-1):
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def _bias_variants(name, dy, lead_axes):
    """Wrong gradients of a bias-like parameter broadcast over ``lead_axes`` of dy."""
    out = [("bias_grad_not_summed", {name: dy}),
           ("bias_grad_not_summed", {name: dy.sum(axis=0)}),
           ("grad_mean_not_sum", {name: dy.mean(axis=tuple(lead_axes))})]
    if len(lead_axes) > 1:
        out.append(("bias_grad_not_summed", {name: dy.sum(axis=lead_axes[-1])}))
    return out


def _bias_mistakes(name, dy_of=None, lead=None):
    """bwd_mistakes entries [(key, variant(args, dout, ref_cache, ref_grads))] for the wrong forms of
    a bias-like gradient (:func:`_bias_variants`), each computed only when tried. dy_of(args, dout,
    ref_cache): the gradient flowing into the parameter's output (default: dout itself); lead: the
    axes the parameter is broadcast over (default: all of dout's but the last)."""
    keys = ("bias_grad_not_summed", "bias_grad_not_summed", "grad_mean_not_sum", "bias_grad_not_summed")

    def form(k):
        def variant(args, dout, rc, rg):
            dy = dout if dy_of is None else dy_of(args, dout, rc)
            forms = _bias_variants(name, dy, lead if lead is not None else tuple(range(dout.ndim - 1)))
            return forms[k][1] if k < len(forms) else None       # the 4th needs two lead axes
        return variant
    return [(key, form(k)) for k, key in enumerate(keys)]


