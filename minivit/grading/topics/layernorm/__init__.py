"""Topic `layernorm`, exercise 5 (``exercises/ex05_layernorm.py``): Layer normalization.

Its definition is here: the functions the learner writes, the stub's introduction and imports. Beside
it: ``checks.py`` (the checks, the wrong variants and their mistake messages), ``hints.py`` (three
levels of hints per function) and ``steps.py`` (the notebook's scaffold steps: small fixed inputs and
their reference values). Everything in this folder is the answer side: the grader's child process
cannot open it.
"""
from minivit.grading.topics.topic import NUMPY, Topic

# The stub's docstring starts with this (python -m minivit.stubs).
INTRO = """\
Layer normalization, applied before every sub-block of the encoder (paper eqs. 2-3): each token's
feature vector is normalized on its own, then scaled and shifted by learned gamma and beta."""

# The stub's first lines after its docstring.
IMPORTS = NUMPY

TOPIC = Topic("layernorm", "ex05_layernorm.py", "Layer normalization",
              ("layernorm_forward", "layernorm_backward"),
              intro=INTRO, imports=IMPORTS)
