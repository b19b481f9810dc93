"""Training with the learner's functions: ``exercises_impl`` picks, topic by topic, whose code runs.

A topic runs the learner's functions when every one of its checks passes in the grader (the
same grading as ``python -m minivit grade``), and minivit's reference functions otherwise. Whole
topics are replaced, never single functions: a forward and its backward share a cache whose
layout only they know, and a composite (the MLP) may call its own helpers (its GELU).
"""
from __future__ import annotations

import types
from pathlib import Path

from minivit.grading.common import TOPIC_TIMEOUT_S
from minivit.grading.loading import default_path, load_exercises
from minivit.grading.topics import TOPICS

YOURS, MINIVIT = "yours", "minivit"


class ExercisesImpl(types.SimpleNamespace):
    """The learner's functions of the topics that pass, as attributes (for ``ops.use`` / ``Trainer(impl=)``).

    ``topics``: {topic: "yours" | "minivit"} for all nine topics; ``path``: the exercises folder;
    ``points``: {topic: (points, max)} from the grading that decided it.
    """

    def record(self):
        """What a run's config.json (and its checkpoints) record: whose code runs each topic."""
        return dict(path=str(self.path), topics=dict(self.topics))

    @property
    def yours(self):
        return [t for t, who in self.topics.items() if who == YOURS]

    def describe(self):
        """One or two lines saying which topics run whose code."""
        lines = [f"your code for: {', '.join(self.yours) or 'no topic yet'}"]
        theirs = [f"{t} {self.points[t][0]}/{self.points[t][1]}" for t, who in self.topics.items() if who == MINIVIT]
        if theirs:
            lines += [f"minivit's code for: {', '.join(theirs)} points",
                      "  (a topic runs your code once all its checks pass: python -m minivit grade TOPIC says what fails)"]
        return "\n".join(lines)


def passing_topics(report):
    """{topic: True when every check of the topic passed on its own} for a ``grade`` report."""
    return {name: (t["error"] is None and bool(t["checks"])
                   and all(c["status"] == "ok" and not c.get("caused_by") for c in t["checks"]))
            for name, t in report["topics"].items()}


def exercises_impl(path=None, timeout=TOPIC_TIMEOUT_S, progress=False, report=None):
    """Grade the exercises in ``path`` (default ``exercises``) and return an :class:`ExercisesImpl` with
    the learner's functions of every topic whose checks all pass, minivit's for the rest.

    report: a ``grade`` report of all topics to decide from (instead of grading again).
    progress: a line per graded topic on stderr."""
    from minivit.grading.engine import grade

    path = Path(path) if path is not None else default_path()
    if not path.is_dir():
        raise FileNotFoundError(f"no exercises folder at {path} (run from the repository root, or pass "
                                "--exercises-path DIR)")
    if report is None:
        report = grade(path=path, timeout=timeout, progress=progress)
    missing = [t.name for t in TOPICS if t.name not in report["topics"]]
    if missing:
        raise ValueError(f"the grading report lacks the topics {', '.join(missing)}: grade all topics")
    passed = passing_topics(report)
    ns, _ = load_exercises(path, [t.name for t in TOPICS if passed[t.name]])
    functions = {}
    for t in TOPICS:
        if passed[t.name]:
            functions.update({f: getattr(ns, f) for f in t.functions})
    return ExercisesImpl(**functions, path=path,
                         topics={t.name: YOURS if passed[t.name] else MINIVIT for t in TOPICS},
                         points={n: (e["points"], e["max"]) for n, e in report["topics"].items()})
