"""The command line's argument types, parser and help formatter (used by ``minivit/cli/main.py``).

Every value typed on the command line is checked here, and every complaint argparse has goes
through ``Parser.error`` into the one error handler of ``minivit.cli.main.main`` (one ``error:``
line, exit code 2).
"""
from __future__ import annotations

import argparse
from pathlib import Path

from minivit.cli.errors import UsageError


def checked_number(s, convert, in_range, expected, out_of_range=None):
    """``convert(s)`` (int or float) if ``in_range`` holds for it; otherwise argparse's complaint
    'expected <expected>, got <s>' (out_of_range: another wording for a number outside the range)."""
    try:
        v = convert(s)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {expected}, got {s}") from None
    if not in_range(v):
        raise argparse.ArgumentTypeError(f"expected {out_of_range or expected}, got {s}")
    return v


def positive_int(s):
    return checked_number(s, int, lambda v: v >= 1, "a positive integer")


def step_count(s):
    """--steps, --epochs: a positive integer the learning-rate schedule can represent (at most 2**53,
    minivit.train.budget.MAX_STEPS)."""
    from minivit.train.budget import MAX_STEPS

    return checked_number(s, int, lambda v: 1 <= v <= MAX_STEPS, "a positive integer",
                          out_of_range=f"a positive integer of at most 2**53 = {MAX_STEPS:,} (the most steps the "
                                       "learning-rate schedule can tell apart)")


def steps_plan(s):
    """--steps: a step count N (as step_count), or a plan followed, 'H0,H1@g1,...' as a budgeted run
    prints it (minivit.train.replan.parse_steps) -> its horizons [[0, H0], [g1, H1], ...]."""
    if "," not in s:
        return step_count(s)
    from minivit.train.replan import parse_steps

    try:
        return parse_steps(s)[1]
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e).removeprefix("--steps: ")) from None


OUT_FOLDERS = ("train", "finetune", "eval", "inspect")     # the subcommands whose --out is a folder


def folder(s):
    """A folder option (--out, --data-dir): may not exist yet, but must not be a file."""
    if Path(s).exists() and not Path(s).is_dir():
        raise argparse.ArgumentTypeError(f"{s} is a file; expected a folder")
    return s


def data_source(s):
    """--data-dir: a folder (as folder), or a .npz data pack file (minivit/data/pack.py)."""
    return s if s.endswith(".npz") else folder(s)


def nonnegative_int(s):
    return checked_number(s, int, lambda v: v >= 0, "an integer >= 0")


def positive_float(s):
    return checked_number(s, float, lambda v: 0 < v < float("inf"),     # refuses nan and inf too
                          "a positive number", out_of_range="a positive finite number")


def fraction(s):
    """A number in [0, 1): --ema-decay, --token-drop."""
    return checked_number(s, float, lambda v: 0 <= v < 1, "a number in [0, 1)")


def resize_stages(s):
    """--resize '0:24,0.5:32' -> [[0.0, 24], [0.5, 32]]: from each step fraction on, that image size
    (minivit/train/resize_schedule.py checks the order and the sizes)."""
    try:
        stages = [[float(f), int(n)] for f, n in (part.split(":") for part in s.split(","))]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected START:SIZE pairs such as 0:24,0.5:32, got {s}") from None
    from minivit.train.resize_schedule import ResizeSchedule

    try:
        ResizeSchedule(stages)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None
    return stages


def duration(s):
    """--time-budget: '90s', '60m', '2h', '1h30m' -> seconds (minivit.train.budget.parse_duration)."""
    from minivit.train.budget import parse_duration

    try:
        return parse_duration(s)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


class Parser(argparse.ArgumentParser):
    """argparse, with its complaints raised (as UsageError) into the one handler in ``main``
    when ``parse_args(argv, raise_errors=True)`` (elsewhere argparse's usual: usage + exit 2)."""

    raise_errors = False                      # one command line is parsed at a time

    def parse_args(self, args=None, namespace=None, raise_errors=False):
        saved, Parser.raise_errors = Parser.raise_errors, raise_errors
        try:
            return super().parse_args(args, namespace)
        finally:
            Parser.raise_errors = saved

    def error(self, message):
        if not Parser.raise_errors:
            super().error(message)
        raise UsageError(f"{message} (see {self.prog} --help)")


class Defaults(argparse.ArgumentDefaultsHelpFormatter):
    """Show "(default: X)" once: not for options whose help already says it, nor for None."""

    def _get_help_string(self, action):
        if action.default in (None, False) or "(default" in (action.help or ""):
            return action.help
        return super()._get_help_string(action)
