"""The training step's running sums, kept on the device and read to the host at most once a second.

On a GPU, ``float(loss)`` makes the host wait until the step's work is done, and the next step
is queued only then: the GPU idles between steps. So the trainer never reads a step's numbers.
It adds them to sums *on the device* and reads the sums when the progress bar is due (every
``interval`` seconds, on ``clock``), before an evaluation and before a checkpoint:

    tally.start(partial)                    # sums continue from the run's saved partial sums
    per step:  tally.add(loss, correct, B, data_timer)     # device arithmetic only
    if tally.due(): tally.read(partial)     # one synchronization: partial['loss_sum'], ... updated

The sums are added in the same order as a step-by-step loop would (a float64 running total that
starts from the saved one), so when the reads happen changes no number: resumed runs stay bit for
bit. Time: the steps of one read interval took the wall time between two reads (a read waits for
the work queued before it); the data pipeline's share is measured with device events (CuPy's
``cuda.Event``) and read at the same time. On NumPy, nothing is queued and the host clock suffices.
"""
from __future__ import annotations

import math
import time

import numpy as np

from minivit.backend import to_numpy


class DataTimer:
    """Times the data pipeline of one step: host clock on NumPy, device events on a GPU."""

    def __init__(self, xp):
        self.xp = xp
        self.on_device = xp is not np

    def start(self):
        if not self.on_device:
            return time.perf_counter()
        ev = self.xp.cuda.Event()
        ev.record()
        return ev

    def stop(self, started):
        """Seconds (NumPy) or a pair of events read later by :meth:`seconds`."""
        if not self.on_device:
            return time.perf_counter() - started
        ev = self.xp.cuda.Event()
        ev.record()
        return started, ev

    def seconds(self, mark) -> float:
        if not isinstance(mark, tuple):
            return float(mark)
        return self.xp.cuda.get_elapsed_time(*mark) / 1e3      # both events done after a read


class Tally:
    """Loss and accuracy sums of the steps on the device; host reads at most every ``interval`` s."""

    def __init__(self, xp, interval=1.0, clock=time.perf_counter):
        self.xp, self.interval, self.clock = xp, interval, clock
        self.timer = DataTimer(xp)
        self.start(dict(loss_sum=0.0, correct=0))

    def start(self, partial):
        """Continue the sums of ``partial`` (a run's saved ``loss_sum`` and ``correct``)."""
        xp = self.xp
        self.loss_sum = xp.asarray(np.float64(partial["loss_sum"]))
        self.correct = xp.asarray(np.int64(partial["correct"]))
        self.steps, self.images, self.data_marks = 0, 0, []
        self.last_read = self.clock()

    def add(self, loss, correct, images, data_mark):
        """One step: ``loss`` its mean loss and ``correct`` its count (device 0-d arrays or numbers)."""
        xp = self.xp
        self.loss_sum = self.loss_sum + xp.asarray(loss).astype(np.float64) * images
        self.correct = self.correct + xp.asarray(correct).astype(np.int64)
        self.steps += 1
        self.images += images
        self.data_marks.append(data_mark)

    def due(self) -> bool:
        return self.steps > 0 and self.clock() - self.last_read >= self.interval

    def read(self, partial, throughput=None):
        """Bring the sums to the host (one synchronization) into ``partial``; add the steps' images and
        times to ``throughput``. Returns the number of steps read (0: nothing new, nothing done)."""
        if self.steps == 0:
            return 0
        sums = to_numpy(self.xp.stack([self.loss_sum, self.correct.astype(np.float64)]))
        now = self.clock()
        step_s = now - self.last_read
        data_s = sum(self.timer.seconds(m) for m in self.data_marks)
        partial["loss_sum"], partial["correct"] = float(sums[0]), int(sums[1])
        partial["seen"] += self.images
        partial["time_s"] += step_s
        partial["data_s"] += data_s
        if throughput is not None:
            throughput.add(self.images, step_s, data_s)
        steps = self.steps
        self.steps, self.images, self.data_marks, self.last_read = 0, 0, [], now
        return steps

    @staticmethod
    def finite(partial) -> bool:
        return math.isfinite(partial["loss_sum"])
