"""How long a run is: :class:`RunPlanner`, the object a :class:`minivit.train.trainer.Trainer` holds
as ``trainer.planner`` (the plan itself, its calibration and re-plans: minivit/train/budget.py,
minivit/train/replan.py).

* epochs (``cfg.epochs``): ``epochs * steps_per_epoch`` steps, as always;
* a step count (``cfg.steps``, ``--steps N``): N steps, evaluated at each epoch's end and at the last
  step; with ``cfg.horizons`` (``--steps H0,H1@g1,...``) a budgeted run's plan followed, replayed;
* a time budget (``cfg.time_budget``, ``--time-budget 60m``): :meth:`RunPlanner.calibrate_and_plan`
  calibrates (on the real model, whose state the trainer puts back bit for bit) and makes the first
  plan; :meth:`RunPlanner.follow_plan` re-plans at each evaluation before the last
  (minivit/train/replan.py); ``--resume`` continues the plan followed that ``last.npz`` records
  (:meth:`RunPlanner.restore`), never a new calibration.

What it answers the trainer: ``total_steps`` and ``warmup_steps`` (the learning-rate schedule's
horizon and warmup), ``num_epochs``, whether steps are left, and the budget's seconds used. It is
told the step counter; it never reads the trainer.

On a GPU the re-plan's step times are complete: the epoch's last read of the device sums (a
synchronization) comes before the evaluation's clock reading.
"""
from __future__ import annotations

from numbers import Integral

from minivit.storage.checkpoint import CheckpointError
from minivit.train.budget import MAX_STEPS, Plan, calibrate, calibration_seconds, check_length, evaluations_of, \
    format_duration, plan_for_budget, schedule_of
from minivit.train.replan import check_horizons, replan, schedule_position, steps_option


class RunPlanner:
    """A run's step count: an epoch count, ``cfg.steps``, or a plan for ``cfg.time_budget``.

    cfg: the TrainConfig; steps_per_epoch: the training set's full batches; clock, started: the
    clock a budget is measured on (seconds) and the run's start on it; resize: the run's
    :class:`ResizeSchedule` or None (steps of each size cost differently).
    plan: the :class:`Plan` (None: an epoch run, or a budget not planned yet)."""

    def __init__(self, cfg, steps_per_epoch: int, clock, started: float, resize=None):
        self.cfg, self.steps_per_epoch, self.clock, self.started, self.resize = \
            cfg, steps_per_epoch, clock, started, resize
        self.plan: Plan | None = None
        self.used_before = 0.0  # the budget's seconds a resumed run's earlier processes used (None: unknown)
        self.window = None      # (clock, global_step) where the steps since the last evaluation began
        self.step_s = self.speed = self.commit_s = None   # the latest measured seconds per step, speed
        #                                                   (against the calibration) and commit seconds
        self.replanned = False
        self.t_eval = self.t_replan = None
        self.set_schedule(0)

    @property
    def num_epochs(self) -> int | None:
        """The epochs the run starts (a plan's last one may be partial); None before a budget's plan."""
        if self.plan is None:
            return None if self.cfg.time_budget is not None else self.cfg.epochs
        return evaluations_of(self.total_steps, self.steps_per_epoch)

    def steps_left(self, global_step: int) -> bool:
        """Whether the plan has steps left after ``global_step`` (an epoch run ends with its epochs)."""
        return self.plan is None or global_step < self.total_steps

    def set_schedule(self, global_step: int):
        """Set total_steps and warmup_steps (total_steps None for a time budget not planned yet)."""
        cfg, spe = self.cfg, self.steps_per_epoch
        if cfg.time_budget is not None and cfg.steps is not None:
            raise ValueError(f"a time budget ({cfg.time_budget} s) and a step count ({cfg.steps}) exclude each other")
        check_length(cfg.steps, cfg.time_budget, what="the step count")    # at most MAX_STEPS, a year
        if cfg.time_budget is None and cfg.steps is None:
            if not (isinstance(cfg.epochs, Integral) and cfg.epochs > 0):
                raise ValueError(f"the number of epochs must be a positive integer, got {cfg.epochs} "
                                 "(or give a time budget or a step count)")
            if cfg.epochs * spe > MAX_STEPS:
                raise ValueError(f"--epochs {cfg.epochs}: {cfg.epochs:,} epochs of {spe:,} steps are more than the "
                                 f"{MAX_STEPS:,} steps (2**53) the learning-rate schedule can tell apart")
        horizons = getattr(cfg, "horizons", None)       # --steps H0,H1@g1,...: a plan followed, replayed
        if horizons is not None:
            if cfg.steps is None or not horizons or horizons[-1][1] != cfg.steps or horizons[0][0] != 0:
                raise ValueError(f"a plan followed (horizons {horizons}) starts at step 0 and ends at the step "
                                 f"count ({cfg.steps})")
            check_horizons(horizons, spe)
        warmup = int(round(cfg.warmup_epochs * spe))
        if self.plan is None and cfg.steps is not None:
            self.plan = Plan(steps=cfg.steps, steps_per_epoch=spe,
                             horizons=[list(h) for h in horizons] if horizons else None)
        if self.plan is not None:   # the horizon in force at the run's step (a resumed run's: further on)
            self.total_steps, self.warmup_steps = schedule_of(self.plan, warmup, global_step)
        elif cfg.time_budget is not None:
            self.total_steps, self.warmup_steps = None, warmup
        else:
            self.total_steps, self.warmup_steps = spe * cfg.epochs, warmup

    def lr_schedule_at(self, global_step: int):
        """(position, horizon) to give ``warmup_cosine`` at ``global_step``: the step and the run's
        horizon, or, after a re-plan, the step's place on the first plan's schedule
        (:func:`minivit.train.replan.schedule_position`: the learning rate does not jump)."""
        if self.plan is None or len(self.plan.horizons) < 2:
            return global_step, self.total_steps
        return schedule_position(self.plan.horizons, global_step), self.plan.horizons[0][1]

    def schedule_note(self) -> str:
        """'22 epochs (8,580 steps)', or what a time budget will decide."""
        if self.total_steps is None:
            return f"a time budget of {format_duration(self.cfg.time_budget)} (calibrating)"
        epochs = self.total_steps / self.steps_per_epoch
        return f"{epochs:g} epochs ({self.total_steps:,} steps)" if epochs.is_integer() else \
            f"{epochs:.2f} epochs ({self.total_steps:,} steps)"

    def restore(self, meta: dict, path):
        """--resume: the checkpoint's plan followed, exactly as it was recorded (none: the run was not
        planned), and the budget's seconds it had used (re-plans go on from there; a checkpoint from
        before re-planning records none: its plan is then followed as it is)."""
        if meta.get("plan") is not None:
            self.plan = Plan.from_dict(meta["plan"])
            self.used_before = meta.get("budget_used_s")
            self.set_schedule(meta["global_step"])
        elif self.cfg.time_budget is not None and meta["global_step"] > 0:
            raise CheckpointError(f"{path}: a time-budgeted run's checkpoint without its plan; cannot resume it")

    def budget_used(self) -> float:
        """The budget's seconds used so far: earlier processes' (a resumed run) and this one's."""
        return (self.used_before or 0.0) + self.clock() - self.started

    def calibrate_and_plan(self, run_step, kinds, run_eval, eval_images, commit, sync, restore, evals):
        """A time budget: measure the steps of every kind, an evaluation and a commit
        (:func:`minivit.train.budget.calibrate`: run_step(kind, i), run_eval(n), commit(), sync()),
        call ``restore()`` (the trainer puts its model back), then fix the steps
        (:func:`plan_for_budget`; evals: each evaluation's images) and print the plan."""
        self.total_steps = self.steps_per_epoch     # any horizon will do: calibration's steps are undone
        try:
            cal = calibrate(run_step, kinds, run_eval, eval_images, commit, clock=self.clock, sync=sync,
                            seconds=calibration_seconds(self.cfg.time_budget))
        finally:
            self.total_steps = None
            restore()
        self.plan = plan_for_budget(self.cfg.time_budget, self.clock() - self.started, cal, self.steps_per_epoch,
                                    evals, kinds)
        self.set_schedule(0)
        print(f"plan: {self.plan.describe()}\n{self.plan.eta()}")

    # -- re-planning at the evaluations ---------------------------------------------------------
    def start_window(self, global_step: int):
        """The steps from here to the next evaluation are the window its re-plan measures."""
        self.window = (self.clock(), global_step)

    def evaluation_started(self):
        self.t_eval = self.clock()

    def follow_plan(self, g: int, eval_images: int, final_images: int | None, used_s, bar=None):
        """After an evaluation (of ``eval_images``) at step g before the last: the horizon from here
        on. A plan followed that has a horizon recorded for this step (a --steps replay, a resumed
        run) takes it; a time budget re-plans (minivit/train/replan.py) and records the re-plan;
        anything else keeps its horizon. final_images: the last evaluation's images (cfg.final_test)
        or None; used_s(): the budget's seconds used (the trainer's); bar: the progress bar."""
        now = self.clock()
        eval_s, self.t_replan, self.replanned = now - self.t_eval, now, False
        if self.plan is None or g >= self.total_steps:      # the last evaluation: the run ends here
            return
        recorded = [h for step, h in self.plan.horizons if step == g]
        if recorded:
            self.total_steps = recorded[-1]
            return
        if self.cfg.time_budget is None or self.used_before is None:
            return
        t0, g0 = self.window or (None, g)
        old = self.total_steps
        if g > g0:      # the steps since the last evaluation: seconds per step, and speed against the calibration
            self.step_s = (self.t_eval - t0) / (g - g0)
            self.speed = (self.t_eval - t0) / max(1e-12, self.calibrated_train_s(g0, g, old))
        step_s, speed = self.step_s or self.plan.mean_step_s, self.speed or 1.0
        commit_s = self.commit_s if self.commit_s is not None else self.plan.commit_s
        full = final_images is not None
        evals = (eval_images, final_images) if full else eval_images
        used = used_s() + commit_s
        per_image = eval_s / max(1, eval_images)
        h = replan(self.plan.budget_s, used, g, speed * min(self.plan.step_s.values()), self.steps_per_epoch, evals,
                   per_image, commit_s, at_least=1 if full else 0,
                   train_s=lambda n: speed * self.calibrated_train_s(g, g + n, g + n))
        if h != old:                          # the horizons: what the schedule followed (a replay needs no more)
            self.plan.horizons.append([g, h])
        self.plan.replans.append(dict(step=g, steps=h, used_s=used, step_s=step_s, speed=speed,
                                      eval_s_per_image=per_image, commit_s=commit_s))
        self.plan.steps, self.plan.evaluations = h, evaluations_of(h, self.steps_per_epoch)
        self.total_steps, self.replanned = h, True
        if bar is not None:
            bar.total = h
            if abs(h - old) >= 0.01 * old:
                bar.write(f"re-plan at step {g:,}: {h:,} steps (was {old:,}): {1 / step_s:.2f} steps/s since the last "
                          f"evaluation, {format_duration(self.plan.budget_s - used)} of the budget left")

    def calibrated_train_s(self, lo: int, hi: int, total: int) -> float:
        """The seconds the calibration predicts for steps lo..hi-1 of a run of ``total`` steps: each at
        its step kind's time (progressive resizing: the size it has under that horizon)."""
        resize, step_s = self.resize, self.plan.step_s
        if resize is None:
            return (hi - lo) * self.plan.mean_step_s
        bounds = [resize.first_step(i, total) for i in range(len(resize.stages))] + [total]
        return sum(max(0, min(hi, b) - max(lo, a)) * step_s[f"{size}px"]
                   for (_, size), a, b in zip(resize.stages, bounds, bounds[1:]))

    def evaluation_done(self, global_step: int, write_config):
        """After an evaluation's commit and reports: config.json again after a re-plan
        (``write_config()``), their time (the next re-plan's estimate of the next commit), and a new
        window of steps."""
        if self.replanned:
            write_config()
        self.commit_s = self.clock() - self.t_replan
        self.start_window(global_step)

    def replay_note(self) -> str:
        """'; replay this plan with --steps 1500,1480@390' (a plan that moved), else ''."""
        if self.plan is None or len(self.plan.horizons) < 2:
            return ""
        return f"; replay its plan with --steps {steps_option(self.plan.horizons)}"
