"""Naming a mistake only when sure: the one helper every detector goes through.

A detector computes known wrong variants of a result (the attention without 1/sqrt(d), the
LayerNorm backward without the path through the mean...) and hands them to :func:`sure_mistake`
with the learner's result and the reference's. A variant is *sure* when

* the learner's result matches it within the check's own tolerance (``tol``: 1e-6 in float64),
  on every array the variant gives, and
* the learner's result is at least ``FACTOR`` (100) times farther from the reference there.

The mistake is named when every sure variant carries the same key. When two different mistakes
fit, none is named: the check gives the "where" feedback (:func:`where_feedback`).
"""
from __future__ import annotations

import numpy as np

from minivit.grading.common import TOL64

FACTOR = 100.0


def _as_dict(x):
    return x if isinstance(x, dict) else {"out": x}


def _distance(got, want):
    """max |got - want| / max |want| (both finite, same shape), or None when they cannot be compared."""
    try:
        g = np.asarray(got, dtype=np.float64)
        w = np.asarray(want, dtype=np.float64)
    except (TypeError, ValueError):
        return None
    if g.shape != w.shape or not np.all(np.isfinite(g)) or not np.all(np.isfinite(w)):
        return None
    if g.size == 0:
        return 0.0
    return float(np.abs(g - w).max()) / max(float(np.abs(w).max()), 1e-30)


def is_sure(got, want, variant, tol=TOL64, factor=FACTOR):
    """True when ``got`` matches ``variant`` within ``tol`` and is ``factor`` times farther from ``want``.

    got, want: an array (or scalar) or {name: array}; variant: the same, possibly with only some of
    the names (the ones the mistake changes). A variant equal to the reference is never sure.
    """
    got, want, variant = _as_dict(got), _as_dict(want), _as_dict(variant)
    if not variant or any(n not in got or n not in want for n in variant):
        return False
    to_variant = to_reference = 0.0
    for n, v in variant.items():
        dv, dr = _distance(got[n], v), _distance(got[n], want[n])
        if dv is None or dv > tol:
            return False
        if dr is None:
            dr = float("inf")                 # the learner's result has the shape of the variant, not the reference
        to_variant, to_reference = max(to_variant, dv), max(to_reference, dr)
    return to_reference > tol and to_reference >= factor * to_variant


def sure_mistake(got, want, variants, tol=TOL64, factor=FACTOR):
    """The key of the mistake ``got`` surely shows, or None.

    variants: iterable of (key, value) with ``value`` as in :func:`is_sure`, or a callable
    returning it (called lazily; an exception or None skips the variant). Several variants may
    share a key (two ways to make one mistake); two different keys that fit give None.
    """
    keys = sure_mistakes(got, want, variants, tol, factor)
    return keys[0] if len(keys) == 1 else None


def sure_mistakes(got, want, variants, tol=TOL64, factor=FACTOR):
    """Every distinct key of a sure variant, in the order given (see :func:`sure_mistake`)."""
    keys = []
    for key, value in variants:
        if key in keys:
            continue
        if callable(value):
            try:
                with np.errstate(all="ignore"):
                    value = value()
            except Exception:
                continue
        if value is None:
            continue
        if is_sure(got, want, value, tol, factor):
            keys.append(key)
    return keys


def where_feedback(call, problem, next_step, ambiguous=()):
    """The feedback when no mistake is named: where (call with shapes), what (largest error), what next."""
    text = f"{call}: {problem}."
    if len(ambiguous) > 1:
        text += (f" This fits more than one known mistake ({', '.join(ambiguous)}), so none is named.")
    return f"{text}\nNext step: {next_step}"


def next_step_forward(fname):
    return (f"run {fname} on the smallest input above and compare each intermediate value with the formula in its "
            f"docstring.")


def next_step_backward(fname, grad):
    return (f"check {grad} on its own: compare it with finite differences of your forward "
            f"(minivit.gradcheck.check_pair, see exercises/README.md), then derive it again term by term.")
