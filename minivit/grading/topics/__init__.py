"""The nine topics of the course, one folder each (``topics/<name>/``), listed in ``NAMES``.

A topic's folder holds everything the course knows about it:

* ``__init__.py``: its definition, ``TOPIC = Topic(name, exercise file, title, functions,
  intro=INTRO, imports=IMPORTS)``: the functions the learner writes, and the introduction and import
  lines that ``python -m minivit.stubs`` puts at the top of its exercise file;
* ``checks.py``: ``checks()``, the checks in the order they run, with the wrong variants they compare
  against and the mistake messages they add to ``MISTAKES``;
* ``hints.py``: ``HINTS``, three levels of hints per function (``minivit.grading.hints``);
* ``steps.py``: ``INPUTS`` and ``STEPS``, the notebook's scaffold steps: small fixed inputs and
  their reference values (``minivit.yourturn.check``).

Pieces several topics share sit beside the folders: ``topic.py`` (what a topic is), ``parts.py``,
``diagnosis.py`` and ``explained.py`` (reading a gradient by its parts), ``pointers.py`` (advice about an
exception names its function).

Adding a topic means:

1. the functions themselves, in minivit's core (a file in ``minivit/layers/``, with its tests);
2. the topic's folder ``minivit/grading/topics/<name>/``, the four files above;
3. its name in ``NAMES`` below;

then ``python -m minivit.stubs`` writes its exercise file (commit it), and the chapter notebook that
teaches it may use its scaffold steps. Everything under ``minivit/grading/`` is out of reach of the
learner's code while it is graded (``trap.py``), which is why the hints and the steps live here.
"""
from __future__ import annotations

import importlib

from minivit.grading.topics.topic import Topic

# The topics in the order of the exercises (ex01 ... ex09). Adding a topic adds its name here.
NAMES = ("patch", "tokens", "attention", "multihead", "layernorm", "mlp", "loss", "block", "optim")

TOPICS = tuple(importlib.import_module(f"{__name__}.{name}").TOPIC for name in NAMES)
TOPIC_NAMES = tuple(t.name for t in TOPICS)
TOPIC_BY_NAME = {t.name: t for t in TOPICS}
EXERCISE_FUNCTIONS = tuple(f for t in TOPICS for f in t.functions)


def topic_module(name):
    """The grading module of a topic (``minivit.grading.topics.<name>.checks``)."""
    if name not in TOPIC_BY_NAME:
        raise ValueError(f"unknown topic {name!r}; choose from {', '.join(TOPIC_NAMES)}")
    return TOPIC_BY_NAME[name].part("checks")


def topic_checks(name):
    """The list of Checks for a topic (an exception's feedback names the function that raised it:
    ``pointers.pointing``)."""
    from minivit.grading.topics.pointers import pointing
    return [pointing(c, TOPIC_BY_NAME[name].functions) for c in topic_module(name).checks()]


for _name in TOPIC_NAMES:          # every topic registers its mistakes in MISTAKES on import
    topic_module(_name)
