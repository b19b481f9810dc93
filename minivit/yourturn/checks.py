"""Inline checks for the chapter notebooks: ``your_turn`` grades, ``check`` compares one step.

In a notebook's "Your turn" cell, ``your_turn("layernorm_backward")`` grades the learner's function
from the exercises folder (``$MINIVIT_EXERCISES``, else ``exercises/``) with minivit's grader and
prints its points and the mistakes the grader names. It never raises: untouched stubs give
"0/5 points - not yet", and the chapter runs on.

Before that, scaffold cells compute the intermediate steps by hand for a small fixed input::

    x, gamma, beta, dy = inputs("layernorm")    # the same arrays every time (seeded)
    xhat = ...                                  # the learner's step
    check("xhat", xhat)                         # right / wrong by how much / not yet (None)

``check`` compares with the reference value of that step, computed here from the same input
(CS231n's ``rel_error`` idea: a relative error near 1e-12 is right, near 1 a slip). It prints, and
returns True only when right. The steps and their inputs are each topic's
``minivit/grading/topics/<topic>/steps.py``, gathered in ``minivit/yourturn/steps.py``.
"""
from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from minivit.gradcheck import rel_error   # max |got - want| / max(|got| + |want|, 1e-8), the largest entry
from minivit.yourturn.steps import INPUTS, STEPS

RIGHT_TOL = 1e-7          # relative error below which a step counts as right (float64 inputs)
_GRADE_CACHE = {}         # (topic, folder, file digest) -> the topic's report: regraded when the file changes


def inputs(topic):
    """The fixed small input of a scaffold (fresh copies, float64): a tuple in the order the notebook names them."""
    if topic not in INPUTS:
        raise KeyError(f"no scaffold inputs {topic!r}; known: {', '.join(sorted(INPUTS))}")
    return tuple(np.array(a, copy=True) if isinstance(a, np.ndarray) else a for a in INPUTS[topic]())


def check(name, value):
    """Say whether ``value`` is the right result of scaffold step ``name``: right, wrong (shape or by
    how much), or "not yet" for None. Prints one line; returns True only when right."""
    if name not in STEPS:
        print(f"{name}: unknown step (known: {', '.join(sorted(STEPS))})")
        return False
    if value is None:
        print(f"{name}: not yet - replace None with your computation")
        return False
    try:
        want = np.asarray(STEPS[name](), dtype=np.float64)
        got = np.asarray(value, dtype=np.float64)
    except Exception as e:     # a list of arrays of different shapes, a string...
        print(f"{name}: wrong - not an array of numbers ({type(e).__name__}: {e})")
        return False
    if got.shape != want.shape:
        print(f"{name}: wrong shape - got {got.shape}, expected {want.shape}")
        return False
    if not np.all(np.isfinite(got)):
        print(f"{name}: wrong - {int(np.sum(~np.isfinite(got)))} entries are not finite (nan or inf)")
        return False
    err = rel_error(got, want)
    if err < RIGHT_TOL:
        print(f"{name}: right (relative error {err:.1e})")
        return True
    where = np.unravel_index(int(np.argmax(np.abs(got - want))), want.shape) if want.ndim else ()
    at = f" at index {tuple(int(i) for i in where)}" if want.ndim else ""
    c = _proportional(got, want)
    hint = f"; it is {c:.4g} x the right value (a constant factor or a sign?)" if c is not None else ""
    print(f"{name}: wrong - relative error {err:.2g}, largest difference {np.max(np.abs(got - want)):.3g}{at}{hint}")
    return False


def _proportional(got, want):
    """c when got = c * want for a constant c other than 1 (a missing scale, a sign), else None."""
    w = want.ravel()
    if not np.any(w):
        return None
    c = float(np.dot(got.ravel(), w) / np.dot(w, w))
    return c if abs(c - 1) > 1e-6 and abs(c) > 1e-12 and rel_error(got, c * want) < RIGHT_TOL else None


def _folder():
    from minivit.grading import default_path

    return Path(default_path())


def _topic_report(topic, folder):
    from minivit.grading import TOPIC_BY_NAME, grade

    file = folder / TOPIC_BY_NAME[topic].file
    digest = hashlib.sha256(file.read_bytes()).hexdigest() if file.is_file() else "missing"
    key = (topic, str(folder.resolve()), digest)
    if key not in _GRADE_CACHE:
        _GRADE_CACHE[key] = grade([topic], path=folder)["topics"][topic]
    return _GRADE_CACHE[key]


def your_turn(*functions):
    """Grade the learner's ``functions`` (names of exercise functions) and print, for each, its points,
    the checks that failed with the mistake the grader names, or "not yet". Never raises."""
    try:
        from minivit.grading import TOPICS

        folder = _folder()
        for fn in functions:
            topic = next((t.name for t in TOPICS if fn in t.functions), None)
            if topic is None:
                print(f"{fn}: not an exercise function (see minivit.grading.TOPICS)")
                continue
            _print_function(fn, _topic_report(topic, folder), folder)
    except Exception as e:        # the chapter runs on whatever happens here
        print(f"your_turn could not grade {', '.join(functions)}: {type(e).__name__}: {e}")


def _print_function(fn, t, folder):
    where = f"{folder / t['file']}"
    if t.get("error"):
        print(f"{fn}: 0 points - {t['file']} could not be graded: {t['error'].splitlines()[0]}")
        return
    checks = [c for c in t["checks"] if c["function"] == fn]
    points, top = sum(c["points"] for c in checks), sum(c["max"] for c in checks)
    if checks and all(c["status"] == "todo" for c in checks):
        print(f"{fn}: {points}/{top} points - not yet (still raises NotImplementedError in {where})")
        return
    if checks and all(c["status"] == "ok" for c in checks):
        print(f"{fn}: {points}/{top} points - all {len(checks)} checks pass")
        return
    print(f"{fn}: {points}/{top} points")
    for c in checks:
        if c["status"] == "ok":
            print(f"  ok    {c['name']}  [{c['points']}/{c['max']}]")
            continue
        label = {"fail": "FAIL", "todo": "todo", "error": "ERR ", "timeout": "TIME"}.get(c["status"], c["status"])
        print(f"  {label}  {c['name']}  [{c['points']}/{c['max']}]")
        if c.get("mistake"):
            print(f"        mistake: {c['mistake']}")
        for line in (c.get("feedback") or "").splitlines():
            print(f"        {line}")
