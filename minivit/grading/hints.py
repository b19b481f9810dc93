"""Hints for the exercises, on demand and in three levels: ``python -m minivit hint FUNCTION [--level N]``.

In a notebook: ``from minivit.grading.hints import hint; hint("layernorm_backward", 2)``.

* level 1, the approach: what depends on what, which rule applies;
* level 2, the intermediate results and their shapes (for LayerNorm: dxhat, then the paths
  through the mean and the variance);
* level 3, the formula, with NumPy code that computes it from the function's inputs (and the
  upstream gradient, for a backward). ``tests/test_hints.py`` runs that code on random float64
  inputs and compares it with minivit's own function, so a hint can never be wrong.

Use them one level at a time, after trying on your own: each level gives away more. The stubs in
``exercises/`` carry only the contract.

The texts live with their topic, in ``minivit/grading/topics/<topic>/hints.py``: a dict
``HINTS = {function: dict(approach=..., steps=..., formula=..., given=..., code=..., returns=...)}``.

* ``approach`` (level 1), ``steps`` (level 2) and ``formula`` (level 3) are the texts shown;
* ``code`` follows the formula: NumPy statements run in a namespace holding the names listed in
  ``given`` (the function's inputs and the upstream gradient, plus ``np``, ``math``, ``erf`` and
  minivit's ``F``); ``returns`` names the results, in the order the function returns them.

They sit inside ``minivit/grading/`` because level 3 is the answer: the grader's child process
cannot open them while the learner's code runs (``minivit/grading/trap.py``).
"""
from __future__ import annotations

import math
import textwrap

import numpy as np

from minivit.grading.topics import EXERCISE_FUNCTIONS, TOPICS

LEVELS = {1: "the approach", 2: "the intermediate results and their shapes", 3: "the formula"}
_FIELD = {1: "approach", 2: "steps", 3: "formula"}


def _entries():
    """{function: its hint texts} for every topic (each topic's ``hints.py``)."""
    out = {}
    for t in TOPICS:
        out.update(t.part("hints").HINTS)
    return out


def entry(function):
    """The hint texts of one exercise function (a dict: approach, steps, formula, given, code, returns)."""
    if function not in EXERCISE_FUNCTIONS:
        raise ValueError(f"no hints for {function!r}: not an exercise function; choose from "
                         f"{', '.join(EXERCISE_FUNCTIONS)}")
    return _entries()[function]


def _check_level(level):
    if isinstance(level, bool) or not isinstance(level, int) or level not in LEVELS:
        raise ValueError(f"the hint level must be 1, 2 or 3, got {level!r}")


def hint_text(function, level=1):
    """The text of hint ``level`` (1, 2 or 3) for ``function``."""
    _check_level(level)
    e = entry(function)
    topic = next(t for t in TOPICS if function in t.functions)
    lines = [f"{function}, hint {level} of 3: {LEVELS[level]}", ""]
    lines.append(textwrap.indent(e[_FIELD[level]], "  "))
    if level == 3:
        lines += ["", f"  In NumPy, given {e['given']}:", "", textwrap.indent(e["code"], "      "), "",
                  "  That is the answer: check it against your own derivation, then write it your way in",
                  f"  exercises/{topic.file} (with your cache) and grade: python -m minivit grade {topic.name}"]
    else:
        lines += ["", f"Tried it and still stuck? python -m minivit hint {function} --level {level + 1}"]
    return "\n".join(lines)


class HintText(str):
    """A hint's text; a notebook shows it once (printed by ``hint``), not a second time as its result."""

    def _repr_pretty_(self, printer, cycle):      # IPython / Jupyter: the text was printed already
        pass


def hint(function, level=1):
    """Print hint ``level`` (1: the approach, 2: the intermediate results, 3: the formula) for
    ``function`` (an exercise function's name), and return its text."""
    text = HintText(hint_text(function, level))
    print(text)
    return text


def namespace(**inputs):
    """What the level-3 code runs in: ``np``, ``math``, ``erf``, minivit's reference ``F``, and ``inputs``."""
    from minivit import ops
    from minivit.layers.activation import erf

    return dict(np=np, math=math, erf=erf, F=ops.reference(), **inputs)


def run_formula(function, **inputs):
    """Run the level-3 code of ``function`` on ``inputs`` (the names of its ``given``); returns its results
    as a tuple, in the order the function returns them."""
    e = entry(function)
    ns = namespace(**inputs)
    exec(compile(e["code"], f"<hint 3 of {function}>", "exec"), ns)
    return tuple(ns[name] for name in e["returns"])
