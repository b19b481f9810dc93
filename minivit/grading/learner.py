"""The grader's side of the child process that runs the learner's code (``child.py``).

``LearnerProcess`` starts one child per topic (``spawn``), waits for it under the topic's
deadline (the import counts too) and kills it when the deadline passes, so neither an endless
loop inside a bare ``except:`` nor a ``while True`` at the top of the file can hang the grader.
``LearnerFunctions`` is what the checks see as ``ns``: ``ns["gelu_forward"](x)`` sends the call to
the child and returns its result as plain data (NumPy arrays, tuples, lists, dicts, scalars);
a forward's cache comes back as a ``wire.Handle`` that the backward call takes back to the child.
"""
from __future__ import annotations

import builtins
import multiprocessing
import sys
import types

import numpy as np

from minivit.grading import child, wire


class TimedOut(BaseException):
    """The topic's wall-clock limit passed (a BaseException: a check's ``except Exception`` lets it through)."""

    def __init__(self, limit, doing):
        super().__init__(f"timed out after {limit:g} s in {doing}")
        self.doing = doing


class ChildDied(BaseException):
    """The child process ended without answering (os._exit, a crash, killed from outside)."""


class ReferenceUsed(BaseException):
    """The learner's function reached minivit's own implementation of a function of its topic
    (``trap.py``). A BaseException: the checks' ``except Exception`` lets it through."""


class LearnerException(Exception):
    """An exception of the learner's code whose own type cannot be rebuilt here (SystemExit, ...)."""


def _rebuild(info):
    """The learner's exception as an exception of the same builtin type, carrying its description."""
    cls = getattr(builtins, info["type"], None)
    e = None
    if isinstance(cls, type) and issubclass(cls, Exception):
        try:
            e = cls(info["message"])
        except Exception:
            e = None
    if e is None:
        e = LearnerException(f"{info['type']}: {info['message']}")
    e.learner_description = info["description"]     # "ValueError: ... (ex03_attention.py, line 12, in ...)"
    e.learner_who = info["who"]                       # the learner's function the exception came from
    return e


class LearnerProcess:
    """One child process running one topic's file; every call waits at most until ``deadline``."""

    def __init__(self, topic, folder, deadline, limit, output_path, jail=None):
        self.topic, self.folder, self.deadline, self.limit = topic, folder, deadline, limit
        self.output_path, self.jail = str(output_path), jail
        self.process = self.conn = self.reader = None
        self.functions, self.refs, self.number = (), {}, 0

    def start(self):
        """Spawn the child and import the file -> None, or the import's error message."""
        ctx = multiprocessing.get_context("spawn")
        self.conn, theirs = ctx.Pipe()
        topic = (self.topic.name, self.topic.file, tuple(self.topic.functions))
        self.reader, self.number = wire.FrameReader(self.conn.fileno()), 0
        jail = self.jail.child_args(self.limit) if self.jail is not None else None
        self.process = ctx.Process(target=child.serve, daemon=True,
                                   args=(theirs, topic, str(self.folder), self.output_path, jail))
        main = sys.modules.get("__main__")
        sys.modules["__main__"] = types.ModuleType("__main__")     # the child must not re-run the caller's
        try:                                                        # script (spawn does, without this)
            self.process.start()
        finally:
            sys.modules["__main__"] = main
        theirs.close()
        msg = self._receive(f"the import of {self.topic.file} (code at the top level of the file)")
        if msg[0] == "import_error":
            self.stop()
            return msg[1]
        self.functions, self.refs = tuple(msg[1]["functions"]), msg[1]["refs"]
        return None

    @property
    def alive(self):
        return self.process is not None and self.process.is_alive()

    def _receive(self, doing):
        try:
            pid, number, msg = self.reader.read(self.deadline)
        except TimeoutError:
            self.kill()
            raise TimedOut(self.limit, doing) from None
        except (EOFError, OSError):
            self.process.join(1)
            code = self.process.exitcode
            self.kill()
            raise ChildDied(f"your code ended the grading process (exit code {code}) in {doing}") from None
        except wire.ProtocolError as e:
            self.kill()
            raise ChildDied(f"your code wrote to the grader's pipe in {doing} ({e}): the rest of the topic "
                            "was not graded; do not write to file descriptors you did not open") from None
        where = "at import" if 0 in (self.number, number) else f"in {doing}"    # request 0: the import
        if pid != self.process.pid:
            self.kill()
            raise ChildDied(f"your code forked a process {where} (a second process answered the grader): "
                            "the rest of the topic was not graded; remove the os.fork()") from None
        if number != self.number:
            self.kill()
            raise ChildDied(f"an answer out of step came from your process {where}: the rest of the topic was "
                            "not graded (does your code fork or write to the grader's pipe?)") from None
        return msg

    def request(self, *req, doing):
        if not self.alive:
            raise ChildDied(f"the grading process is not running (it ended earlier); {doing} was not run")
        self.number += 1
        try:
            self.conn.send((self.number, *req))
        except (OSError, ValueError):
            self.kill()
            raise ChildDied(f"your code ended the grading process before {doing}") from None
        return self._receive(doing)

    def call(self, fname, args, kwargs):
        msg = self.request("call", fname, list(args), dict(kwargs), doing=fname)
        if type(msg) is not tuple or msg[0] not in ("raise", "ok") or len(msg) != (3 if msg[0] == "raise" else 4):
            self.kill()
            raise ChildDied(f"an answer of the wrong form came from your process in {fname}")
        reached = msg[-1]
        if reached:
            raise ReferenceUsed(_reached_message(fname, reached))
        if msg[0] == "raise":
            raise _rebuild(msg[1])
        _, result, changed, _ = msg
        for path, value in changed:                 # in-place changes show in the caller's arrays too
            _write_back(args, kwargs, path, value)
        return result

    def swap(self, fnames):
        """Put minivit's reference in place of the learner's ``fnames`` (module globals); [] restores."""
        self.request("swap", list(fnames), doing="swapping in " + (", ".join(fnames) or "your functions"))

    def reset(self):
        self.request("reset", doing="a reset")

    def stop(self):
        if self.alive:
            try:
                self.conn.send((0, "stop"))
            except (OSError, ValueError):
                pass
            self.process.join(2)
        self.kill()

    def kill(self):
        if self.process is not None and self.process.is_alive():
            self.process.kill()
            self.process.join(5)
        if self.conn is not None:
            self.conn.close()


def _reached_message(fname, reached):
    what = reached[0]
    if what.startswith("file "):
        return f"{fname} reads minivit's {what}, which holds the answer; write it yourself"
    if what.startswith("program "):
        return (f"{fname} starts another program ({what[len('program '):]}), which is not allowed while it is "
                "graded; write it yourself")
    via = "" if what == fname else " (through your code)"
    return f"{fname} calls minivit's own {what}{via}; write it yourself"


def _write_back(args, kwargs, path, value):
    key = path[0]
    holder = args[key] if isinstance(key, int) else kwargs.get(key)
    if len(path) == 2 and isinstance(holder, dict):
        target = holder.get(path[1])
        if isinstance(target, np.ndarray) and isinstance(value, np.ndarray) and target.shape == value.shape:
            np.copyto(target, value, casting="unsafe")
        else:
            holder[path[1]] = value
    elif isinstance(holder, np.ndarray) and isinstance(value, np.ndarray) and holder.shape == value.shape:
        np.copyto(holder, value, casting="unsafe")


class LearnerFunctions:
    """``ns`` of the checks: ``ns[fname](*args)`` runs the learner's function in the child."""

    def __init__(self, process):
        self.process = process

    def __contains__(self, fname):
        return fname in self.process.functions

    def __iter__(self):
        return iter(self.process.functions)

    def __getitem__(self, fname):
        if fname not in self.process.functions:
            raise KeyError(fname)
        process = self.process

        def remote(*args, **kwargs):
            return process.call(fname, args, kwargs)
        remote.__name__ = fname
        return remote
