"""Diagnosing a result by its parts (used by the loss, block and optim topics; naming a mistake
only when sure is ``minivit.grading.detect.sure_mistake``).

:func:`fit_terms` / :func:`describe_terms` write the learner's result as a least-squares combination
of the reference's separate terms (a gradient's paths, say) and say which term is missing, has the
wrong sign or the wrong scale.
"""
from __future__ import annotations

import numpy as np

def fit_terms(got, terms):
    """Least-squares coefficients c with got ~ sum_i c_i * terms[i].

    got: array (any shape); terms: list of arrays of got's shape.
    returns: (coefficients (n,), relative residual |got - fit| / |got|).
    """
    a = np.stack([np.asarray(t, dtype=np.float64).ravel() for t in terms], axis=1)      # (N, n)
    b = np.asarray(got, dtype=np.float64).ravel()                                          # (N,)
    c, *_ = np.linalg.lstsq(a, b, rcond=None)
    resid = float(np.linalg.norm(a @ c - b)) / max(float(np.linalg.norm(b)), 1e-30)
    return c, resid


def describe_terms(what, got, terms, expected, tol=1e-6):
    """One sentence saying which of a result's terms are missing or off in sign or scale, or "".

    what: the result's name ("dx"); got: the learner's array; terms: [(name, array)] the reference's
    separate terms; expected: their coefficients in the correct result (usually all 1). Empty when
    the learner's result is not (to ``tol``) a combination of the terms, or when all coefficients
    are right.
    """
    keep = [i for i, (_, t) in enumerate(terms) if np.any(t)]         # an all-zero term has no coefficient
    terms, expected = [terms[i] for i in keep], [expected[i] for i in keep]
    if not terms or not np.all(np.isfinite(np.asarray(got, dtype=np.float64))):
        return ""
    try:
        c, resid = fit_terms(got, [t for _, t in terms])
    except (ValueError, np.linalg.LinAlgError):
        return ""
    if resid > tol:
        return ""
    notes = []
    for (name, _), ci, ei in zip(terms, c, expected):
        if abs(ci - ei) <= 1e-4 * max(abs(ei), 1.0):
            continue
        if abs(ci) <= 1e-4:
            notes.append(f"the term {name} is missing")
        elif abs(ci + ei) <= 1e-4 * abs(ei):
            notes.append(f"the term {name} has the wrong sign")
        else:
            notes.append(f"the term {name} is scaled by {ci / ei:.4g}")
    if not notes:
        return ""
    return f"Your {what} is exactly a combination of the reference's terms, but " + "; ".join(notes) + "."
