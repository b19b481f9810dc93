"""No points without the maths: a consistency check counts only when what it rests on is right.

A consistency check compares the learner's functions with each other, not with the reference:
the backward against finite differences of the learner's *own* forward, say. A forward that
returns zeros (and a backward that returns zeros) passes such a check without any of the maths, so
a check with ``Check.needs`` (the functions it rests on; :func:`needs`) scores only when every value check of
those functions (a check grading that function, itself with no ``needs``) passed. Otherwise it is
reported as failed, with 0 points and a message saying why; it counts once the forward is right.
"""
from __future__ import annotations

from minivit.grading.report import with_hint


def needs(check):
    """The functions ``check`` rests on: ``check.needs``; for a check that compares with finite
    differences and names none, the forwards among the functions it calls."""
    if check.needs:
        return tuple(check.needs)
    if "finite differences" in check.name:
        return tuple(f for f in check.functions if f != check.function and not f.endswith("_backward"))
    return ()


def gate_feedback(check, closed):
    """Why ``check`` does not count while the functions ``closed`` fail their value checks."""
    f = closed[0]
    return (f"not scored yet: this check compares {check.function} with your own {f}, and {f} does not "
            f"match the reference yet (see its checks); it counts once {f} does")


def apply_gates(checks, rows):
    """``rows`` (one report row per check, same order) with every gated check whose functions fail
    their value checks set to 0 points (see the module docstring)."""
    passed = {}
    for c, r in zip(checks, rows):
        if not needs(c):
            passed[c.function] = passed.get(c.function, True) and r["points"] == r["max"] and r["status"] == "ok"
    out = []
    for c, r in zip(checks, rows):
        closed = [f for f in needs(c) if not passed.get(f, True)]
        if closed and r["status"] == "ok":
            r = dict(r, points=0, status="fail", mistake=None, caused_by=None,
                     feedback=with_hint(gate_feedback(c, closed), "fail", closed[0]))
        out.append(r)
    return out
