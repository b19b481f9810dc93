"""Simulated ``cupy.cuda``: the device, streams and events (for timing); each wait is recorded."""
import time

from minivit.simcupy import syncs


class Device:
    def __init__(self, device=0):
        self.id = int(device)

    def synchronize(self):
        syncs.record("Device.synchronize()")


class Stream:
    def synchronize(self):
        syncs.record("Stream.synchronize()")


Stream.null = Stream()


class runtime:
    """The few ``cupy.cuda.runtime`` calls minivit makes."""

    @staticmethod
    def deviceSynchronize():
        syncs.record("runtime.deviceSynchronize()")

    @staticmethod
    def getDeviceCount():
        return 1


class Event:
    """Records the host clock when the queue reaches it (at once, in the simulation)."""

    def __init__(self, block=False, disable_timing=False, interprocess=False):
        self._t = None

    def record(self, stream=None):
        self._t = time.perf_counter()

    def synchronize(self):
        syncs.record("Event.synchronize()")

    @property
    def done(self):
        return self._t is not None


def get_elapsed_time(start, end):
    """Milliseconds between two recorded events (CuPy needs ``end`` done: synchronize it first)."""
    if start._t is None or end._t is None:
        raise RuntimeError("get_elapsed_time: an event was never recorded (simulated CuPy)")
    return (end._t - start._t) * 1e3
