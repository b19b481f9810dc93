"""Topic `optim`, exercise 9 (``exercises/ex09_optim.py``): AdamW + the warmup-cosine schedule.

Its definition is here: the functions the learner writes, the stub's introduction and imports. Beside
it: ``checks.py`` (the checks, the wrong variants and their mistake messages), ``hints.py`` (three
levels of hints per function) and ``steps.py`` (the notebook's scaffold steps: small fixed inputs and
their reference values). Everything in this folder is the answer side: the grader's child process
cannot open it.
"""
from minivit.grading.topics.topic import NUMPY, Topic

# The stub's docstring starts with this (python -m minivit.stubs).
INTRO = """\
Training: one AdamW step (Adam with decoupled weight decay) for one parameter, updated in place, and
the learning-rate schedule: linear warmup, then cosine decay."""

# The stub's first lines after its docstring.
IMPORTS = "import math\n\n" + NUMPY

TOPIC = Topic("optim", "ex09_optim.py", "AdamW + the warmup-cosine schedule",
              ("adamw_update", "warmup_cosine"),
              intro=INTRO, imports=IMPORTS)
