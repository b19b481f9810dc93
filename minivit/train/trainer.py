"""Training a ViT on CIFAR-10 / CIFAR-100: ``python -m minivit train``.

One training step reads top to bottom in minivit/train/step.py (augment, resize, forward and
backward, clip, optimizer step, tallies). The Trainer around it holds its parts as objects:

    trainer.opt       the optimizer, chosen once from the configuration (minivit/optim/factory.py)
    trainer.options   EMA, flip TTA, progressive resizing (minivit/train/options.py)
    trainer.planner   how many steps: epochs, --steps or a time budget's plan (minivit/train/planned_run.py)
    trainer.run       the checkpoints last.npz and best.npz (minivit/train/runstate.py)

and is handed its data preparation and its evaluation (``prepare_data``, ``evaluate``: the real
ones by default; tests pass their own). A run stopped anywhere and resumed with ``--resume``
produces exactly the numbers an uninterrupted run would have.

Outputs in ``--out``: ``config.json``, ``metrics.csv``, ``curves.png``, ``last.npz``, ``best.npz``.
``best.npz`` is the model of the best evaluation on held-out validation images (``--val-split``);
without them it is the latest evaluated one: a checkpoint is never chosen on the test set.
The folder is locked while a run goes on (``minivit/train/runfolder.py``); what the progress bar and
metrics.csv report is described in ``minivit/train/progress.py``.
"""
from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np

from minivit.backend import get_xp, resolve_device
from minivit.train.recipes import RECIPES, TrainConfig, recipe  # noqa: F401 (part of this module's API)
from minivit.model import ViT, ViTConfig
from minivit import ops
from minivit.optim import make_optimizer
from minivit.train import step as one_step
from minivit.train.options import Options
from minivit.train.planned_run import RunPlanner
from minivit.train.progress import Throughput, progress_bar, subset_label, write_reports
from minivit.train.resume_check import RESUME_KEYS  # noqa: F401 (part of this module's API)
from minivit.train.runfolder import RunLock
from minivit.train.runstate import RunState, TrainingDiverged, deferred_interrupt  # noqa: F401 (TrainingDiverged: API)
from minivit.train.tally import Tally
from minivit.train.calibration import plan_budget
from minivit.storage.tempfiles import remove_stale
from minivit.train.data import augment_config, prepare_data  # noqa: F401 (augment_config: API)
from minivit.train.evaluation import evaluate, evaluate_checkpoint  # noqa: F401 (evaluate_checkpoint: API)


# ---------------------------------------------------------------------------------- trainer

class Trainer:
    """Runs a TrainConfig; writes metrics, plots and checkpoints into ``out``."""

    optimizer = None        # which optimizer (minivit/optim/factory.py); None: cfg.optimizer. FineTuner: 'sgd'

    def __init__(self, cfg: TrainConfig, out, device=None, data_dir=None, dataset_obj=None, progress=True, impl=None,
                 model=None, batch_transform=None, clock=None, started=None, prepare_data=prepare_data,
                 evaluate=evaluate):
        """impl: optional module/namespace of functional implementations (e.g. a learner's exercises)
        used in place of minivit's reference ones during ``fit`` (see ``minivit.ops.use``).
        model: start from this ViT (e.g. pre-trained weights) instead of a fresh one built from cfg.model.
        batch_transform: optional function applied to every normalized float batch (B, H, W, C) before
        the model, in training and evaluation (e.g. resizing to a pre-trained model's resolution).
        clock, started: the clock a time budget is measured on (seconds; default ``time.monotonic``) and
        the run's start on it (default: now, before the data is loaded; the CLI passes the process's
        start); see minivit/train/budget.py.
        prepare_data(cfg, xp, data_dir, dataset_obj) -> dict of the run's arrays (minivit/train/data.py)
        and evaluate(model, x, y, aug, num_classes, batch_size, batch_transform, forward=) -> (loss, acc,
        predictions) (minivit/train/evaluation.py): the real ones unless given (tests pass their own)."""
        self.clock = clock or time.monotonic
        self.started = self.clock() if started is None else started
        if not (isinstance(cfg.lr, (int, float)) and math.isfinite(cfg.lr) and cfg.lr > 0):
            raise ValueError(f"the learning rate must be a positive finite number, got {cfg.lr}")
        self.cfg = cfg
        self.impl = impl
        self.evaluate = evaluate
        # whose code runs each exercise topic ({"path", "topics"}; None: minivit's or the fast paths)
        self.exercises = impl.record() if callable(getattr(impl, "record", None)) else None
        self.batch_transform = batch_transform
        self.out = Path(out)
        self.device = resolve_device(device)
        self.xp = get_xp(self.device)
        self.progress = progress
        self.data = prepare_data(cfg, self.xp, data_dir, dataset_obj)
        if model is None:
            model_cfg = dict(cfg.model)
            model_cfg["num_classes"] = self.data["num_classes"]
            model = ViT(ViTConfig.from_dict(model_cfg), seed=cfg.seed, xp=self.xp)
        self.model = model
        model.train()       # training mode: dropout, drop-path, token dropping (evaluate() switches and back)
        self.parallel = None
        if cfg.threads > 1 and self.xp is np:
            from minivit.fast.parallel import DataParallel

            self.parallel = DataParallel(model, cfg.threads)
        self.opt = make_optimizer(cfg, model, self.optimizer)     # AdamW, Muon or SGD: chosen here, once
        self.options = Options(cfg, model)                        # EMA, flip TTA, resizing: off by default
        self.aug = augment_config(cfg)
        n = len(self.data["x_train"])
        if n < cfg.batch_size:
            raise ValueError(f"batch size {cfg.batch_size} is larger than the training set ({n} images)")
        self.steps_per_epoch = n // cfg.batch_size            # the last partial batch is dropped
        self.planner = RunPlanner(cfg, self.steps_per_epoch, self.clock, self.started, self.options.resize)
        self.run = RunState(self.out, model, self.opt, self._meta, self.options.extra_state)
        # Training position and history (all saved in checkpoints).
        self.epoch, self.step_in_epoch, self.global_step = 0, 0, 0
        self.partial = dict(loss_sum=0.0, correct=0, seen=0, time_s=0.0, data_s=0.0)
        self.history, self.best_acc, self.elapsed = [], -1.0, 0.0
        self.throughput = Throughput()      # images/s of the steps since the last evaluation or the start
        # The loss and accuracy sums stay on the device; read at most once a second (minivit/train/tally.py).
        self.tally = Tally(self.xp)
        n_test = len(self.data["x_test"])
        self.eval_note = subset_label(n_test, self.data.get("test_total", n_test))   # '' or ' (1,000-image subset)'
        self.eval_set = self.data.get("eval_set", "test")     # 'val' with cfg.val_split: the test set unused
        self.test_label = f"{self.eval_set} acc" + self.eval_note

    # -- what the parts answer ---------------------------------------------------------------
    @property
    def eval_set_name(self) -> str:
        """'test', or 'held-out validation' (cfg.val_split)."""
        return "held-out validation" if self.eval_set == "val" else "test"

    @property
    def plan(self):
        """The run's :class:`minivit.train.budget.Plan` (None: an epoch run, or a budget not planned yet)."""
        return self.planner.plan

    @property
    def total_steps(self) -> int | None:
        """The learning-rate schedule's horizon: the run's steps (None: a budget not planned yet)."""
        return self.planner.total_steps

    @property
    def ema(self):
        """The EMA of the weights (minivit/train/ema.py), or None."""
        return self.options.ema

    # -- checkpoints ---------------------------------------------------------------------
    def resume(self, path=None):
        """Continue the run of ``path`` (default out/last.npz): the same run, checked (RunState.load)."""
        path = Path(path) if path else self.out / "last.npz"
        meta = self.run.load(path, self.cfg, self.exercises, self.options)     # model, optimizer, EMA
        self.epoch, self.step_in_epoch = meta["epoch"], meta["step_in_epoch"]
        self.global_step, self.partial = meta["global_step"], meta["partial"]
        self.history, self.best_acc, self.elapsed = meta["history"], meta["best_acc"], meta["elapsed"]
        self.planner.restore(meta, path)       # a budgeted run keeps its plan: no new calibration
        return self

    def _meta(self):
        """What every checkpoint records besides the arrays (read by --resume)."""
        self.read_device_sums()       # before every checkpoint: the partial sums up to date, NaN checked
        return dict(train_config=self.cfg.to_dict(), epoch=self.epoch, step_in_epoch=self.step_in_epoch,
                    global_step=self.global_step, partial=self.partial, history=self.history,
                    best_acc=self.best_acc, elapsed=self.elapsed, classes=self.data["classes"],
                    dataset=self.cfg.dataset, plan=self.plan and self.plan.to_dict(),   # plan: minivit/train/budget.py
                    exercises=self.exercises, budget_used_s=self.planner.budget_used())

    def _take(self, state: dict):
        """Take an evaluation's outcome: epoch, step_in_epoch, history, partial, best_acc, elapsed."""
        self.__dict__.update(state)

    def write_config(self):
        """config.json: the configuration, device, exercise topics and plan (minivit/train/runstate.py)."""
        self.run.write_config(dict(train=self.cfg.to_dict(), model=self.model.config.to_dict(), device=self.device,
                                   exercises=self.exercises, plan=self.plan and self.plan.to_dict()))

    # -- the loop --------------------------------------------------------------------------
    def epoch_order(self, epoch):
        """The shuffled order of epoch ``epoch``, a function of (seed, epoch) only."""
        perm = np.random.default_rng([self.cfg.seed, epoch]).permutation(len(self.data["x_train"]))
        return self.xp.asarray(perm)

    def train_step(self, epoch, step, order, size=None):
        """One optimization step: minivit/train/step.py (returns (loss, number correct, data time))."""
        return one_step.train_step(self, epoch, step, order, size)

    def fit(self):
        """Train until ``cfg.epochs``, or the planned steps of a time budget (minivit/train/budget.py: a
        short calibration first, unless resumed); returns the metrics history.

        The output folder is locked meanwhile (a second trainer there is refused) and temporary
        files left by a killed trainer are removed first. Ctrl-C saves last.npz (never a
        non-finite model) and re-raises."""
        cfg = self.cfg
        with RunLock(self.out):
            remove_stale(self.out, ("*.tmp",))
            n_test = len(self.data["x_test"])
            print(f"minivit: {self.model.num_parameters():,} parameters on {self.device}; "
                  f"{len(self.data['x_train'])} training images, {self.steps_per_epoch} steps/epoch, "
                  f"{self.planner.schedule_note()}, evaluated on {n_test:,} of "
                  f"{self.data.get('test_total', n_test):,} {self.eval_set_name} images -> {self.out}")
            with ops.use(self.impl or {}):
                plan_budget(self)       # a time budget: calibrate, fix the steps, print the plan (calibration.py)
            self.write_config()                     # config.json: the configuration and the plan (atomic)
            self.planner.start_window(self.global_step)     # the steps a re-plan measures begin here
            if self.exercises is not None:           # which topics run the learner's code
                print(self.impl.describe())
            self.throughput.reset()                 # a new segment: this process's steps only
            self._bar = progress_bar(self.progress, self.total_steps, self.global_step,
                                     f"epoch {self.epoch + 1}/{self.planner.num_epochs}")
            try:
                with ops.use(self.impl or {}):
                    while self.epoch < self.planner.num_epochs:
                        self._run_epoch()
            except KeyboardInterrupt:
                self.run.save_on_interrupt(self.global_step, self._take)
                raise
            finally:
                self._bar.close()
        return self.history

    def _run_epoch(self):
        bar, epoch = self._bar, self.epoch
        order = self.epoch_order(epoch)
        bar.set_description(f"epoch {epoch + 1}/{self.planner.num_epochs}", refresh=False)
        p = self.partial
        self.tally.start(p)                         # device sums continue from the partial ones
        while self.step_in_epoch < self.steps_per_epoch and self.planner.steps_left(self.global_step):
            with deferred_interrupt():              # Ctrl-C waits for the step and its counters
                loss, correct, t_data = self.train_step(epoch, self.step_in_epoch, order)
                self.tally.add(loss, correct, self.cfg.batch_size, t_data)     # device arithmetic, no wait
                self.step_in_epoch += 1
                self.global_step += 1
            bar.update(1)
            if self.tally.due():                    # at most once a second: the one read of the sums
                self._read_and_show(bar)
        self._read_and_show(bar)
        self._evaluate_and_save()

    def _read_and_show(self, bar):
        self.read_device_sums()
        p = self.partial
        if p["seen"]:
            bar.set_postfix(refresh=False, loss=f"{p['loss_sum'] / p['seen']:.3f}", acc=f"{p['correct'] / p['seen']:.3f}",
                            lr=f"{self.opt.lr:.2e}", img_s=f"{self.throughput.images_per_s:.0f}")

    def read_device_sums(self):
        """Read the steps' device sums into ``partial`` (one synchronization; also before every
        checkpoint, see minivit/train/runstate.py) and stop on a NaN or infinite training loss."""
        first = self.global_step - self.tally.steps + 1
        if not self.tally.read(self.partial, self.throughput):
            return
        if not Tally.finite(self.partial):
            raise TrainingDiverged(
                f"the training loss became {self.partial['loss_sum']} in epoch {self.epoch + 1}, between steps "
                f"{first} and {self.global_step} of the run (lr {self.opt.lr:.3g}); "
                f"{self.run.last_good_note()}. Try a lower --lr or a smaller clip norm.")

    def _evaluate_and_save(self):
        """Evaluate, then write best.npz (on a new best) and last.npz, then metrics.csv and curves.png."""
        p, seg = self.partial, self.throughput
        t_eval = time.perf_counter()
        self.planner.evaluation_started()
        final = "x_test_full" in self.data and self.global_step == self.total_steps   # cfg.final_test
        x_eval = self.data["x_test_full" if final else "x_test"]
        # EMA weights, flip TTA: if switched on; final_test: the last evaluation on the whole test set
        test_loss, test_acc, extra = self.evaluate_on(x_eval, self.data["y_test_full" if final else "y_test"])
        if not math.isfinite(test_loss):
            raise TrainingDiverged(f"the evaluation loss became {test_loss} after epoch {self.epoch + 1} "
                                   f"(step {self.global_step}); {self.run.last_good_note()}. Try a lower --lr.")
        # a time budget re-plans its horizon (minivit/train/replan.py)
        self.planner.follow_plan(self.global_step, len(x_eval), len(self.data["x_test_full"])
                                 if "x_test_full" in self.data else None, self.planner.budget_used, getattr(self, "_bar", None))
        elapsed = self.elapsed + p["time_s"] + (time.perf_counter() - t_eval)
        row = dict(epoch=self.epoch + 1, step=self.global_step, epoch_frac=self.global_step / self.steps_per_epoch,
                   train_loss=p["loss_sum"] / p["seen"], train_acc=p["correct"] / p["seen"],
                   test_loss=test_loss, test_acc=test_acc, eval_images=len(x_eval),
                   eval_set=self.eval_set, lr=self.opt.lr,
                   time_s=elapsed, images_per_s=seg.images_per_s, data_frac=seg.data_frac, **extra)
        self._bar.write(
            f"epoch {self.epoch + 1:3d}: train loss {row['train_loss']:.4f} acc {100 * row['train_acc']:.2f}% | "
            f"{self.eval_set} loss {test_loss:.4f} {'test acc (all, final)' if final else self.test_label} {100 * test_acc:.2f}%{self.options.note(extra)} | {row['images_per_s']:.0f} img/s, "
            f"data pipeline {100 * row['data_frac']:.1f}% of step time | {elapsed / 60:.1f} min")
        # best.npz is chosen on validation images only (--val-split); without them it is the latest
        # evaluated model (the final one at the end): nothing is ever selected on the test set.
        choose = self.eval_set == "val"
        after = dict(epoch=self.epoch + 1, step_in_epoch=0, history=self.history + [row],
                     partial=dict(loss_sum=0.0, correct=0, seen=0, time_s=0.0, data_s=0.0),
                     best_acc=max(test_acc, self.best_acc) if choose else test_acc, elapsed=elapsed)
        self.run.commit(after, new_best=test_acc > self.best_acc if choose else True, apply=self._take)
        seg.reset()
        self.write_metrics()
        self.planner.evaluation_done(self.global_step, self.write_config)

    def write_metrics(self):
        """metrics.csv and curves.png (minivit/train/progress.py)."""
        best = max(r['test_acc'] for r in self.history)
        write_reports(self.history, self.out, title=f"{self.cfg.dataset}: best {self.test_label} {100 * best:.2f}%")

    # -- evaluation and the calibration of a time budget ----------------------------------------
    def evaluate_on(self, x, y):
        """(loss, acc, extras) on the images x (N, H, W, C) uint8, labels y (N,), as an evaluation of
        the run does (the options: EMA weights, flip TTA; the threads' forward, if any)."""
        forward = self.parallel.forward if self.parallel else None
        return self.options.evaluate(self.evaluate, self.model, x, y, self.aug, self.data["num_classes"],
                                     self.cfg.eval_batch_size, self.batch_transform, forward)

    def calibration_step(self, kind: str, i: int, order):
        """One training step of ``kind`` for the calibration (i: its index within the kind): a
        resized kind runs at its size."""
        return self.train_step(0, i % self.steps_per_epoch, order, self.options.size_of_kind(kind))
