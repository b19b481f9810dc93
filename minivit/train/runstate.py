"""A training run's state on disk: ``last.npz`` and ``best.npz`` that always agree, and never a
non-finite model.

:class:`RunState` is the object of a :class:`minivit.train.trainer.Trainer` that writes its checkpoints
(``trainer.run``). It is given the run folder, the model, the optimizer and two functions of the
trainer: ``meta()`` (the checkpoint's metadata: position, history, plan...) and ``extra_state()``
(e.g. the EMA's arrays); an evaluation's outcome is applied to the trainer by the ``apply`` it is
handed.

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
import json
import signal
import threading
from pathlib import Path

from minivit.storage.checkpoint import CheckpointError, load_checkpoint, nonfinite_arrays, read_meta, save_checkpoint
from minivit.storage.tempfiles import atomic_file
from minivit.train.resume_check import check_config_file, check_resumable


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


class RunState:
    """The checkpoints of one run in its folder ``out`` (see the module docstring).

    model, opt: what every checkpoint holds (parameters, optimizer state); meta(): the trainer's
    metadata now (it reads the device sums first, so the partial sums are up to date and checked);
    extra_state(): further arrays to save ({} or ``ema/...``)."""

    def __init__(self, out, model, opt, meta, extra_state):
        self.out, self.model, self.opt = Path(out), model, opt
        self.meta, self.extra_state = meta, extra_state
        self.last_good = None      # the newest last.npz known to exist and be finite
        self.pending = None        # an evaluation's outcome while its checkpoints are being written

    def load(self, path, cfg, exercises, options) -> dict:
        """--resume from the checkpoint ``path``: refused (CheckpointError) unless it is this run (its
        keys, code and configuration: minivit/train/resume_check.py); loads the model, the optimizer
        and the options' state (the EMA) and returns the checkpoint's meta (the position)."""
        params, optim, meta = load_checkpoint(path)
        check_resumable(path, meta, cfg, exercises)     # the same run: keys, code, configuration
        notice = check_config_file(self.out, meta, path)         # config.json edited by hand: refused
        if notice:
            print(notice)
        try:
            self.model.load_state_dict(params)
            self.opt.load_state_dict(optim)
        except (KeyError, ValueError) as e:
            raise CheckpointError(f"{path}: cannot resume from it: {e.args[0] if e.args else e}") from e
        options.load(path)                 # the EMA, if any
        self.last_good = path
        return meta

    def write_config(self, config: dict):
        """config.json: the run's configuration, device, exercise topics and plan (the re-plans so far),
        written atomically (``--resume`` compares it with the checkpoint: minivit/train/resume_check.py)."""
        with atomic_file(self.out / "config.json", "w") as f:
            f.write(json.dumps(config, indent=2))

    def save(self, name="last.npz"):
        """Write a checkpoint of the current state; refuses (TrainingDiverged) a non-finite model."""
        path = self.write(name, self.meta())
        if name == "last.npz":
            self.last_good = path
        return path

    def last_good_note(self) -> str:
        """'the last good checkpoint is ...', naming only a checkpoint that exists (and is finite)."""
        if self.last_good is not None and Path(self.last_good).is_file():
            return f"the last good checkpoint is {self.last_good}"
        return "no checkpoint of this run was saved yet (it diverged before its first evaluation)"

    def commit(self, state: dict, new_best: bool, apply):
        """Record an evaluation: ``state`` holds the trainer's attributes after it (epoch, history,
        best_acc ...). Writes best.npz (when ``new_best``), then ``apply(state)`` updates the
        trainer, then last.npz."""
        self.pending = dict(state=state, new_best=new_best)
        if new_best:
            self.write("best.npz", {**self.meta(), **state})
        apply(state)
        self.pending = None
        self.save("last.npz")

    def write(self, name, meta):
        """Write checkpoint ``name`` with ``meta`` (atomically); TrainingDiverged for NaN or inf."""
        extra = self.extra_state()        # e.g. an EMA's arrays (minivit/train/options.py)
        bad = nonfinite_arrays({**self.model.state_dict(), **self.opt.state_dict(), **extra})
        if bad:
            raise TrainingDiverged(f"not saving {self.out / name}: {', '.join(bad[:3])}"
                                   f"{' ...' if len(bad) > 3 else ''} hold NaN or inf; {self.last_good_note()}")
        return save_checkpoint(self.out / name, self.model, self.opt, meta, extra=extra)

    def save_on_interrupt(self, global_step: int, apply):
        """Ctrl-C: save last.npz, agreeing with best.npz whatever point of a commit was interrupted
        (``apply(state)``: the pending evaluation recorded in the trainer, when best.npz holds it)."""
        pending, self.pending = self.pending, None
        if pending is not None:
            state = pending["state"]
            on_disk = read_meta(self.out / "best.npz") if pending["new_best"] else {}
            if not pending["new_best"] or (on_disk.get("global_step") == state.get("global_step", global_step)
                                          and on_disk.get("best_acc") == state["best_acc"]):
                apply(state)       # best.npz holds this evaluation (or none is due): record it
        try:
            self.save("last.npz")
        except TrainingDiverged as e:
            print(f"\ninterrupted: {e}")
            return
        print(f"\ninterrupted: saved {self.out / 'last.npz'} (resume with --resume --out {self.out})")
