"""Topic `loss`, exercise 7 (``exercises/ex07_loss.py``): Softmax cross-entropy with label smoothing.

Its definition is here: the functions the learner writes, the stub's introduction and imports. Beside
it: ``checks.py`` (the checks, the wrong variants and their mistake messages), ``hints.py`` (three
levels of hints per function) and ``steps.py`` (the notebook's scaffold steps: small fixed inputs and
their reference values). Everything in this folder is the answer side: the grader's child process
cannot open it.
"""
from minivit.grading.topics.topic import NUMPY, Topic

# The stub's docstring starts with this (python -m minivit.stubs).
INTRO = """\
Softmax cross-entropy over the class logits, with optional label smoothing and soft targets (mixup,
cutmix). The forward returns a scalar loss; the backward gives dloss/dlogits."""

# The stub's first lines after its docstring.
IMPORTS = NUMPY

TOPIC = Topic("loss", "ex07_loss.py", "Softmax cross-entropy with label smoothing",
              ("cross_entropy_forward", "cross_entropy_backward"),
              intro=INTRO, imports=IMPORTS)
