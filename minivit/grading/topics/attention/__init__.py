"""Topic `attention`, exercise 3 (``exercises/ex03_attention.py``): Softmax + scaled dot-product attention.

Its definition is here: the functions the learner writes, the stub's introduction and imports. Beside
it: ``checks.py`` (the checks, the wrong variants and their mistake messages), ``hints.py`` (three
levels of hints per function) and ``steps.py`` (the notebook's scaffold steps: small fixed inputs and
their reference values). Everything in this folder is the answer side: the grader's child process
cannot open it.
"""
from minivit.grading.topics.topic import NUMPY, Topic

# The stub's docstring starts with this (python -m minivit.stubs).
INTRO = """\
The core of the transformer (paper eqs. 5-7): a numerically stable softmax, and scaled dot-product
attention  out = softmax(q k^T / sqrt(d)) v,  forward and backward."""

# The stub's first lines after its docstring.
IMPORTS = "import math\n\n" + NUMPY

TOPIC = Topic("attention", "ex03_attention.py", "Softmax + scaled dot-product attention",
              ("softmax_forward", "softmax_backward", "attention_forward", "attention_backward"),
              intro=INTRO, imports=IMPORTS)
