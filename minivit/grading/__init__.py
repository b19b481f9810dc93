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
mistake that matches. While grading, ``minivit.ops.F`` holds minivit's reference functions, so
a composite exercise (multi-head attention, the MLP, the block) that calls ``F.attention_forward``
is graded on its own, whatever the state of the learner's attention exercise.

Layout: ``engine.py`` (loading the learner's files, limits, scoring: ``grade``), ``report.py``
(text report), ``common.py`` (tolerances, ``MISTAKES``, ``Fail``/``Check``, comparisons),
``pair.py`` (a forward/backward pair's standard checks), ``implemented.py`` (training with the
learner's functions) and ``topics/<name>.py``, one per topic: its checks, wrong variants and
mistake messages.

API: :func:`load_exercises`, :func:`grade`, :func:`format_report`, :func:`exercises_impl`.
"""
from minivit.grading.common import (TOPIC_TIMEOUT_S, FD_TOL, KEY_ZERO_TOL, MISTAKES, REF, TOL32, TOL64,  # noqa: F401
                                    Check, Fail)
from minivit.grading.topics import (EXERCISE_FUNCTIONS, TOPIC_BY_NAME, TOPIC_NAMES, TOPICS, Topic,  # noqa: F401
                                    topic_checks, topic_module)
from minivit.grading.loading import default_path, describe_exception, load_exercises  # noqa: F401
from minivit.grading.engine import SCHEMA_VERSION, grade, grade_topic, max_points, topic_check_list  # noqa: F401
from minivit.grading.detect import is_sure, sure_mistake, sure_mistakes, where_feedback  # noqa: F401
from minivit.grading.report import format_report, format_topic, gradescope_results, write_json  # noqa: F401
from minivit.grading.implemented import check_implemented, exercises_impl  # noqa: F401


def __getattr__(name):
    """A topic's own objects (``grading.LAYERNORM``, ``grading.ADAMW_VARIANTS``...) from its module."""
    for topic in TOPIC_NAMES:
        module = topic_module(topic)
        if hasattr(module, name):
            return getattr(module, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
