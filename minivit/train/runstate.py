"""A training run's state on disk: ``last.npz`` and ``best.npz`` that always agree, and never a
non-finite model.

:class:`RunCheckpoints` is the part of :class:`minivit.train.trainer.Trainer` that writes checkpoints
(``Trainer`` inherits it; it uses the trainer's ``out``, ``model``, ``opt``, ``cfg``, position and
``extra_state``).

After an evaluation the trainer *commits* its outcome in three moves:

1. on a new best accuracy, ``best.npz`` (holding the new state and its accuracy);
2. the new state in memory (epoch, history, best accuracy...);
3. ``last.npz``.

Each file is written atomically (``minivit.storage.checkpoint``), but two files cannot be replaced at
once. So while a commit is under way it is remembered (``_pending``), and Ctrl-C at any point of it
saves a ``last.npz`` that records exactly the best that ``best.npz`` holds: the new one if
``best.npz`` was already replaced, else the old one (and ``--resume`` repeats the evaluation, with
the same result, since a resumed run is bit for bit the uninterrupted one).

A real Ctrl-C never lands inside a training step either: :func:`deferred_interrupt` holds it
until the step and its bookkeeping are done (a step half applied would make the resumed run
differ); a second Ctrl-C interrupts at once.

Before any checkpoint is written, every parameter and optimizer array is checked for NaN and inf:
a diverged model is never saved, and error messages name only a checkpoint that exists.
The training sums the trainer keeps on the device are read (and the loss checked) first.
"""
from __future__ import annotations

import contextlib
import signal
import threading
from pathlib import Path

from minivit.storage.checkpoint import nonfinite_arrays, read_meta, save_checkpoint


class TrainingDiverged(RuntimeError):
    """The loss, the evaluation loss or the parameters became NaN or infinite."""


@contextlib.contextmanager
def deferred_interrupt():
    """Hold Ctrl-C (SIGINT) until the block ends, then raise KeyboardInterrupt; a second Ctrl-C
    raises at once. Does nothing outside the main thread or where SIGINT has another handler."""
    if (threading.current_thread() is not threading.main_thread()
            or signal.getsignal(signal.SIGINT) is not signal.default_int_handler):
        yield
        return
    pressed = []

    def hold(signum, frame):
        if pressed:
            raise KeyboardInterrupt
        pressed.append(signum)

    signal.signal(signal.SIGINT, hold)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    if pressed:
        raise KeyboardInterrupt


class RunCheckpoints:
    """Checkpoint writing for the Trainer (a mixin; see the module docstring)."""

    _last_good = None             # the newest last.npz known to exist and be finite
    _pending = None               # an evaluation's outcome while its checkpoints are being written

    def read_device_sums(self):
        """Bring sums kept on the device into ``partial`` (the Trainer's, minivit/train/tally.py)."""

    def _meta(self):
        self.read_device_sums()       # before every checkpoint: the partial sums up to date, NaN checked
        return dict(train_config=self.cfg.to_dict(), epoch=self.epoch, step_in_epoch=self.step_in_epoch,
                    global_step=self.global_step, partial=self.partial, history=self.history,
                    best_acc=self.best_acc, elapsed=self.elapsed, classes=self.data["classes"],
                    dataset=self.cfg.dataset, plan=self.plan and self.plan.to_dict())   # plan: minivit/train/budget.py

    def save(self, name="last.npz"):
        """Write a checkpoint of the current state; refuses (TrainingDiverged) a non-finite model."""
        path = self._write(name, self._meta())
        if name == "last.npz":
            self._last_good = path
        return path

    def last_good_note(self) -> str:
        """'the last good checkpoint is ...', naming only a checkpoint that exists (and is finite)."""
        if self._last_good is not None and Path(self._last_good).is_file():
            return f"the last good checkpoint is {self._last_good}"
        return "no checkpoint of this run was saved yet (it diverged before its first evaluation)"

    def commit(self, state: dict, new_best: bool):
        """Record an evaluation: ``state`` holds the trainer's attributes after it (epoch, history,
        best_acc ...). Writes best.npz (when ``new_best``), then updates the trainer, then last.npz."""
        self._pending = dict(state=state, new_best=new_best)
        if new_best:
            self._write("best.npz", {**self._meta(), **state})
        self.__dict__.update(state)
        self._pending = None
        self.save("last.npz")

    def _write(self, name, meta):
        extra = self.extra_state()        # e.g. an EMA's arrays (minivit/train/options.py)
        bad = nonfinite_arrays({**self.model.state_dict(), **self.opt.state_dict(), **extra})
        if bad:
            raise TrainingDiverged(f"not saving {self.out / name}: {', '.join(bad[:3])}"
                                   f"{' ...' if len(bad) > 3 else ''} hold NaN or inf; {self.last_good_note()}")
        return save_checkpoint(self.out / name, self.model, self.opt, meta, extra=extra)

    def save_on_interrupt(self):
        """Ctrl-C: save last.npz, agreeing with best.npz whatever point of a commit was interrupted."""
        pending, self._pending = self._pending, None
        if pending is not None:
            state = pending["state"]
            on_disk = read_meta(self.out / "best.npz") if pending["new_best"] else {}
            if not pending["new_best"] or (on_disk.get("global_step") == state.get("global_step", self.global_step)
                                          and on_disk.get("best_acc") == state["best_acc"]):
                self.__dict__.update(state)       # best.npz holds this evaluation (or none is due): record it
        try:
            self.save("last.npz")
        except TrainingDiverged as e:
            print(f"\ninterrupted: {e}")
            return
        print(f"\ninterrupted: saved {self.out / 'last.npz'} (resume with --resume --out {self.out})")
