"""A budget that holds: a budgeted run re-plans its step count at each evaluation (issue #26).

The first plan (minivit/train/budget.py) rests on a calibration of a few seconds; a machine that turns
slower or faster afterwards (another job starts or ends) would end the run late or early by as
much. So at each evaluation before the last, after the evaluation and before its checkpoints, the
run fixes its horizon H again (:func:`replan`)::

    remaining = budget - used - commit                 used: the budget's seconds spent so far (every
                                                       process of the run); commit: this evaluation's
                                                       checkpoints and reports, as the last one took
    H = g + the largest n (g: the steps done) with
        n * step_s + evals(n) <= remaining - MARGIN * remaining

``step_s``: the seconds per step measured over the steps since the previous evaluation (the recent
window: the machine as it is now, not at the calibration). With step kinds of different costs
(progressive resizing: a 24 px step is cheaper than a 32 px one) the window's time is divided by
what the calibration predicts for its steps, and that speed scales the calibrated cost of the n steps
left, each at the size it will have under the new horizon. ``evals(n)``: the evaluations of the n
steps left (one per epoch's end and one at the last step, the last one on the whole test set with
``final_test``), each at the seconds per image of the evaluation just made, plus the last commit's
measured time (checkpoints, metrics.csv, curves.png). The margin is
a fraction of what *remains*, so it shrinks as the end nears: a steady machine uses more than 97%
of its budget. H never goes below the steps done (with ``final_test`` at least one more step, so
that the last evaluation is on the whole test set): a run that is already late ends at once, late
by at most that one step and evaluation. Nothing bounds how far one re-plan moves H: the window is a
whole epoch, so one re-plan follows the machine's speed as it is.

What a re-plan changes: where the run ends, and so how fast the learning-rate schedule is walked
from here on. The schedule stays the first plan's, ``warmup_cosine(v, H_0, ...)``; a re-plan at step
g to horizon H stretches (or squeezes) what is left of it, positions v(g)..H_0, evenly over the steps
g..H (:func:`schedule_position`)::

    v(i) = i                                                  before the first re-plan
    v(i) = v(g) + (i - g) * (H_0 - v(g)) / (H - g)            from a re-plan at g to H on

so the learning rate never jumps at a re-plan (only its slope changes) and still reaches ``min_lr``
exactly at the run's last step. A re-plan inside the warmup stretches the warmup's rest too (the
first evaluation, where re-plans begin, is usually at or after its end). Until 2026-12-07 step i
took ``warmup_cosine(i, H_i, ...)``, H_i the horizon in force, so the learning rate jumped at each
re-plan (down when the horizon shrank, back up when it grew); a plan followed recorded then and
resumed or replayed now takes the stretched schedule. Either way the learning rate of later steps
depends on every re-plan. That is
why the plan *followed* is recorded: ``Plan.horizons``, ``[[0, H_0], [g_1, H_1], ...]`` (from step g_k on,
the horizon is H_k), with each re-plan's measurements in ``Plan.replans``, in ``config.json`` and in
every checkpoint. ``--resume`` continues it (the recorded horizons, then re-plans from the budget's
seconds the checkpoint records as used), and ``--steps H_0,H_1@g_1,...`` (:func:`parse_steps`, printed
at the end of a run) replays it bit for bit on any machine: the same horizons at the same steps.
"""
from __future__ import annotations

from minivit.train.budget import MARGIN, MAX_STEPS, eval_images_of, most_steps


def replan(budget_s, used_s, step, step_s, steps_per_epoch, eval_images, eval_s_per_image, commit_s,
           at_least=0, margin=MARGIN, train_s=None) -> int:
    """The new horizon at an evaluation after ``step`` steps (see the module docstring).

    used_s: the budget's seconds used up to now, this evaluation's commit included; step_s: the
    measured seconds per step; train_s: optional, the seconds of the next n steps as a function of n
    (step kinds of different costs: then step_s is the least a step takes); eval_images: each
    remaining evaluation's images (int or (during, last), :func:`minivit.train.budget.eval_images_of`);
    eval_s_per_image, commit_s: the measured costs of an evaluation; at_least: the fewest steps
    still to run (1 with a final evaluation due)."""
    remaining, step_s = budget_s - used_s, max(step_s, 1e-9)
    count, images = eval_images_of(eval_images, steps_per_epoch)

    def eval_cost(n):
        return images(n) * eval_s_per_image + count(n) * commit_s

    free = remaining - margin * max(0.0, remaining)
    n = most_steps(free, step_s, eval_cost, low=at_least, high=MAX_STEPS - step, train_s=train_s) if free > 0 \
        else at_least
    return step + n


def parse_steps(text: str):
    """``--steps``: 'N' -> (N, None); 'H0,H1@g1,H2@g2' (a plan followed, as a run prints it) -> (the
    last horizon, [[0, H0], [g1, H1], [g2, H2]]). ValueError naming what was expected otherwise."""
    parts = [p.strip() for p in str(text).split(",")]
    try:
        horizons = [[0, int(parts[0])]] + [[int(g), int(h)] for h, g in (p.split("@") for p in parts[1:])]
    except ValueError:
        raise ValueError(f"expected a step count N, or a plan followed such as 1500,1480@390,1460@780 "
                         f"(horizon@step, as a budgeted run prints it), got {text}") from None
    check_horizons(horizons)
    return horizons[-1][1], (horizons if len(horizons) > 1 else None)


def check_horizons(horizons, steps_per_epoch=None) -> None:
    """ValueError unless ``horizons`` can be a plan followed: every horizon from 1 to MAX_STEPS, each
    re-plan at a later step than the one before, before the horizon in force ended, to a horizon not
    below its step, and (steps_per_epoch given) at an epoch's end, where evaluations are."""
    for i, (g, h) in enumerate(horizons):
        if not 1 <= h <= MAX_STEPS:
            raise ValueError(f"--steps: expected horizons from 1 to 2**53 = {MAX_STEPS:,}, got {h}")
        if i == 0:
            continue
        prev_g, prev_h = horizons[i - 1]
        if not prev_g < g < prev_h or h < g:
            raise ValueError(f"--steps: a re-plan {h}@{g} must come after step {prev_g} and before the horizon "
                             f"{prev_h} in force, and may not go below its step {g}")
        if steps_per_epoch and g % steps_per_epoch:
            raise ValueError(f"--steps: a re-plan at step {g} is not at an epoch's end ({steps_per_epoch} steps "
                             "per epoch): the plan is another run's (another batch size or training set)")


def horizon_at(horizons, step: int) -> int:
    """The horizon in force at ``step``: the last [g, H] with g <= step."""
    return [h for g, h in horizons if g <= step][-1]


def schedule_position(horizons, step: int):
    """Where step ``step`` is on the first plan's learning-rate schedule (positions 0..H_0; see the
    module docstring): ``step`` itself until the first re-plan (an int: a run that never re-plans is
    computed exactly as before), then a float, the rest of the schedule spread evenly over the
    steps up to the horizon in force; H_0 once that horizon is reached."""
    first = horizons[0][1]
    g, v, h = 0, 0, first               # where the piece in force starts (step, position) and its horizon
    for g_next, h_next in horizons[1:]:
        if g_next > step:
            break
        v = v + (g_next - g) * (first - v) / (h - g)     # the position reached at the re-plan
        g, h = g_next, h_next
    if g == 0:
        return step
    return first if step >= h else v + (step - g) * (first - v) / (h - g)


def steps_option(horizons) -> str:
    """What ``--steps`` replays a plan followed with: '1500' or '1500,1480@390,1460@780'."""
    return ",".join([str(horizons[0][1])] + [f"{h}@{g}" for g, h in horizons[1:]])
