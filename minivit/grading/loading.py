"""Finding and importing the learner's exercise files; describing their exceptions.

``import_topic`` runs a file's top-level code, so the grader calls it only in the child process
(``child.py``); ``load_exercises`` (training with ``--impl exercises``) imports in this process.
"""
from __future__ import annotations

import contextlib
import importlib.util
import os
import sys
import traceback
import types
import warnings
from pathlib import Path


def default_path():
    """``$MINIVIT_EXERCISES`` when set, else ``./exercises`` when it exists, else the exercises folder
    next to the minivit package."""
    if os.environ.get("MINIVIT_EXERCISES"):
        return Path(os.environ["MINIVIT_EXERCISES"]).expanduser()
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


def import_topic(t, path, guard=None):
    """Import topic ``t``'s file (``t.name``, ``t.file``) from folder ``path`` -> (module, None), or
    (None, error message). Loads no grading code: the child process calls it. guard: a context
    manager factory around the file's own code only (the child's ``trap.armed``)."""
    file = Path(path) / t.file
    if not file.is_file():
        return None, f"{file} not found"
    spec = importlib.util.spec_from_file_location(f"minivit_exercises_{t.name}", file)
    module = importlib.util.module_from_spec(spec)
    saved = sys.dont_write_bytecode
    sys.dont_write_bytecode = True        # no __pycache__ next to the learner's files, never a stale one
    try:
        with warnings.catch_warnings(), (guard or contextlib.nullcontext)():
            warnings.simplefilter("ignore")
            spec.loader.exec_module(module)
    except KeyboardInterrupt:
        raise
    except BaseException as e:   # SyntaxError, ImportError, SystemExit, anything at import time
        return None, f"could not import {t.file}: {describe_exception(e, path)}"
    finally:
        sys.dont_write_bytecode = saved
    return module, None


def load_exercises(path=None, topics=None):
    """Import each topic's file on its own.

    returns: (namespace, errors): a SimpleNamespace of the exercise functions found (usable with
    ``minivit.ops.use``), and {topic: message} for the files that are missing or fail to import.
    """
    path = Path(path) if path is not None else default_path()
    ns, errors = {}, {}
    for t in _topics(topics):
        module, error = import_topic(t, path)
        if error:
            errors[t.name] = error
            continue
        for fn in t.functions:
            f = getattr(module, fn, None)
            if callable(f):
                ns[fn] = f
    return types.SimpleNamespace(**ns), errors


def _topics(names):
    from minivit.grading.topics import TOPIC_BY_NAME, TOPIC_NAMES, TOPICS

    if names is None or len(names) == 0:
        return list(TOPICS)
    unknown = [n for n in names if n not in TOPIC_BY_NAME]
    if unknown:
        raise ValueError(f"unknown topic {', '.join(unknown)}; choose from {', '.join(TOPIC_NAMES)}")
    return [TOPIC_BY_NAME[n] for n in names]

