"""The opt-in training pieces a :class:`minivit.train.trainer.Trainer` can switch on, all off by default.

:class:`Options` is an object the Trainer holds (``trainer.options``); it is told the model, the
step and the images it works on, and never reaches into the trainer. With every option off, none
of its methods changes a number: the default run is the plain loop, bit for bit
(tests/test_trainer_options.py).

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
  (minivit/optim/muon.py), with the recipe's learning rate, betas and weight decay; chosen, like
  every optimizer, by ``minivit.optim.make_optimizer`` (not here).
* ``cfg.resize = [[0.0, 24], [0.5, 32]]``: progressive resizing (minivit/train/resize_schedule.py): each
  training batch is resized (bilinear) to its step's size; the model needs
  ``flexible_resolution=True`` and the last stage must be its own size (evaluation is at it). The
  size is a function of the step counter, so --resume and --steps need nothing more. Not with
  --time-budget yet: the calibration would time the first stage's steps only.
"""
from __future__ import annotations

import contextlib

from minivit.interpolate import resize_bilinear
from minivit.optim.factory import CONFIG_OPTIMIZERS as OPTIMIZERS  # noqa: F401 (what --optimizer may name)
from minivit.storage.checkpoint import CheckpointError, extra_arrays
from minivit.train.budget import FULL
from minivit.train.ema import EMA
from minivit.train.resize_schedule import ResizeSchedule
from minivit.train.tta import evaluate_tta


class Options:
    """EMA, flip TTA and progressive resizing of one run (see the module docstring).

    ema: an :class:`EMA` of the model's weights, or None; resize: a :class:`ResizeSchedule`, or
    None; flip_tta: whether evaluations add the flip TTA numbers."""

    def __init__(self, cfg, model):
        """cfg: the run's TrainConfig (ema_decay, flip_tta, resize); model: the ViT being trained.
        ValueError for an option out of range or one the model cannot take."""
        if not 0.0 <= cfg.ema_decay < 1.0:
            raise ValueError(f"ema_decay must be in [0, 1) (0: no EMA), got {cfg.ema_decay}")
        self.flip_tta = cfg.flip_tta
        self.ema = EMA(model, cfg.ema_decay) if cfg.ema_decay else None
        self.resize = None
        if cfg.resize:
            mc = model.config
            if not mc.flexible_resolution:
                raise ValueError("progressive resizing (resize) needs a model with flexible_resolution=True "
                                 "(its position embeddings interpolated to each step's grid)")
            self.resize = ResizeSchedule(cfg.resize, patch_size=mc.patch_size)
            if self.resize.stages[-1][1] != mc.image_size:
                raise ValueError(f"the last resize stage must be the model's size {mc.image_size} "
                                 f"(evaluation runs at it), got {self.resize.stages[-1][1]}")

    # -- in the training step --------------------------------------------------------------
    def resize_batch(self, x, step: int, total_steps: int, size: int | None = None):
        """Progressive resizing: the normalized batch x (B, H, W, C) at the size of the run's step
        ``step`` of ``total_steps`` (or at ``size``, given: the calibration times each size),
        (B, size, size, C); x itself when resizing is off or the size is already x's."""
        if self.resize is None:
            return x
        size = size or self.resize.size_at(step, total_steps)
        return x if size == x.shape[1] else resize_bilinear(x, size, size)

    def after_optimizer_step(self, model):
        """Called after every optimizer step: the EMA's update, if any."""
        if self.ema is not None:
            self.ema.update(model)

    def step_kinds(self) -> list:
        """The schedule's step kinds and the fraction of the steps each takes, [(kind, fraction), ...]:
        every step ``"full"``, or with progressive resizing one kind per size (e.g. ``"24px"``,
        minivit/train/resize_schedule.py). Token dropping needs no kind of its own: every training step
        drops the same fraction, so the calibration's steps already do."""
        return FULL if self.resize is None else self.resize.step_kinds()

    def size_of_kind(self, kind: str) -> int | None:
        """The image size of a step of ``kind`` (None: 'full', the model's own)."""
        return None if kind == "full" else self.resize.size_of_kind(kind)

    # -- checkpoints -------------------------------------------------------------------------
    def extra_state(self) -> dict:
        """Training state beyond the model and the optimizer, for last.npz / best.npz."""
        return self.ema.checkpoint_arrays() if self.ema is not None else {}

    def state_dict(self):
        """What the calibration of a time budget puts back afterwards (the EMA's arrays, or None)."""
        return self.ema.state_dict() if self.ema is not None else None

    def load_state_dict(self, state):
        if self.ema is not None:
            self.ema.load_state_dict(state)

    def load(self, path):
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

    # -- evaluation --------------------------------------------------------------------------
    def evaluate(self, evaluate, model, x, y, aug, num_classes, batch_size, batch_transform=None, forward=None):
        """(loss, acc, extra metrics) on the images x (N, H, W, C) uint8 with labels y (N,): with the
        EMA weights when there is an EMA, and with the flip TTA numbers in the extras when flip_tta.
        evaluate: the trainer's evaluation function (``minivit.train.evaluation.evaluate``);
        forward: the threaded forward (minivit/fast/parallel.py), or None."""
        args = (model, x, y, aug, num_classes, batch_size, batch_transform)
        weights = self.ema.swapped(model) if self.ema is not None else contextlib.nullcontext()
        extra = {"eval_weights": "ema"} if self.ema is not None else {}
        with weights:
            if not self.flip_tta:
                test_loss, test_acc, _ = evaluate(*args, forward=forward)
                return test_loss, test_acc, extra
            r = evaluate_tta(*args, forward=forward)
        return r["loss"], r["acc"], {**extra, "test_loss_tta": r["loss_tta"], "test_acc_tta": r["acc_tta"]}

    @staticmethod
    def note(extra: dict) -> str:
        """What an evaluation line adds for the options ('' when all are off)."""
        note = " (EMA weights)" if extra.get("eval_weights") == "ema" else ""
        if "test_acc_tta" in extra:
            note += f", with flip TTA {100 * extra['test_acc_tta']:.2f}%"
        return note
