"""Training a ViT on CIFAR-10 / CIFAR-100: ``python -m minivit train``.

One training step:

    idx      = this epoch's shuffled order, slice [step*B : (step+1)*B]   (seeded by (seed, epoch))
    x, t     = augment(x_train[idx])            on the device: crop, flip, RandAugment, mixup...
    logits   = model.forward(x)
    loss     = cross_entropy(logits, t, label_smoothing)
    model.backward(dloss/dlogits)               fills every parameter's .grad
    clip the global gradient norm, set the learning rate (warmup + cosine), AdamW step

Every random draw derives from (seed, epoch, step), so a run stopped anywhere and resumed with
``--resume`` produces exactly the numbers an uninterrupted run would have.

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

from minivit.data.augment import augment_batch
from minivit.backend import get_xp, make_rng, resolve_device
from minivit.storage.checkpoint import CheckpointError, load_checkpoint
from minivit.train.recipes import RECIPES, TrainConfig, recipe  # noqa: F401 (part of this module's API)
from minivit.model import ViT, ViTConfig
from minivit import ops
from minivit.ops import F
from minivit.optim import AdamW, clip_grad_norm
from minivit.train.planned_run import PlannedRun
from minivit.train.progress import Throughput, progress_bar, subset_label
from minivit.train.progress import write_metrics as write_metrics_csv
from minivit.train.resume_check import RESUME_KEYS, check_config_file, check_resumable  # noqa: F401 (RESUME_KEYS: API)
from minivit.train.runfolder import RunLock
from minivit.train.runstate import RunCheckpoints, TrainingDiverged, deferred_interrupt  # noqa: F401 (TrainingDiverged: API)
from minivit.train.tally import Tally
from minivit.storage.tempfiles import remove_stale
from minivit.train.options import TrainerOptions
# The data and the evaluation have their own modules; the Trainer looks these names up here (tests
# replace them here: monkeypatch minivit.train.trainer.prepare_data / minivit.train.trainer.evaluate).
from minivit.train.data import augment_config, prepare_data  # noqa: F401 (augment_config: API)
from minivit.train.evaluation import evaluate, evaluate_checkpoint  # noqa: F401 (evaluate_checkpoint: API)


# ---------------------------------------------------------------------------------- trainer

class Trainer(RunCheckpoints, PlannedRun, TrainerOptions):
    """Runs a TrainConfig; writes metrics, plots and checkpoints into ``out``."""

    def __init__(self, cfg: TrainConfig, out, device=None, data_dir=None, dataset_obj=None, progress=True, impl=None,
                 model=None, batch_transform=None, clock=None, started=None):
        """impl: optional module/namespace of functional implementations (e.g. a learner's exercises)
        used in place of minivit's reference ones during ``fit`` (see ``minivit.ops.use``).
        model: start from this ViT (e.g. pre-trained weights) instead of a fresh one built from cfg.model.
        batch_transform: optional function applied to every normalized float batch (B, H, W, C) before
        the model, in training and evaluation (e.g. resizing to a pre-trained model's resolution).
        clock, started: the clock a time budget is measured on (seconds; default ``time.monotonic``) and
        the run's start on it (default: now, before the data is loaded; the CLI passes the process's
        start); see minivit/train/budget.py."""
        self.clock = clock or time.monotonic
        self.started = self.clock() if started is None else started
        if not (isinstance(cfg.lr, (int, float)) and math.isfinite(cfg.lr) and cfg.lr > 0):
            raise ValueError(f"the learning rate must be a positive finite number, got {cfg.lr}")
        self.cfg = cfg
        self.impl = impl
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
        self.opt = AdamW(self.model.named_parameters(), lr=cfg.lr, betas=tuple(cfg.betas), weight_decay=cfg.weight_decay)
        self.setup_options()        # EMA, Muon: off by default (minivit/train/options.py)
        self.aug = augment_config(cfg)
        n = len(self.data["x_train"])
        if n < cfg.batch_size:
            raise ValueError(f"batch size {cfg.batch_size} is larger than the training set ({n} images)")
        self.steps_per_epoch = n // cfg.batch_size            # the last partial batch is dropped
        self.set_schedule()     # total_steps and warmup_steps: from the epochs or a plan (minivit/train/planned_run.py)
        # Training position and history (all saved in checkpoints).
        self.epoch, self.step_in_epoch, self.global_step = 0, 0, 0
        self.partial = dict(loss_sum=0.0, correct=0, seen=0, time_s=0.0, data_s=0.0)
        self.history: list[dict] = []
        self.best_acc = -1.0
        self.elapsed = 0.0
        # What is reported: images/s of the steps since the last evaluation or this process's start.
        self.throughput = Throughput()
        # The loss and accuracy sums stay on the device; read at most once a second (minivit/train/tally.py).
        self.tally = Tally(self.xp)
        n_test = len(self.data["x_test"])
        self.eval_note = subset_label(n_test, self.data.get("test_total", n_test))   # '' or ' (1,000-image subset)'
        self.eval_set = self.data.get("eval_set", "test")     # 'val' with cfg.val_split: the test set unused
        self.test_label = f"{self.eval_set} acc" + self.eval_note

    @property
    def eval_set_name(self) -> str:
        """'test', or 'held-out validation' (cfg.val_split)."""
        return "held-out validation" if self.eval_set == "val" else "test"

    # -- checkpoints ---------------------------------------------------------------------
    def resume(self, path=None):
        path = Path(path) if path else self.out / "last.npz"
        params, optim, meta = load_checkpoint(path)
        check_resumable(path, meta, self.cfg, self.exercises)     # the same run: keys, code, configuration
        notice = check_config_file(self.out, meta, path)         # config.json edited by hand: refused
        if notice:
            print(notice)
        try:
            self.model.load_state_dict(params)
            self.opt.load_state_dict(optim)
        except (KeyError, ValueError) as e:
            raise CheckpointError(f"{path}: cannot resume from it: {e.args[0] if e.args else e}") from e
        self.load_options(path)                 # the EMA, if any
        self.epoch, self.step_in_epoch = meta["epoch"], meta["step_in_epoch"]
        self.global_step, self.partial = meta["global_step"], meta["partial"]
        self.history, self.best_acc, self.elapsed = meta["history"], meta["best_acc"], meta["elapsed"]
        self.restore_plan(meta, path)       # a budgeted run keeps its plan: no new calibration
        self._last_good = path
        return self

    def _meta(self):
        return {**super()._meta(), "exercises": self.exercises, "budget_used_s": self.budget_used()}

    # -- the loop --------------------------------------------------------------------------
    def epoch_order(self, epoch):
        """The shuffled order of epoch ``epoch``, a function of (seed, epoch) only."""
        perm = np.random.default_rng([self.cfg.seed, epoch]).permutation(len(self.data["x_train"]))
        return self.xp.asarray(perm)

    def train_step(self, epoch, step, order):
        """One optimization step. Returns (loss, number correct, data time): on a GPU the loss and the
        count are 0-d device arrays and the data time a pair of device events (minivit/train/tally.py), so
        that the step never waits for the GPU; on NumPy, numbers."""
        cfg, xp, B = self.cfg, self.xp, self.cfg.batch_size
        t0 = self.tally.timer.start()
        idx = order[step * B:(step + 1) * B]
        x, targets = augment_batch(self.data["x_train"][idx], self.data["y_train"][idx],
                                   make_rng(cfg.seed, epoch, step), self.aug, self.data["num_classes"], train=True)
        if self.batch_transform is not None:
            x = self.batch_transform(x)
        x = self.resize_for_step(x)                 # progressive resizing, if switched on
        t_data = self.tally.timer.stop(t0)
        self.opt.lr = F.warmup_cosine(self.global_step, self.total_steps, cfg.lr, self.warmup_steps, cfg.min_lr)
        if self.parallel is None:
            logits = self.model.forward(x, make_rng(cfg.seed, epoch, step, 1, xp=xp))
            loss, cache = F.cross_entropy_forward(logits, targets, cfg.label_smoothing)
        else:   # the same step, with the batch split over CPU threads (minivit/fast/parallel.py)
            rngs = [make_rng(cfg.seed, epoch, step, 1, i) for i in range(cfg.threads)]
            loss, logits = self.parallel.forward_backward(x, targets, cfg.label_smoothing, rngs)
        if self.parallel is None:
            self.model.backward(F.cross_entropy_backward(cache))
        if cfg.clip_norm:
            clip_grad_norm(self.model.parameters(), cfg.clip_norm)
        self.opt.step()
        self.after_optimizer_step()                 # the EMA's update, if any
        hard = targets if targets.ndim == 1 else xp.argmax(targets, axis=1)
        correct = (xp.argmax(logits, axis=1) == hard).sum()       # stays on the device
        return loss, correct, t_data

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
                  f"{self.schedule_note()}, evaluated on {n_test:,} of "
                  f"{self.data.get('test_total', n_test):,} {self.eval_set_name} images -> {self.out}")
            with ops.use(self.impl or {}):
                self.make_plan(evaluate)            # a time budget: calibrate, fix the steps, print the plan
            self.write_config()                     # config.json: the configuration and the plan (atomic)
            self.start_window()                     # the steps a re-plan measures begin here
            if self.exercises is not None:           # which topics run the learner's code
                print(self.impl.describe())
            self.throughput.reset()                 # a new segment: this process's steps only
            self._bar = progress_bar(self.progress, self.total_steps, self.global_step,
                                     f"epoch {self.epoch + 1}/{self.num_epochs}")
            try:
                with ops.use(self.impl or {}):
                    while self.epoch < self.num_epochs:
                        self._run_epoch()
            except KeyboardInterrupt:
                self.save_on_interrupt()
                raise
            finally:
                self._bar.close()
        return self.history

    def _run_epoch(self):
        cfg, bar = self.cfg, self._bar
        epoch = self.epoch
        order = self.epoch_order(epoch)
        bar.set_description(f"epoch {epoch + 1}/{self.num_epochs}", refresh=False)
        p = self.partial
        self.tally.start(p)                         # device sums continue from the partial ones
        while self.step_in_epoch < self.steps_per_epoch and self.steps_left():
            with deferred_interrupt():              # Ctrl-C waits for the step and its counters
                loss, correct, t_data = self.train_step(epoch, self.step_in_epoch, order)
                self.tally.add(loss, correct, cfg.batch_size, t_data)     # device arithmetic, no wait
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
                f"{self.last_good_note()}. Try a lower --lr or a smaller clip norm.")

    def _evaluate_and_save(self):
        """Evaluate, then write best.npz (on a new best) and last.npz, then metrics.csv and curves.png."""
        p, seg = self.partial, self.throughput
        t_eval = time.perf_counter()
        self.evaluation_started()
        final = "x_test_full" in self.data and self.global_step == self.total_steps   # cfg.final_test
        x_eval = self.data["x_test_full" if final else "x_test"]
        # EMA weights, flip TTA: if switched on; final_test: the last evaluation on the whole test set
        test_loss, test_acc, extra = self.evaluate_on(evaluate, x_eval, self.data["y_test_full" if final else "y_test"])
        if not math.isfinite(test_loss):
            raise TrainingDiverged(f"the evaluation loss became {test_loss} after epoch {self.epoch + 1} "
                                   f"(step {self.global_step}); {self.last_good_note()}. Try a lower --lr.")
        self.follow_plan(len(x_eval))   # a time budget re-plans its horizon (minivit/train/replan.py)
        elapsed = self.elapsed + p["time_s"] + (time.perf_counter() - t_eval)
        row = dict(epoch=self.epoch + 1, step=self.global_step, epoch_frac=self.global_step / self.steps_per_epoch,
                   train_loss=p["loss_sum"] / p["seen"], train_acc=p["correct"] / p["seen"],
                   test_loss=test_loss, test_acc=test_acc, eval_images=len(x_eval),
                   eval_set=self.eval_set, lr=self.opt.lr,
                   time_s=elapsed, images_per_s=seg.images_per_s, data_frac=seg.data_frac, **extra)
        self._bar.write(
            f"epoch {self.epoch + 1:3d}: train loss {row['train_loss']:.4f} acc {100 * row['train_acc']:.2f}% | "
            f"{self.eval_set} loss {test_loss:.4f} {'test acc (all, final)' if final else self.test_label} {100 * test_acc:.2f}%{self.options_note(extra)} | {row['images_per_s']:.0f} img/s, "
            f"data pipeline {100 * row['data_frac']:.1f}% of step time | {elapsed / 60:.1f} min")
        # best.npz is chosen on validation images only (--val-split); without them it is the latest
        # evaluated model (the final one at the end): nothing is ever selected on the test set.
        choose = self.eval_set == "val"
        after = dict(epoch=self.epoch + 1, step_in_epoch=0, history=self.history + [row],
                     partial=dict(loss_sum=0.0, correct=0, seen=0, time_s=0.0, data_s=0.0),
                     best_acc=max(test_acc, self.best_acc) if choose else test_acc, elapsed=elapsed)
        self.commit(after, new_best=test_acc > self.best_acc if choose else True)
        seg.reset()
        self.write_metrics()
        self.evaluation_done()

    def write_metrics(self):
        write_metrics_csv(self.history, self.out / "metrics.csv")
        try:
            from minivit.plots import plot_curves

            plot_curves(self.history, self.out / "curves.png",
                        title=f"{self.cfg.dataset}: best {self.test_label} "
                              f"{100 * max(r['test_acc'] for r in self.history):.2f}%")
        except Exception as e:  # a plotting problem must never lose a training run
            print(f"warning: could not draw curves.png ({e})")
