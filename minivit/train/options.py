"""The opt-in training pieces a :class:`minivit.train.trainer.Trainer` can switch on, all off by default.

``TrainerOptions`` is a mixin of the Trainer (like ``RunCheckpoints``); it uses the trainer's
``cfg``, ``model``, ``opt``, ``data``, ``aug``, ``parallel`` and ``batch_transform``. With every
option off, none of its hooks changes a number: the default run is the plain loop of train.py,
bit for bit (tests/test_trainer_options.py).

* ``cfg.ema_decay > 0``: keep an exponential moving average of the weights (minivit/train/ema.py),
  updated after every optimizer step; every evaluation uses the EMA weights (the row says
  ``eval_weights='ema'``), so best.npz is chosen on them. The training weights themselves are
  untouched: with and without the EMA they follow the same path, bit for bit. last.npz and
  best.npz hold the EMA under ``ema/`` (restored by --resume bit-exactly); ``eval`` and
  ``model_from_checkpoint`` use the EMA weights of a checkpoint that has them.
* ``cfg.flip_tta``: every evaluation also reports the horizontal-flip TTA numbers
  (minivit/train/tta.py: mean of the two views' softmax) as ``test_acc_tta`` / ``test_loss_tta``,
  next to the plain ``test_acc`` / ``test_loss`` (the same numbers as without TTA). Selection
  (best.npz) stays on the plain accuracy. Costs a second forward pass per evaluated image.
* ``cfg.optimizer = 'muon'``: Muon for the blocks' 2D weight matrices, AdamW for the rest
  (minivit/optim/muon.py), with the recipe's learning rate, betas and weight decay.
* ``cfg.resize = [[0.0, 24], [0.5, 32]]``: progressive resizing (minivit/train/resize_schedule.py): each
  training batch is resized (bilinear) to its step's size; the model needs
  ``flexible_resolution=True`` and the last stage must be its own size (evaluation is at it). The
  size is a function of the step counter, so --resume and --steps need nothing more. Not with
  --time-budget yet: the calibration would time the first stage's steps only.
"""
from __future__ import annotations

import contextlib

from minivit.storage.checkpoint import CheckpointError, extra_arrays
from minivit.train.ema import EMA
from minivit.interpolate import resize_bilinear
from minivit.optim.muon import Muon
from minivit.train.resize_schedule import ResizeSchedule
from minivit.train.tta import evaluate_tta

OPTIMIZERS = ("adamw", "muon")


class TrainerOptions:
    """EMA, flip TTA, Muon and progressive resizing for the Trainer (a mixin; see the module docstring)."""

    ema = None
    resize = None
    forced_size = None      # the calibration of a time budget runs each size's steps (minivit/train/planned_run.py)

    def setup_options(self):
        """Called once the model and the AdamW optimizer exist (Trainer.__init__)."""
        cfg = self.cfg
        if cfg.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {OPTIMIZERS}, got {cfg.optimizer!r}")
        if not 0.0 <= cfg.ema_decay < 1.0:
            raise ValueError(f"ema_decay must be in [0, 1) (0: no EMA), got {cfg.ema_decay}")
        if cfg.optimizer == "muon":
            self.opt = Muon(self.model.named_parameters(), lr=cfg.lr, betas=tuple(cfg.betas),
                            weight_decay=cfg.weight_decay)
        self.ema = EMA(self.model, cfg.ema_decay) if cfg.ema_decay else None
        if cfg.resize:
            mc = self.model.config
            if not mc.flexible_resolution:
                raise ValueError("progressive resizing (resize) needs a model with flexible_resolution=True "
                                 "(its position embeddings interpolated to each step's grid)")
            self.resize = ResizeSchedule(cfg.resize, patch_size=mc.patch_size)
            if self.resize.stages[-1][1] != mc.image_size:
                raise ValueError(f"the last resize stage must be the model's size {mc.image_size} "
                                 f"(evaluation runs at it), got {self.resize.stages[-1][1]}")

    def resize_for_step(self, x):
        """Progressive resizing: the normalized batch (B, H, W, C) at this step's size (or x itself)."""
        if self.resize is None:
            return x
        size = self.forced_size or self.resize.size_at(self.global_step, self.total_steps)
        return x if size == x.shape[1] else resize_bilinear(x, size, size)

    def after_optimizer_step(self):
        """Called after every ``opt.step()``."""
        if self.ema is not None:
            self.ema.update(self.model)

    def extra_state(self) -> dict:
        """Training state beyond the model and the optimizer, for last.npz / best.npz."""
        return self.ema.checkpoint_arrays() if self.ema is not None else {}

    def load_options(self, path):
        """--resume: restore the EMA from the checkpoint ``path``."""
        if self.ema is None:
            return
        state = extra_arrays(path, EMA.PREFIX)
        if not state:
            raise CheckpointError(f"{path}: cannot resume from it: it holds no EMA state (ema/...)")
        try:
            self.ema.load_state_dict(state)
        except (KeyError, ValueError) as e:
            raise CheckpointError(f"{path}: cannot resume from it: {e.args[0] if e.args else e}") from e

    def evaluate_test(self, evaluate):
        """(test_loss, test_acc, extra metrics) on the test images: with the EMA weights when there
        is an EMA, and with the flip TTA numbers in the extras when ``cfg.flip_tta``.
        evaluate: ``minivit.train.trainer.evaluate`` (passed in: this module cannot import train)."""
        cfg = self.cfg
        args = (self.model, self.data["x_test"], self.data["y_test"], self.aug, self.data["num_classes"],
                cfg.eval_batch_size, self.batch_transform)
        forward = self.parallel.forward if self.parallel else None
        weights = self.ema.swapped(self.model) if self.ema is not None else contextlib.nullcontext()
        extra = {"eval_weights": "ema"} if self.ema is not None else {}
        with weights:
            if not cfg.flip_tta:
                test_loss, test_acc, _ = evaluate(*args, forward=forward)
                return test_loss, test_acc, extra
            r = evaluate_tta(*args, forward=forward)
        return r["loss"], r["acc"], {**extra, "test_loss_tta": r["loss_tta"], "test_acc_tta": r["acc_tta"]}

    @staticmethod
    def options_note(extra: dict) -> str:
        """What an evaluation line adds for the options ('' when all are off)."""
        note = " (EMA weights)" if extra.get("eval_weights") == "ema" else ""
        if "test_acc_tta" in extra:
            note += f", with flip TTA {100 * extra['test_acc_tta']:.2f}%"
        return note
