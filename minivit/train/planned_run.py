"""The trainer's side of a time budget: :class:`PlannedRun`, the part of
:class:`minivit.train.trainer.Trainer` that fixes a run's step count (the plan itself: minivit/train/budget.py).

* epochs (``cfg.epochs``): ``epochs * steps_per_epoch`` steps, as always;
* a step count (``cfg.steps``, ``--steps N``): N steps, evaluated at each epoch's end and at the last
  step; with ``cfg.horizons`` (``--steps H0,H1@g1,...``) a budgeted run's plan followed, replayed;
* a time budget (``cfg.time_budget``, ``--time-budget 60m``): :meth:`PlannedRun.make_plan` calibrates
  (on the real model, whose state is put back bit for bit) and makes the first plan;
  :meth:`PlannedRun.follow_plan` re-plans at each evaluation before the last (minivit/train/replan.py);
  ``--resume`` continues the plan followed that ``last.npz`` records (:meth:`PlannedRun.restore_plan`),
  never a new calibration.

On a GPU the re-plan's step times are complete: the epoch's last read of the device sums (a
synchronization) comes before the evaluation's clock reading.
"""
from __future__ import annotations

from numbers import Integral

from minivit.train.budget import FULL, MAX_STEPS, Plan, calibrate, calibration_seconds, check_length, evaluations_of, \
    format_duration, plan_for_budget, schedule_of
from minivit.storage.checkpoint import CheckpointError
from minivit.train.replan import check_horizons, replan, steps_option


class PlannedRun:
    """The part of :class:`minivit.train.trainer.Trainer` that fixes its step count (a mixin, like
    ``runstate.RunCheckpoints``): an epoch count, ``cfg.steps``, or a plan for ``cfg.time_budget``.
    It uses the trainer's cfg, steps_per_epoch, model, opt, data, clock, started and evaluate_test
    (minivit/train/options.py)."""

    plan: Plan | None = None
    used_before = 0.0        # the budget's seconds a resumed run's earlier processes used (None: unknown)
    _window = None           # (clock, global_step) where the steps since the last evaluation began
    _step_s = _speed = _commit_s = None   # the latest measured seconds per step, speed (against the
    #                                       calibration) and seconds of an evaluation's commit
    _replanned = False

    @property
    def num_epochs(self) -> int | None:
        """The epochs the run starts (a plan's last one may be partial); None before a budget's plan."""
        if self.plan is None:
            return None if self.cfg.time_budget is not None else self.cfg.epochs
        return evaluations_of(self.total_steps, self.steps_per_epoch)

    def steps_left(self) -> bool:
        """Whether the plan has steps left (an epoch run ends with its epochs)."""
        return self.plan is None or self.global_step < self.total_steps

    def set_schedule(self):
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
            self.total_steps, self.warmup_steps = schedule_of(self.plan, warmup, getattr(self, "global_step", 0))
        elif cfg.time_budget is not None:
            self.total_steps, self.warmup_steps = None, warmup
        else:
            self.total_steps, self.warmup_steps = spe * cfg.epochs, warmup

    def schedule_note(self) -> str:
        """'22 epochs (8,580 steps)', or what a time budget will decide."""
        if self.total_steps is None:
            return f"a time budget of {format_duration(self.cfg.time_budget)} (calibrating)"
        epochs = self.total_steps / self.steps_per_epoch
        return f"{epochs:g} epochs ({self.total_steps:,} steps)" if epochs.is_integer() else \
            f"{epochs:.2f} epochs ({self.total_steps:,} steps)"

    def restore_plan(self, meta: dict, path):
        """--resume: the checkpoint's plan followed, exactly as it was recorded (none: the run was not
        planned), and the budget's seconds it had used (re-plans go on from there; a checkpoint from
        before re-planning records none: its plan is then followed as it is)."""
        if meta.get("plan") is not None:
            self.plan = Plan.from_dict(meta["plan"])
            self.used_before = meta.get("budget_used_s")
            self.set_schedule()
        elif self.cfg.time_budget is not None and meta["global_step"] > 0:
            raise CheckpointError(f"{path}: a time-budgeted run's checkpoint without its plan; cannot resume it")

    def budget_used(self) -> float:
        """The budget's seconds used so far: earlier processes' (a resumed run) and this one's."""
        return (self.used_before or 0.0) + self.clock() - self.started

    def start_window(self):
        """The steps from here to the next evaluation are the window its re-plan measures."""
        self._window = (self.clock(), self.global_step)

    def evaluation_started(self):
        self._t_eval = self.clock()

    def follow_plan(self, eval_images: int):
        """After an evaluation before the last: the horizon from here on. A plan followed that has a
        horizon recorded for this step (a --steps replay, a resumed run) takes it; a time budget
        re-plans (minivit/train/replan.py) and records the re-plan; anything else keeps its horizon."""
        g, now = self.global_step, self.clock()
        eval_s, self._t_replan, self._replanned = now - self._t_eval, now, False
        if self.plan is None or g >= self.total_steps:      # the last evaluation: the run ends here
            return
        recorded = [h for step, h in self.plan.horizons if step == g]
        if recorded:
            self.total_steps = recorded[-1]
            return
        if self.cfg.time_budget is None or self.used_before is None:
            return
        t0, g0 = self._window or (None, g)
        old = self.total_steps
        if g > g0:      # the steps since the last evaluation: seconds per step, and speed against the calibration
            self._step_s = (self._t_eval - t0) / (g - g0)
            self._speed = (self._t_eval - t0) / max(1e-12, self.calibrated_train_s(g0, g, old))
        step_s, speed = self._step_s or self.plan.mean_step_s, self._speed or 1.0
        commit_s = self._commit_s if self._commit_s is not None else self.plan.commit_s
        full = "x_test_full" in self.data
        evals = (eval_images, len(self.data["x_test_full"])) if full else eval_images
        used = self.budget_used() + commit_s
        per_image = eval_s / max(1, eval_images)
        h = replan(self.plan.budget_s, used, g, speed * min(self.plan.step_s.values()), self.steps_per_epoch, evals,
                   per_image, commit_s, at_least=1 if full else 0,
                   train_s=lambda n: speed * self.calibrated_train_s(g, g + n, g + n))
        if h != old:                          # the horizons: what the schedule followed (a replay needs no more)
            self.plan.horizons.append([g, h])
        self.plan.replans.append(dict(step=g, steps=h, used_s=used, step_s=step_s, speed=speed,
                                      eval_s_per_image=per_image, commit_s=commit_s))
        self.plan.steps, self.plan.evaluations = h, evaluations_of(h, self.steps_per_epoch)
        self.total_steps, self._replanned = h, True
        bar = getattr(self, "_bar", None)
        if bar is not None:
            bar.total = h
            if abs(h - old) >= 0.01 * old:
                bar.write(f"re-plan at step {g:,}: {h:,} steps (was {old:,}): {1 / step_s:.2f} steps/s since the last "
                          f"evaluation, {format_duration(self.plan.budget_s - used)} of the budget left")

    def calibrated_train_s(self, lo: int, hi: int, total: int) -> float:
        """The seconds the calibration predicts for steps lo..hi-1 of a run of ``total`` steps: each at
        its step kind's time (progressive resizing: the size it has under that horizon)."""
        resize, step_s = getattr(self, "resize", None), self.plan.step_s
        if resize is None:
            return (hi - lo) * self.plan.mean_step_s
        bounds = [resize.first_step(i, total) for i in range(len(resize.stages))] + [total]
        return sum(max(0, min(hi, b) - max(lo, a)) * step_s[f"{size}px"]
                   for (_, size), a, b in zip(resize.stages, bounds, bounds[1:]))

    def evaluation_done(self):
        """After an evaluation's commit and reports: their time (the next re-plan's estimate of the
        next commit), config.json again after a re-plan, and a new window of steps."""
        if self._replanned:
            self.write_config()
        self._commit_s = self.clock() - self._t_replan
        self.start_window()

    def replay_note(self) -> str:
        """'; replay this plan with --steps 1500,1480@390' (a plan that moved), else ''."""
        if self.plan is None or len(self.plan.horizons) < 2:
            return ""
        return f"; replay its plan with --steps {steps_option(self.plan.horizons)}"

    def write_config(self):
        """config.json: the run's configuration, device, exercise topics and plan (the re-plans so far),
        written atomically (``--resume`` compares it with the checkpoint: minivit/train/resume_check.py)."""
        import json

        from minivit.storage.tempfiles import atomic_file

        with atomic_file(self.out / "config.json", "w") as f:
            f.write(json.dumps(dict(train=self.cfg.to_dict(), model=self.model.config.to_dict(), device=self.device,
                                    exercises=self.exercises, plan=self.plan and self.plan.to_dict()), indent=2))

    def step_kinds(self) -> list:
        """The schedule's step kinds and the fraction of the steps each takes, [(kind, fraction), ...]:
        every step ``"full"``, or with progressive resizing one kind per size (e.g. ``"24px"``,
        minivit/train/resize_schedule.py). Token dropping needs no kind of its own: every training step
        drops the same fraction, so the calibration's steps already do."""
        resize = getattr(self, "resize", None)
        return FULL if resize is None else resize.step_kinds()

    def calibration_step(self, kind: str, i: int, order):
        """One training step of ``kind`` for the calibration (i: its index within the kind): a
        resized kind runs at its size (``forced_size``, read by TrainerOptions.resize_for_step)."""
        self.forced_size = None if kind == "full" else self.resize.size_of_kind(kind)
        try:
            return self.train_step(0, i % self.steps_per_epoch, order)
        finally:
            self.forced_size = None

    def make_plan(self, evaluate):
        """A time budget not planned yet: calibrate on the real model (restored bit for bit after),
        fix the steps (:func:`plan_for_budget`) and print the plan and the run's end.
        evaluate: ``minivit.train.trainer.evaluate`` (passed in: this module cannot import train)."""
        if self.total_steps is not None:          # epochs, --steps, or the plan a resumed run recorded
            if self.plan is not None:
                print(f"plan: {self.plan.describe()}{' (recorded)' if self.global_step else ''}")
            return
        from minivit.backend import synchronize

        spe, xp, n_eval = self.steps_per_epoch, self.xp, len(self.data["x_test"])
        params, optim = self.model.state_dict(), self.opt.state_dict()
        ema = getattr(self, "ema", None)       # an EMA of the weights (minivit/train/ema.py) is put back too
        ema_state = ema.state_dict() if ema is not None else None
        order, kinds = self.epoch_order(0), self.step_kinds()
        self.total_steps = spe                 # any horizon will do: calibration's steps are undone
        try:
            cal = calibrate(lambda kind, i: self.calibration_step(kind, i, order), kinds,
                            lambda n: self._evaluate_first(evaluate, n),
                            min(n_eval, self.cfg.eval_batch_size), self._dry_commit, clock=self.clock,
                            sync=lambda: synchronize(xp), seconds=calibration_seconds(self.cfg.time_budget))
        finally:
            self.total_steps = None
            self.model.load_state_dict(params)
            self.opt.load_state_dict(optim)
            if ema is not None:
                ema.load_state_dict(ema_state)
        evals = n_eval
        if "x_test_full" in self.data:       # final_test: the last evaluation is on the whole test set
            evals = (n_eval, len(self.data["x_test_full"]))
        self.plan = plan_for_budget(self.cfg.time_budget, self.clock() - self.started, cal, spe, evals, kinds)
        self.set_schedule()
        print(f"plan: {self.plan.describe()}\n{self.plan.eta()}")

    def _evaluate_first(self, evaluate, n: int):
        """Evaluate the first n images of the evaluation set, as an evaluation of the run does."""
        self.evaluate_on(evaluate, self.data["x_test"][:n], self.data["y_test"][:n])

    def evaluate_on(self, evaluate, x, y):
        """(loss, acc, extras) on the images x (N, H, W, C) uint8, labels y (N,), as an evaluation of
        the run does (through the trainer's ``evaluate_test``: EMA weights, flip TTA)."""
        data = self.data
        self.data = {**data, "x_test": x, "y_test": y}
        try:
            return self.evaluate_test(evaluate)
        finally:
            self.data = data

    def _dry_commit(self):
        """What an evaluation writes (best.npz and last.npz, metrics.csv, curves.png), to throwaway files."""
        import io

        from minivit.train.progress import write_metrics
        from minivit.storage.tempfiles import pid_tag

        row = dict(epoch=1, step=0, epoch_frac=0.0, train_loss=1.0, train_acc=0.5, test_loss=1.0, test_acc=0.5,
                   eval_images=1, lr=0.0, time_s=0.0, images_per_s=1.0, data_frac=0.0)
        names = [f"calibration.{pid_tag()}.{what}.tmp" for what in ("npz", "csv")]
        try:
            for _ in range(2):                 # a new best writes two checkpoints
                self._write(names[0], self._meta())
            write_metrics([row], self.out / names[1])
            try:
                from minivit.plots import plot_curves

                plot_curves([row], io.BytesIO())
            except Exception:                  # as in Trainer.write_metrics: plots never stop a run
                pass
        finally:
            for name in names:
                (self.out / name).unlink(missing_ok=True)
