"""Advice about an exception names the function it came from.

The engine ends a failed check's feedback with the hint command for the check's own function
(``report.with_hint``), unless the feedback already names one. A check that runs a forward and its
backward (the backward's checks, float32, the edge cases) can fail with an exception raised in
either; :func:`pointing` makes such an exception's description end with the hint command for the
function that raised it (``learner_who``), and say what a shape error on a line with ``.T`` most
likely is (``.T`` reverses every axis of an array with more than two).
"""
from __future__ import annotations

import re

from minivit.grading.common import Fail, pointer

_T_LINE = re.compile(r"`[^`]*\.T\b[^`]*`\s*\)?\s*$")
_SHAPE_ERROR = ("could not be broadcast", "mismatch in its core dimension", "shapes", "not aligned")
BATCHED = ("attention_forward", "attention_backward", "mhsa_forward", "mhsa_backward")   # 4-D operands
T_NOTE = ("This line uses `.T`: on an array with more than two axes `.T` reverses ALL of them ((B, h, T, d) "
          "becomes (d, T, h, B)), not only the last two; swap just the last two axes of a batched array "
          "(np.swapaxes / .swapaxes(-1, -2)).")


def _wrong_forward(ns, check, who):
    """The forward at fault for an exception raised in ``who``, or None: the check's own forward
    when it fails its float64 check (a backward then gets a cache it cannot use), else ``who``'s
    own forward when ``who`` is a backward and that forward fails."""
    from minivit.grading.pair import PAIRS
    names = [f for f in check.functions if f in PAIRS] + \
        ([who.replace("_backward", "_forward")] if who and who.endswith("_backward") else [])
    for fwd in dict.fromkeys(names):
        if fwd != who and fwd in PAIRS:
            try:
                if not PAIRS[fwd].forward_right(ns):
                    return fwd
            except Exception:
                continue
    return None


def describe(description, error, who, functions, blame=None):
    """The learner's exception description, with the `.T` note where it applies and the hint command
    for the function at fault: ``blame`` (a forward that fails its own check) or else ``who`` when
    that is one of the topic's exercise functions."""
    text = description
    if who in BATCHED and isinstance(error, ValueError) and any(s in str(error) for s in _SHAPE_ERROR) and \
            _T_LINE.search(description.splitlines()[0] if description else ""):
        text += "\n" + T_NOTE
    if blame:
        text += (f"\nNext step: your {blame} fails its own check, so what it returned (its output, its cache) "
                 f"is not what the code after it expects: fix {blame} first.\n" + pointer(blame))
    elif who in functions:
        text += "\n" + pointer(who)
    return text


def pointing(check, functions):
    """``check`` with its run wrapped (see the module docstring); returns the check."""
    run = check.run
    if getattr(run, "_pointing", False):
        return check

    def wrapped(ns):
        try:
            run(ns)
        except Fail:
            raise
        except Exception as e:
            desc = getattr(e, "learner_description", None)
            if desc is not None and not isinstance(e, NotImplementedError):
                who = getattr(e, "learner_who", None)
                e.learner_description = describe(desc, e, who, functions, _wrong_forward(ns, check, who))
            raise
    wrapped._pointing = True
    check.run = wrapped
    return check
