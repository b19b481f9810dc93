"""Device-to-host synchronizations of the simulated CuPy: counted, and optionally forbidden.

On a GPU, CuPy queues work and returns at once; the host waits only when it needs a value
(``float(x)``, ``x.item()``, printing, ``asnumpy``), a shape that depends on values (boolean-mask
indexing, ``nonzero``, ``unique``, ...) or an explicit ``synchronize()``. Each wait stalls the
queue, so a training step should make none. The simulation records every such point:

    with syncs.counting() as log:       # log.events: [(kind, "file.py:123"), ...]
        trainer.train_step(...)
    assert log.count == 0, log.events

    with syncs.forbidden():             # raises SyncError at the first one (its traceback says where)
        ...
"""
from __future__ import annotations

import contextlib
import os
import sys

_HERE = os.path.dirname(os.path.abspath(__file__))
_logs: list["SyncLog"] = []       # the active counting() logs, innermost last
_forbid = [0]
total = [0]                       # every synchronization since import


class SyncError(RuntimeError):
    """A synchronization happened where :func:`forbidden` forbids one."""


class SyncLog:
    def __init__(self):
        self.events: list[tuple[str, str]] = []

    @property
    def count(self) -> int:
        return len(self.events)

    def kinds(self) -> list[str]:
        return [k for k, _ in self.events]

    def __repr__(self):
        return f"SyncLog({self.count} syncs: {self.events})"


def _caller() -> str:
    """'file.py:line' of the first frame outside the simulation."""
    f = sys._getframe(2)
    while f is not None and os.path.dirname(os.path.abspath(f.f_code.co_filename)) == _HERE:
        f = f.f_back
    return f"{os.path.basename(f.f_code.co_filename)}:{f.f_lineno}" if f is not None else "?"


def record(kind: str) -> None:
    """Note one synchronization of ``kind`` (e.g. 'float()', 'boolean mask')."""
    total[0] += 1
    if _forbid[0]:
        raise SyncError(f"device-to-host synchronization ({kind}) at {_caller()}, where none is allowed")
    if _logs:
        event = (kind, _caller())
        for log in _logs:
            log.events.append(event)


@contextlib.contextmanager
def counting():
    """Record the synchronizations made inside the block into the SyncLog it yields."""
    log = SyncLog()
    _logs.append(log)
    try:
        yield log
    finally:
        _logs.remove(log)


@contextlib.contextmanager
def forbidden():
    """Raise SyncError at any synchronization inside the block."""
    _forbid[0] += 1
    try:
        yield
    finally:
        _forbid[0] -= 1
