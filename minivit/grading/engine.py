"""Running the checks: one child process per topic, its time limit, scoring (``grade``).

For each topic the learner's file is imported in a child process (``learner.py``, ``child.py``);
the checks run here, in the grader's process, and reach the learner's functions only through
``ns[fname](...)``, which runs them in the child. The reference, the detectors and every
comparison run here, where the learner's code never ran. The topic's wall-clock limit covers
the import and every call; when it passes, the child is killed and the topic reports
``timed out after N s in <function>``.

When a check fails, it runs again with each other function of the topic that the checked code
calls swapped for minivit's (``"passes with the reference gelu_forward: fix that first"``), so
one bug costs points once. A consistency check counts only when the forward it rests on passes
its value checks (``gate.py``). Run as root, the grading run has a ``sandbox.Jail``: each child
runs as its user, and every process of that user is killed after each topic.
"""
from __future__ import annotations

import errno
import os
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

from minivit.grading import sandbox
from minivit.grading.child import OUTPUT_LIMIT_BYTES
from minivit.grading.common import MISTAKES, TOPIC_TIMEOUT_S, Fail
from minivit.grading.gate import apply_gates, needs
from minivit.grading.learner import ChildDied, LearnerFunctions, LearnerProcess, ReferenceUsed, TimedOut
from minivit.grading.loading import default_path, describe_exception
from minivit.grading.report import with_hint
from minivit.grading.topics import TOPIC_BY_NAME, TOPIC_NAMES, TOPICS, topic_checks

SCHEMA_VERSION = 2
OUTPUT_CHARS = 4000                # the learner's captured output kept per topic in the report
MAX_TIMEOUT_S = 86400.0            # the longest time limit per topic (`grade --timeout`): a day


def select(topics=None, functions=None):
    """The Topic objects to grade: ``topics`` (names; default all, or those holding ``functions``)."""
    functions = list(functions or ())
    known = {f for t in TOPICS for f in t.functions}
    unknown = [f for f in functions if f not in known]
    if unknown:
        raise ValueError(f"unknown exercise function {', '.join(unknown)}; the functions are listed in "
                         "exercises/README.md (python -m minivit grade --list shows the topics)")
    if not topics:
        chosen = [t for t in TOPICS if not functions or set(t.functions) & set(functions)]
    else:
        bad = [n for n in topics if n not in TOPIC_BY_NAME]
        if bad:
            raise ValueError(f"unknown topic {', '.join(bad)}; choose from {', '.join(TOPIC_NAMES)}")
        chosen = [TOPIC_BY_NAME[n] for n in topics]
    if functions:
        stray = [f for f in functions if not any(f in t.functions for t in chosen)]
        if stray:
            raise ValueError(f"{', '.join(stray)} is not in topic {', '.join(t.name for t in chosen)}")
    return chosen


def topic_check_list(name, functions=None, checks=None):
    """The topic's checks, only those grading ``functions`` / named in ``checks`` when given."""
    out = topic_checks(name)
    if functions:
        out = [c for c in out if c.function in functions]
    if checks:
        out = [c for c in out if c.name in checks]
    return out


def _run_check(check, ns, folder, file):
    """Run one check -> (status, points, feedback, mistake); status: ok, fail, todo, error, timeout."""
    missing = [f for f in check.functions if f not in ns]
    if missing:
        return "error", 0, f"{', '.join(missing)} not found in {file} (keep the function names of the stubs)", None
    try:
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            check.run(ns)
    except Fail as e:
        return "fail", 0, str(e), e.mistake
    except ReferenceUsed as e:
        return "fail", 0, str(e), None
    except TimedOut as e:
        return "timeout", 0, f"{e} (an endless loop?)", None
    except ChildDied as e:
        return "error", 0, str(e), None
    except NotImplementedError as e:
        who = getattr(e, "learner_who", None) or check.functions[-1]
        return "todo", 0, f"{who} is not implemented yet", None
    except (Exception, SystemExit) as e:
        text = getattr(e, "learner_description", None) or describe_exception(e, folder)
        if isinstance(e, RecursionError):
            return "error", 0, text + " (a function calling itself?)", None
        if isinstance(e, ValueError) and "operands could not be broadcast together" in str(e):
            return "error", 0, text + "\n" + MISTAKES["broadcast_keepdims"], "broadcast_keepdims"
        return "error", 0, text, None
    return "ok", check.points, "", None


def _reference_candidates(check, process):
    """Groups of the learner's other functions the checked code calls (directly or not), to swap in turn."""
    reach, todo = set(), list(check.functions)
    while todo:
        for g in process.refs.get(todo.pop(), ()):
            if g not in reach:
                reach.add(g)
                todo.append(g)
    single = sorted(reach - set(check.functions))
    others = set(single)
    single.sort(key=lambda f: sum(g in others for g in process.refs.get(f, ())))   # callees first: blame the root
    pairs = [[f, f.replace("_forward", "_backward")] for f in single
             if f.endswith("_forward") and f.replace("_forward", "_backward") in single]
    return [[f] for f in single] + pairs


def _charge_once(check, process, ns, folder, file, result):
    """Re-run a failed check with the reference in place of each other function it uses, in turn."""
    for group in _reference_candidates(check, process):
        try:
            process.swap(group)
            again = _run_check(check, ns, folder, file)
            process.swap([])
            process.reset()
        except (TimedOut, ChildDied):
            return result, None
        if again[0] == "timeout":
            return result, None
        if again[0] == "ok":
            names = " and ".join(group)
            first = result[2].splitlines()[0] if result[2] else result[0]
            return ("ok", check.points, f"passes with the reference {names}: fix {'that' if len(group) == 1 else 'those'}"
                    f" first. (With yours: {first})", None), ", ".join(group)
    return result, None


def _ready_for_next(process, error, stop_reason, last):
    """Forget the check's caches; restart a child that died (os._exit...) -> (error, stop_reason)."""
    try:
        if process.alive:
            process.reset()
        elif not stop_reason and not last:
            error = process.start()
    except TimedOut as e:
        stop_reason = f"not run: {e}"
    except ChildDied as e:
        error = str(e)
    return error, stop_reason


def _read_output(path):
    try:
        text = Path(path).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
    if len(text.encode("utf-8", "replace")) >= OUTPUT_LIMIT_BYTES:
        mb = OUTPUT_LIMIT_BYTES / 2 ** 20
        note = (f"[your code wrote {mb:g} MB of output or more: the limit is {mb:g} MB (the rest was dropped); "
                "remove the prints]\n")
        return note + text[:OUTPUT_CHARS] + f"\n... ({len(text) - OUTPUT_CHARS} more characters)"
    if len(text) > OUTPUT_CHARS:
        text = text[:OUTPUT_CHARS] + f"\n... ({len(text) - OUTPUT_CHARS} more characters)"
    return text


def grade_topic(topic, folder, functions=None, checks=None, timeout=TOPIC_TIMEOUT_S, jail=None):
    """Grade one topic in its own child process -> the topic's report entry (see ``grade``).
    jail: a ``sandbox.Jail`` (the grader runs as root): the child reads ``jail.folder``'s copy of
    the file, as the jail's user, and every process it started is killed before this returns."""
    start = time.monotonic()
    listed = topic_check_list(topic.name)
    chosen = topic_check_list(topic.name, functions, checks)
    extra = [c for c in listed if c not in chosen and not needs(c) and any(c.function in needs(x) for x in chosen)]
    fd, out_path = tempfile.mkstemp(prefix=f"minivit-grade-{topic.name}-", suffix=".txt")
    os.close(fd)
    process = LearnerProcess(topic, jail.folder if jail else folder, start + timeout, timeout, out_path, jail)
    rows, error, stop_reason = [], None, None
    try:
        try:
            if not (Path(folder) / topic.file).is_file():
                error = f"{Path(folder) / topic.file} not found"
            else:
                error = process.start()
        except TimedOut as e:
            error = stop_reason = str(e)
        except ChildDied as e:
            error = str(e)
        ns = LearnerFunctions(process)
        for c in chosen + extra:
            if error or stop_reason:
                status = "timeout" if stop_reason else "error"
                result, caused_by = (status, 0, stop_reason or error, None), None
            else:
                result, caused_by = _run_check(c, ns, folder, topic.file), None
                if result[0] == "timeout":
                    stop_reason = f"not run: {result[2]}"
                elif result[0] in ("fail", "error", "todo") and process.alive:
                    result, caused_by = _charge_once(c, process, ns, folder, topic.file, result)
                error, stop_reason = _ready_for_next(process, error, stop_reason, c is (chosen + extra)[-1])
            status, points, feedback, mistake = result
            rows.append(dict(name=c.name, function=c.function, points=points, max=c.points, status=status,
                             feedback=with_hint(feedback, status, c.function), mistake=mistake, caused_by=caused_by))
    finally:
        process.stop()
        if jail is not None:
            jail.clean()
        output = _read_output(out_path)
        os.unlink(out_path)
    rows = apply_gates(chosen + extra, rows)[:len(chosen)]
    return dict(title=topic.title, file=topic.file, points=sum(r["points"] for r in rows),
                max=sum(r["max"] for r in rows), error=error, seconds=round(time.monotonic() - start, 3),
                output=output, checks=rows)


def grade(topics=None, path=None, functions=None, checks=None, timeout=TOPIC_TIMEOUT_S, progress=False):
    """Grade the exercises in ``path`` (default: ``exercises``); the report dict (``grade --json``):

    {"schema_version": 2, "path": str, "topics": {name: {"title", "file", "points", "max", "error",
        "seconds", "output", "checks": [{"name", "function", "points", "max", "status", "feedback",
        "mistake", "caused_by"}]}}, "total": int, "max": int}

    functions: grade only the checks of these functions (``--only``); checks: only the checks with
    these names; timeout: seconds per topic, the import included; progress: a line per topic on stderr.
    """
    path = Path(path) if path is not None else default_path()
    chosen = select(topics, functions)
    if not path.is_dir():
        e = FileNotFoundError(errno.ENOENT, "no exercises folder", str(path))
        e.cli_message = f"no exercises folder at {path} (pass --path DIR, or run from the repository root)"
        raise e
    if not 0 < timeout <= MAX_TIMEOUT_S:
        raise ValueError(f"the time limit must be a positive number of seconds, at most {MAX_TIMEOUT_S:g} "
                         f"(a day), got {timeout:g}")
    report = {"schema_version": SCHEMA_VERSION, "path": str(path), "topics": {}, "total": 0, "max": 0}
    jail = sandbox.Jail.open(path, [t.file for t in chosen]) if sandbox.isolating() else None
    try:
        for t in chosen:
            _grade_one(report, t, path, functions, checks, timeout, jail, progress)
    finally:
        if jail is not None:
            jail.close()
    return report


def _grade_one(report, t, path, functions, checks, timeout, jail, progress):
    """Grade topic ``t`` into ``report`` (its entry, the totals); a line on stderr with ``progress``."""
    entry = grade_topic(t, path, functions, checks, timeout, jail)
    report["topics"][t.name] = entry
    report["total"] += entry["points"]
    report["max"] += entry["max"]
    if progress:
        late = [r for r in entry["checks"] if r["status"] == "timeout"]
        note = f"  - {late[0]['feedback']}" if late else ""
        print(f"graded {t.name:<10} {entry['points']:>3}/{entry['max']:<3} in {entry['seconds']:.1f} s{note}",
              file=sys.stderr, flush=True)


def max_points(topics=None):
    """{topic: maximum points} without grading anything."""
    return {t.name: sum(c.points for c in topic_checks(t.name)) for t in select(topics)}
