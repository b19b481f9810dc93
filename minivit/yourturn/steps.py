"""The scaffold steps of the notebooks' "Your turn" cells, gathered from the topics.

Each topic keeps its own in ``minivit/grading/topics/<topic>/steps.py``:

* ``INPUTS[name]()`` builds a scaffold's input (seeded, float64, small enough to print), a tuple in
  the order the notebook names them;
* ``STEPS[step]()`` is the reference value of step ``step`` for that input, which
  ``minivit.yourturn.checks.check`` compares with the learner's. The values come from minivit's own
  functions where the step is one of their results, and are written out where it is an
  intermediate inside them. tests/test_yourturn.py checks that the intermediates add up to minivit's
  results.

Here they are merged into one ``INPUTS`` and one ``STEPS`` (names are unique across topics).
"""
from __future__ import annotations

from minivit.grading.topics import TOPICS

INPUTS = {}
STEPS = {}
for _topic in TOPICS:
    INPUTS.update(_topic.part("steps").INPUTS)
    STEPS.update(_topic.part("steps").STEPS)
