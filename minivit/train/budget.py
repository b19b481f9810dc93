"""Training in a time budget: ``python -m minivit train --time-budget 60m`` (and ``--steps N``).

A learner asks "what do I get in the hour I have", not "what do 22 epochs give". A budgeted run
answers with a *plan*, made once at its start::

    process start -> data loading -> calibration -> plan -> S steps and E evaluations -> end
    |<------------------------------- at most the budget -------------------------------->|

1. **Calibration** (:func:`calibrate`): a few training steps of every *step kind* the schedule
   uses, given as ``[(kind, fraction of the steps), ...]`` (today one kind, ``"full"``; later
   e.g. a reduced resolution or token dropping, each with its own measured step time), then an
   evaluation of one batch and one dry commit (checkpoints, metrics.csv, curves.png). It runs on
   the real model, whose parameters and optimizer state are put back bit for bit afterwards, so
   calibrating changes no number of the run.
2. **The plan** (:func:`plan_for_budget`): the largest step count S with ::

       spent + S * sum_k fraction_k * step_s[k] + sum_e (images_e * eval_s_per_image + commit_s) + margin <= budget

   ``spent``: the time from process start to the plan (data loading and calibration included);
   ``e``: the evaluations a run of S steps makes (today one per epoch's end and one at the last
   step, all on the evaluation set; the caller may give any list, e.g. a small subset during
   training and the full test set at the end);
   ``margin``: :data:`MARGIN` of the budget, for the noise of a shared machine. ``commit_s``
   counts two checkpoint writes (a new best), so the plan errs on the short side. A machine that
   turns slower or faster after the calibration is followed by a re-plan at each evaluation
   (minivit/train/replan.py), which moves the horizon S.
3. **The run** stops at step S, and the learning-rate schedule's horizon is S: warmup + cosine
   reach ``min_lr`` exactly at step S (``optim.warmup_cosine(S, S, ...)``), so the run's last step
   is the cosine's last. The warmup is capped at half the plan (a tiny budget still decays).

The plan followed (every re-plan) is recorded in ``config.json`` and in every checkpoint;
``--resume`` continues it (no new calibration), and ``--steps`` replays it on another machine (the
horizons, ``--steps S0,S1@g1,...``, as the run prints them): the same schedule, the same numbers.

The clock is a parameter (``clock``, a callable returning seconds, ``time.monotonic`` by
default), so tests run whole plans on a simulated clock; ``sync`` (the backend's synchronize) is
called only at calibration boundaries, never inside a training step. Only Python numbers are
used here, so a plan works the same on NumPy and CuPy.

The run's length as typed (``--time-budget 60m``, ``--steps``) is parsed and checked in
minivit/train/duration.py, which also says where the clock starts (:func:`process_started`).
"""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from numbers import Integral

from minivit.train.duration import (MAX_BUDGET_S, MAX_STEPS, check_length, format_duration,  # noqa: F401
                                    parse_duration, process_age, process_started)

MARGIN = 0.03               # of the budget, kept free for the noise of a shared machine
FULL = [("full", 1.0)]      # the step kinds of today's schedule: every step at full resolution

@dataclass
class Calibration:
    """What :func:`calibrate` measured. step_s: {kind: seconds per step}; eval_s_per_image:
    evaluation seconds per image; commit_s: one evaluation's checkpoints and reports."""

    step_s: dict
    eval_s_per_image: float
    commit_s: float


def calibrate(run_step, kinds, run_eval, eval_images, commit, clock=time.monotonic, sync=lambda: None,
              seconds=1.0, warmup=2, min_steps=2) -> Calibration:
    """Measure every step kind, an evaluation and a commit (the caller restores the model after).

    run_step(kind, i): one training step of ``kind`` (i = 0, 1, ... within the kind).
    kinds: [(kind, fraction), ...]; each kind gets ``seconds / len(kinds)`` of measuring, after
        ``warmup`` unmeasured steps, in rounds of 1, 2, 4 ... steps, with ``sync`` called once per
        round (so an asynchronous device is timed by what it finished).
    run_eval(n): evaluate n images; measured once after one unmeasured call (of ``eval_images``).
    commit(): write an evaluation's checkpoints and reports to throwaway files; the second of two
        calls is measured (the first pays one-time costs, e.g. importing matplotlib).
    """
    step_s = {}
    for kind, _ in kinds:
        i = 0
        for _ in range(warmup):
            run_step(kind, i)
            i += 1
        sync()
        n, spent, batch = 0, 0.0, 1
        while n < min_steps or spent < seconds / len(kinds):
            t0 = clock()
            for _ in range(batch):
                run_step(kind, i)
                i += 1
            sync()
            spent += clock() - t0
            n += batch
            batch *= 2
        step_s[kind] = spent / n
    run_eval(eval_images)
    t0 = clock()
    run_eval(eval_images)
    eval_s = (clock() - t0) / eval_images
    commit()
    t0 = clock()
    commit()
    return Calibration(step_s=step_s, eval_s_per_image=eval_s, commit_s=clock() - t0)


@dataclass
class Plan:
    """A run's fixed step count and how it was chosen (JSON-able: :meth:`to_dict`).

    steps: S, the run's optimizer steps (the schedule's horizon; after a re-plan, the latest).
    source: 'time budget' or 'steps' (``--steps``: given, not measured). The rest is None for a
    given step count: budget_s, spent_s (process start -> plan), margin_s; step_s: {kind: s};
    eval_s: all evaluations with their commits (the first plan's estimate); evaluations: their
    number. horizons, replans: the re-plans (minivit/train/replan.py)."""

    steps: int
    steps_per_epoch: int
    source: str = "steps"
    kinds: list = field(default_factory=lambda: [list(k) for k in FULL])
    budget_s: float | None = None
    spent_s: float | None = None
    margin_s: float | None = None
    step_s: dict | None = None
    eval_s_per_image: float | None = None
    commit_s: float | None = None
    evaluations: int | None = None
    eval_s: float | None = None
    horizons: list | None = None     # the plan followed: [[0, S0], [g, H], ...] (minivit/train/replan.py)
    replans: list = field(default_factory=list)     # each re-plan's step, horizon and measurements

    def __post_init__(self):
        if self.horizons is None:         # one horizon (a plan recorded before re-planning: the same)
            self.horizons = [[0, self.steps]]

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "Plan":
        return cls(**d)

    @property
    def mean_step_s(self) -> float | None:
        """Seconds per step, averaged over the step kinds by their fractions."""
        if not self.step_s:
            return None
        return sum(frac * self.step_s[kind] for kind, frac in self.kinds)

    @property
    def train_s(self) -> float | None:
        return None if self.mean_step_s is None else self.steps * self.mean_step_s

    def describe(self) -> str:
        """'1.72 steps/s: 5,900 steps = 15.1 epochs, 57 min training + 3.0 min evaluation'."""
        what = f"{self.steps:,} steps = {self.steps / self.steps_per_epoch:.1f} epochs"
        if self.mean_step_s is None:
            return f"{what} (given by --steps)"
        return (f"{1 / self.mean_step_s:.2f} steps/s: {what}, {format_duration(self.train_s)} training + "
                f"{format_duration(self.eval_s)} evaluation")

    def eta(self, now_wall: float | None = None) -> str:
        """The whole run's time and end: 'the whole run: 58 min of the 60 min budget, ends about 14:05'."""
        if self.budget_s is None:
            return ""
        total = self.spent_s + self.train_s + self.eval_s
        end = (time.time() if now_wall is None else now_wall) + total - self.spent_s
        return (f"the whole run: {format_duration(total)} of the {format_duration(self.budget_s)} budget "
                f"({format_duration(self.spent_s)} already spent on loading and calibration), "
                f"ends about {time.strftime('%H:%M', time.localtime(end))}")


def evaluations_of(steps: int, steps_per_epoch: int) -> int:
    """How many evaluations a run of ``steps`` makes: one at each epoch's end and one at the last step."""
    return -(-steps // steps_per_epoch)


def eval_images_of(eval_images, steps_per_epoch):
    """(number of evaluations, their images) as functions of a step count, from ``eval_images``: an
    int (every evaluation the same: one per epoch's end and one at the last step), a pair (during,
    last): the last evaluation of ``last`` images, the others of ``during`` (e.g. a small subset
    during training, the whole test set at the end), or a function of the step count returning the
    list of each evaluation's images. The first two never build a list, so a long run costs nothing."""
    if callable(eval_images):
        return lambda s: len(eval_images(s)), lambda s: sum(eval_images(s))
    during, last = (eval_images, eval_images) if isinstance(eval_images, Integral) else eval_images

    def count(s):
        return evaluations_of(s, steps_per_epoch)

    return count, lambda s: 0 if s <= 0 else (count(s) - 1) * during + last


def most_steps(free, step_s, eval_cost, low=0, high=MAX_STEPS, train_s=None) -> int:
    """The largest n in [low, high] with train_s(n) + eval_cost(n) <= free (low when none fits);
    train_s(n): the seconds of n steps (default n * step_s; given, step_s is a step's least seconds)."""
    train_s = train_s or (lambda n: n * step_s)

    def fits(n):
        return train_s(n) + eval_cost(n) <= free

    lo, hi = low, min(high, max(low, int(min(free / step_s, MAX_STEPS)))) + 1  # cost(hi) need not fit
    if not fits(lo):
        return low
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if fits(mid) else (lo, mid)
    return min(lo, high)


def plan_for_budget(budget_s, spent_s, cal: Calibration, steps_per_epoch, eval_images, kinds=FULL,
                    margin=MARGIN) -> Plan:
    """The largest step count that fits (see the module docstring; at most MAX_STEPS); ValueError
    when none does.

    eval_images: the images of each evaluation (:func:`eval_images_of`).
    spent_s: seconds from process start to now (data loading and calibration)."""
    step = sum(frac * cal.step_s[kind] for kind, frac in kinds)
    count, images = eval_images_of(eval_images, steps_per_epoch)
    margin_s = margin * budget_s
    free = budget_s - spent_s - margin_s

    def eval_cost(s):
        return images(s) * cal.eval_s_per_image + count(s) * cal.commit_s

    lo = most_steps(free, step, eval_cost) if free > 0 else 0
    if lo < 1:
        raise ValueError(
            f"a time budget of {format_duration(budget_s)} leaves no time to train: "
            f"{format_duration(spent_s)} went on data loading and calibration, one step takes "
            f"{format_duration(step)}, the evaluations {format_duration(eval_cost(1))} (and {100 * margin:.0f}% "
            "is kept as a margin); give a longer --time-budget")
    return Plan(steps=lo, steps_per_epoch=steps_per_epoch, source="time budget", kinds=[list(k) for k in kinds],
                budget_s=budget_s, spent_s=spent_s, margin_s=margin_s, step_s=dict(cal.step_s),
                eval_s_per_image=cal.eval_s_per_image, commit_s=cal.commit_s, evaluations=count(lo),
                eval_s=eval_cost(lo))


def schedule_of(plan: Plan, warmup_steps: int, step: int = 0) -> tuple[int, int]:
    """(total steps, warmup steps) of a planned run at ``step``: the horizon in force there, the
    warmup at most half of the first horizon (re-plans never move it)."""
    in_force = [h for g, h in plan.horizons if g <= step][-1]
    return in_force, min(warmup_steps, plan.horizons[0][1] // 2)


def calibration_seconds(budget_s: float) -> float:
    """How long to measure the steps: 2% of the budget, between 1 and 30 seconds."""
    return min(30.0, max(1.0, 0.02 * budget_s))

