"""The child process: the only place where the learner's code runs while grading.

Started by ``learner.LearnerProcess`` with multiprocessing's ``spawn`` method (the same on Linux,
macOS and Windows). It points file descriptors 1 and 2 at a file (so ``print``, ``sys.stdout``
and ``os.write(1, ...)`` end up in the report, never in ``grade --json``), imports one exercise
file, then answers requests until told to stop:

    (n, "call", fname, args, kwargs) -> ("ok", result, changed, reached) | ("raise", info, reached)
    (n, "swap", [fname, ...])        -> ("ok", None, [], [])  put the reference in place of those globals
    (n, "reset")                     -> ("ok", None, [], [])  forget the caches handed out so far

Every answer goes out framed (``wire.frame``) with the child's pid and the request's number ``n``,
so that a forked copy or a stray write is told apart. ``reached``: minivit's own functions of the
topic the call reached (``trap.py``: they are replaced by traps before the learner's file is
imported). When the grader isolates the learner's code (``sandbox.py``), the child drops to the
jail's user after loading the grader's modules and before importing the file.

``result`` is plain data (``wire.encode``); a forward's cache stays here and goes out as a
``wire.Handle``. ``changed`` lists the array arguments the call modified in place, with their new
values, so that the grader can see in-place updates (AdamW) and unwanted ones alike.
"""
from __future__ import annotations

import os
import sys
import traceback
import types
from pathlib import Path

OUTPUT_LIMIT_BYTES = 8 * 2 ** 20      # a printing loop must not fill the disk


class _Capped:
    """sys.stdout / sys.stderr of the child: writes to the output file until OUTPUT_LIMIT_BYTES in all,
    then drops the rest (correct code that prints a lot keeps working; the report says so)."""

    encoding, errors = "utf-8", "replace"

    def __init__(self, fd, budget):
        self.fd, self.budget = fd, budget

    def write(self, s):
        data = str(s).encode("utf-8", "replace")
        room = OUTPUT_LIMIT_BYTES - self.budget[0]
        if room > 0:
            os.write(self.fd, data[:room])
        self.budget[0] += len(data)
        return len(s)

    def flush(self):
        pass

    def isatty(self):
        return False

    def fileno(self):
        return self.fd

    def writable(self):
        return True


def _redirect_output(output_path):
    fd = os.open(output_path, os.O_WRONLY | os.O_APPEND)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)
    budget = [0]
    sys.stdout, sys.stderr = _Capped(1, budget), _Capped(2, budget)
    try:
        import resource
        import signal
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)     # writing past the limit fails instead of killing
        soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
        limit = OUTPUT_LIMIT_BYTES if hard == resource.RLIM_INFINITY else min(OUTPUT_LIMIT_BYTES, hard)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, hard))
    except (ImportError, AttributeError, ValueError, OSError):
        pass                                                # Windows: no limit on the output's size


def _code_names(code):
    names = set(code.co_names)
    for c in code.co_consts:
        if hasattr(c, "co_names"):
            names |= _code_names(c)
    return names


def _names_reached(module, fn, seen=None):
    """The global names ``fn``'s code uses, following the file's own helper functions (not the topic's)."""
    seen = set() if seen is None else seen
    names = set()
    for n in _code_names(getattr(fn, "__code__", None) or compile("", "", "exec")):
        helper = getattr(module, n, None)
        names.add(n)
        if n not in seen and isinstance(helper, types.FunctionType) and helper.__module__ == module.__name__:
            seen.add(n)
            names |= _names_reached(module, helper, seen)
    return names


def _references(module, functions, ref):
    """{fname: the other topic functions its code names, directly or through the file's own helpers}
    (the ones a reference swap may help)."""
    own = set(functions)
    out = {}
    for f in functions:
        fn = getattr(module, f, None)
        if getattr(fn, "__code__", None) is not None:
            out[f] = sorted((_names_reached(module, fn, set(own)) & own) - {f})
    return out


def _exception_info(e, folder):
    from minivit.grading.loading import _inside, describe_exception

    frames = [f for f in traceback.extract_tb(e.__traceback__) if _inside(f.filename, Path(folder).resolve())]
    base = next((c for c in type(e).__mro__ if c.__module__ == "builtins"), Exception)
    return {"type": base.__name__, "message": str(e)[:2000], "description": describe_exception(e, folder),
            "who": frames[-1].name if frames else None}


def _array_slots(args, kwargs):
    """(path, array) for every array argument, also inside dict arguments (the block's params)."""
    import numpy as np

    items = list(enumerate(args)) + list(kwargs.items())
    for key, a in items:
        if isinstance(a, np.ndarray):
            yield (key,), a
        elif isinstance(a, dict):
            for k, v in a.items():
                if isinstance(v, np.ndarray):
                    yield (key, k), v


def serve(conn, topic, folder, output_path, jail=None):
    """The child's main function (the target of the spawned process). topic: (name, file, functions);
    jail: ``sandbox.Jail.child_args`` when the grader isolates the learner's code, else None."""
    _redirect_output(output_path)
    import warnings

    import numpy as np

    from minivit import ops
    from minivit.grading import sandbox, trap, wire
    from minivit.grading.loading import _inside, describe_exception, import_topic  # noqa: F401 (loaded now)

    fd = conn.fileno()
    number = [0]

    def send(msg):
        wire.write_all(fd, wire.frame((os.getpid(), number[0], msg)))

    ops.reset()                           # F holds minivit's reference pieces: each topic graded on its own
    topic = types.SimpleNamespace(name=topic[0], file=topic[1], functions=tuple(topic[2]))
    ref = types.SimpleNamespace(**trap.arm(topic.functions))     # minivit's own: out of the learner's reach
    if jail is not None:
        try:
            sandbox.enter(**jail)
        except Exception as e:
            send(("import_error", f"the grader could not isolate your code ({type(e).__name__}: {e}); "
                                  "nothing was graded"))
            return
    module, error = import_topic(topic, folder, guard=trap.armed)
    trap.take()
    if error:
        send(("import_error", error))
        return
    found = [f for f in topic.functions if callable(getattr(module, f, None))]
    own = {f: getattr(module, f) for f in found}
    send(("ready", {"functions": found, "refs": _references(module, found, ref)}))
    caches = {}
    while True:
        try:
            req = conn.recv()
        except (EOFError, OSError):
            return
        number[0] = req[0]
        req = req[1:]
        if req[0] == "stop":
            return
        if req[0] == "reset":
            caches.clear()
            send(("ok", None, [], []))
            continue
        if req[0] == "swap":
            for f in found:
                setattr(module, f, getattr(ref, f) if f in req[1] else own[f])
            send(("ok", None, [], []))
            continue
        _, fname, args, kwargs = req
        args = [caches.get(a.ident) if isinstance(a, wire.Handle) else a for a in args]
        before = [(p, a.copy()) for p, a in _array_slots(args, kwargs)]
        try:
            with warnings.catch_warnings(), np.errstate(all="ignore"), trap.armed():
                warnings.simplefilter("ignore")
                res = own[fname](*args, **kwargs)
        except BaseException as e:            # KeyboardInterrupt included: the parent decides
            send(("raise", _exception_info(e, folder), trap.take()))
            continue
        if fname.endswith("_forward") and type(res) in (tuple, list) and len(res) == 2:
            ident = len(caches) + 1
            caches[ident] = res[1]
            out = type(res)([wire.encode(res[0]), wire.Handle(ident)])
        else:
            out = wire.encode(res)
        after = dict(_array_slots(args, kwargs))
        changed = [(p, wire.encode(after[p])) for p, old in before
                   if p in after and (old.shape != after[p].shape or old.tobytes() != after[p].tobytes())]
        send(("ok", out, changed, trap.take()))
