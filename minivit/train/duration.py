"""A run's length on the command line, and the clock it is measured from.

* ``--time-budget``: :func:`parse_duration` ('90s', '60m', '1h30m' -> seconds), at most a year;
* ``--steps`` / ``--epochs``: :func:`check_length`, at most :data:`MAX_STEPS` = 2**53 steps, the most
  the learning-rate schedule can tell apart;
* :func:`format_duration` for what a run prints;
* :func:`process_started`: where a budget's clock starts (minivit/train/budget.py plans within it).

Process start (:func:`process_started`): ``time.monotonic()`` minus the process's age, read from
``/proc/self/stat`` (Linux, 10 ms resolution), so the interpreter's start-up and the imports count
too; where ``/proc`` is missing, the time this module was first imported (``python -m minivit``
imports it first thing, through minivit/train/__init__.py) stands in for it.
"""
from __future__ import annotations

import math
import os
import re
import time
from numbers import Integral, Real

_IMPORTED_AT = time.monotonic()
# The longest run the schedule can represent: the cosine's progress (step - warmup) / (steps - warmup)
# is a float64, which tells every step from the next only up to 2**53 steps. A longer --steps (or
# epochs) is refused; a plan never exceeds it.
MAX_STEPS = 2 ** 53
MAX_BUDGET_S = 365 * 24 * 3600.0     # a year: the longest --time-budget (its plan stays under MAX_STEPS)

_DURATION = re.compile(r"(?:(\d+(?:\.\d+)?)h)?(?:(\d+(?:\.\d+)?)m)?(?:(\d+(?:\.\d+)?)s)?")


def parse_duration(text: str) -> float:
    """'90s', '60m', '2h', '1.5h', '1h30m' -> seconds (float); anything else raises ValueError."""
    m = _DURATION.fullmatch(text.strip().lower())
    if not text.strip() or m is None or not any(m.groups()):
        raise ValueError(f"expected a duration like 90s, 60m, 2h or 1h30m, got {text!r}")
    h, mins, s = (float(g) if g else 0.0 for g in m.groups())
    seconds = 3600 * h + 60 * mins + s
    if not 0 < seconds < math.inf:
        raise ValueError(f"expected a positive duration, got {text!r}")
    if seconds > MAX_BUDGET_S:
        raise ValueError(f"expected a duration of at most {MAX_BUDGET_S / 3600:.0f}h (a year), got {text!r}")
    return seconds


def check_length(steps=None, budget_s=None, what="--steps"):
    """ValueError unless a run's step count is a positive integer of at most MAX_STEPS and its time
    budget a positive number of seconds of at most MAX_BUDGET_S (None: not given)."""
    if steps is not None and not (isinstance(steps, Integral) and 0 < steps <= MAX_STEPS):
        raise ValueError(f"{what}: expected a step count from 1 to 2**53 = {MAX_STEPS:,} (the most the learning-rate "
                         f"schedule can tell apart), got {steps}")
    if budget_s is not None and not (isinstance(budget_s, Real) and 0 < budget_s <= MAX_BUDGET_S):
        raise ValueError(f"the time budget must be a positive number of seconds of at most {MAX_BUDGET_S:.0f} "
                         f"(a year), got {budget_s}")


def format_duration(seconds: float) -> str:
    """A readable duration: '14.2 s', '5.5 min', '57 min', '1.9 h'."""
    if seconds < 120:
        return f"{seconds:.1f} s"
    if seconds < 600:
        return f"{seconds / 60:.1f} min"
    if seconds < 3 * 3600:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def process_age() -> float | None:
    """Seconds since this process started (Linux: /proc/self/stat), or None where unknown."""
    try:
        with open("/proc/self/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()     # after "pid (name)": field 3 onwards
        started = int(fields[19]) / os.sysconf("SC_CLK_TCK")  # field 22: start time, ticks after boot
        return max(0.0, time.clock_gettime(time.CLOCK_BOOTTIME) - started)
    except (OSError, ValueError, IndexError, AttributeError):
        return None


def process_started() -> float:
    """The process's start on the ``time.monotonic`` clock (see the module docstring)."""
    age = process_age()
    return _IMPORTED_AT if age is None else min(_IMPORTED_AT, time.monotonic() - age)
