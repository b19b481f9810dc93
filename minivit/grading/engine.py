"""Running the checks: loading the learner's files, time limits, scoring (``grade``)."""
from __future__ import annotations

import contextlib
import importlib.util
import signal
import sys
import threading
import traceback
import types
import warnings
from pathlib import Path

import numpy as np

from minivit import ops
from minivit.grading.common import MISTAKES, Fail, _Timeout
from minivit.grading.topics import TOPIC_BY_NAME, TOPIC_NAMES, TOPICS, topic_checks


def default_path():
    """``./exercises`` when it exists, else the exercises folder next to the minivit package."""
    here = Path("exercises")
    if here.is_dir():
        return here
    beside = Path(__file__).resolve().parents[2] / "exercises"
    return beside if beside.is_dir() else here


def _where(tb_frames, folder):
    folder = Path(folder).resolve()
    mine = [f for f in tb_frames if _inside(f.filename, folder)]
    if not mine:
        return ""
    f = mine[-1]
    line = f" `{f.line.strip()}`" if f.line else ""
    return f" ({Path(f.filename).name}, line {f.lineno}, in {f.name}:{line})"


def _inside(filename, folder):
    try:
        return Path(filename).resolve().parent == folder
    except Exception:
        return False


def describe_exception(e, folder):
    """One line naming the exception and the line of the learner's file it came from."""
    if isinstance(e, SyntaxError):
        text = f" `{e.text.strip()}`" if e.text else ""
        return f"{type(e).__name__}: {e.msg} ({Path(e.filename or '?').name}, line {e.lineno}:{text})"
    msg = str(e)
    return f"{type(e).__name__}{': ' + msg if msg else ''}{_where(traceback.extract_tb(e.__traceback__), folder)}"


def load_exercises(path=None, topics=None):
    """Import each topic's file on its own.

    returns: (namespace, errors): a SimpleNamespace of the exercise functions found (usable with
    ``minivit.ops.use``), and {topic: message} for the files that are missing or fail to import.
    """
    path = Path(path) if path is not None else default_path()
    ns, errors = {}, {}
    for t in _topics(topics):
        file = path / t.file
        if not file.is_file():
            errors[t.name] = f"{file} not found"
            continue
        modname = f"minivit_exercises_{t.name}"
        spec = importlib.util.spec_from_file_location(modname, file)
        module = importlib.util.module_from_spec(spec)
        saved = sys.dont_write_bytecode
        sys.dont_write_bytecode = True        # no __pycache__ next to the learner's files, never a stale one
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                spec.loader.exec_module(module)
        except KeyboardInterrupt:
            raise
        except BaseException as e:   # SyntaxError, ImportError, SystemExit, anything at import time
            errors[t.name] = f"could not import {t.file}: {describe_exception(e, path)}"
            continue
        finally:
            sys.dont_write_bytecode = saved
        for fn in t.functions:
            f = getattr(module, fn, None)
            if callable(f):
                ns[fn] = f
    return types.SimpleNamespace(**ns), errors


def _topics(names):
    if names is None or len(names) == 0:
        return list(TOPICS)
    unknown = [n for n in names if n not in TOPIC_BY_NAME]
    if unknown:
        raise ValueError(f"unknown topic {', '.join(unknown)}; choose from {', '.join(TOPIC_NAMES)}")
    return [TOPIC_BY_NAME[n] for n in names]


def _check_timeout():
    return sys.modules["minivit.grading"].CHECK_TIMEOUT_S     # settable as minivit.grading.CHECK_TIMEOUT_S


@contextlib.contextmanager
def _time_limit(seconds):
    use = hasattr(signal, "SIGALRM") and threading.current_thread() is threading.main_thread()
    if not use:
        yield
        return

    def handler(signum, frame):
        raise _Timeout()

    old = signal.signal(signal.SIGALRM, handler)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def _run_check(check, ns, folder, file):
    """Run one check -> (status, points, feedback, mistake); status: ok, fail, todo, error."""
    missing = [f for f in check.functions if f not in ns]
    if missing:
        return "error", 0, f"{', '.join(missing)} not found in {file} (keep the function names of the stubs)", None
    try:
        with _time_limit(_check_timeout()), np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            check.run(ns)
    except Fail as e:
        return "fail", 0, str(e), e.mistake
    except NotImplementedError as e:
        frames = [f for f in traceback.extract_tb(e.__traceback__) if _inside(f.filename, Path(folder).resolve())]
        who = frames[-1].name if frames else check.functions[-1]
        return "todo", 0, f"{who} is not implemented yet", None
    except _Timeout:
        return "error", 0, f"took longer than {_check_timeout()} s (an endless loop?)", None
    except RecursionError as e:
        return "error", 0, describe_exception(e, folder) + " (a function calling itself?)", None
    except (Exception, SystemExit) as e:    # SystemExit: a learner's sys.exit() must not end the grading
        if isinstance(e, ValueError) and "broadcast" in str(e):
            key = "broadcast_keepdims"
            return "error", 0, describe_exception(e, folder) + "\n" + MISTAKES[key], key
        return "error", 0, describe_exception(e, folder), None
    return "ok", check.points, "", None


def grade(topics=None, path=None):
    """Grade the exercises in ``path`` (default: ``exercises``). Returns the report dict:

    {"path": str, "topics": {name: {"title", "file", "points", "max", "error", "checks": [
        {"name", "points", "max", "status", "feedback", "mistake"}]}}, "total": int, "max": int}
    """
    path = Path(path) if path is not None else default_path()
    chosen = _topics(topics)
    ns_obj, errors = load_exercises(path, [t.name for t in chosen])
    ns = vars(ns_obj)
    report = {"path": str(path), "topics": {}, "total": 0, "max": 0}
    with ops.use(ops.reference()):        # composite exercises calling F get minivit's reference pieces
        for t in chosen:
            checks = topic_checks(t.name)
            rows = []
            for c in checks:
                if t.name in errors:
                    status, pts, fb, mistake = "error", 0, errors[t.name], None
                else:
                    status, pts, fb, mistake = _run_check(c, ns, path, t.file)
                rows.append(dict(name=c.name, points=pts, max=c.points, status=status, feedback=fb, mistake=mistake))
            points = sum(r["points"] for r in rows)
            top = sum(r["max"] for r in rows)
            report["topics"][t.name] = dict(title=t.title, file=t.file, points=points, max=top,
                                            error=errors.get(t.name), checks=rows)
            report["total"] += points
            report["max"] += top
    return report


def max_points(topics=None):
    """{topic: maximum points} without grading anything."""
    return {t.name: sum(c.points for c in topic_checks(t.name)) for t in _topics(topics)}

