"""Grading the exercises in ``exercises/``: ``python -m minivit grade [TOPIC ...]``.

Every exercise function has the name and signature of a function in minivit's functional core
(``minivit.layers``, ``minivit.optim``). The grader imports each topic file on its own (a
syntax error in one topic does not stop the others), then runs a battery of checks per topic:

* the forward output and the gradients match minivit's reference on random inputs of several
  shapes (float64, relative difference < 1e-6),
* float32 inputs give float32 results that match too (relative difference < 1e-4),
* the backward agrees with centered finite differences of the learner's own forward
  (``minivit.gradcheck``, float64),
* edge cases: huge scores (softmax, attention, cross-entropy), a zero-variance token
  (LayerNorm), |x| up to 100 (GELU), dropout in training mode (block), no warmup (schedule)...

Each check is worth a fixed number of points, all or nothing. When a check fails, the grader
compares the learner's result with known wrong variants computed here ("mistake detectors": the
attention without 1/sqrt(d), softmax over the wrong axis, unbiased variance...) and names the
mistake that matches. While grading, ``minivit.ops.F`` holds minivit's reference functions of the
*other* topics, so a composite exercise (multi-head attention, the MLP, the block) that calls
``F.attention_forward`` is graded on its own, whatever the state of the learner's attention exercise.

A grade is evidence of the work: while a topic is graded, minivit's own implementations of its
functions are out of the learner's reach (``trap.py``: a function that reaches one scores 0); a
consistency check (finite differences of the learner's own forward) counts only when that forward
passes its value checks (``gate.py``), so a do-nothing submission scores 0; run as root, each
topic's child runs as an unprivileged user with hard limits and nothing of it outlives the topic
(``sandbox.py``); its messages are framed and checked (``wire.py``).

Layout: ``engine.py`` (loading the learner's files, limits, scoring: ``grade``), ``learner.py`` and
``child.py`` (the child process, both sides), ``report.py`` (text report), ``common.py``
(tolerances, ``MISTAKES``, ``Fail``/``Check``, comparisons), ``pair.py`` (a forward/backward pair's
standard checks), ``implemented.py`` (training with the learner's functions) and
``topics/<name>/``, one folder per topic: its definition, checks (with wrong variants and mistake
messages), hints and the notebook's scaffold steps (``topics/__init__.py`` lists them).

API: :func:`load_exercises`, :func:`grade`, :func:`format_report`, :func:`exercises_impl`.
"""
import importlib

# name -> the module that defines it. Loaded on first use (PEP 562), so that the child process,
# which imports only ``minivit.grading.child``, never loads the checks and the detectors.
_PUBLIC = {
    "minivit.grading.common": ("TOPIC_TIMEOUT_S", "FD_TOL", "KEY_ZERO_TOL", "MISTAKES", "REF", "TOL32", "TOL64",
                               "Check", "Fail"),
    "minivit.grading.topics": ("EXERCISE_FUNCTIONS", "TOPIC_BY_NAME", "TOPIC_NAMES", "TOPICS", "Topic",
                               "topic_checks", "topic_module"),
    "minivit.grading.loading": ("default_path", "describe_exception", "load_exercises"),
    "minivit.grading.engine": ("SCHEMA_VERSION", "grade", "grade_topic", "max_points", "topic_check_list"),
    "minivit.grading.detect": ("is_sure", "sure_mistake", "sure_mistakes", "where_feedback"),
    "minivit.grading.report": ("format_report", "format_topic", "gradescope_results", "write_json"),
    "minivit.grading.implemented": ("ExercisesImpl", "exercises_impl", "passing_topics"),
}


def __getattr__(name):
    """The public API above, and a topic's own objects (``grading.LAYERNORM``...) from its module."""
    topics = importlib.import_module("minivit.grading.topics")     # every topic registers its mistakes
    for module, names in _PUBLIC.items():
        if name in names:
            value = getattr(importlib.import_module(module), name)
            globals()[name] = value
            return value
    for topic in topics.TOPIC_NAMES:
        module = topics.topic_module(topic)
        if hasattr(module, name):
            return getattr(module, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | {n for names in _PUBLIC.values() for n in names})
