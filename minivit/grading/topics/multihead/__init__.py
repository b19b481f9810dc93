"""Topic `multihead`, exercise 4 (``exercises/ex04_multihead.py``): Multi-head self-attention.

Its definition is here: the functions the learner writes, the stub's introduction and imports. Beside
it: ``checks.py`` (the checks, the wrong variants and their mistake messages), ``hints.py`` (three
levels of hints per function) and ``steps.py`` (the notebook's scaffold steps: small fixed inputs and
their reference values). Everything in this folder is the answer side: the grader's child process
cannot open it.
"""
from minivit.grading.topics.topic import F_IMPORT, NUMPY, Topic

# The stub's docstring starts with this (python -m minivit.stubs).
INTRO = """\
Multi-head self-attention (paper eqs. 5-8): one fused projection to q, k, v; each split into h heads
of width d = D / h; attention in every head; heads merged and projected back to D."""

# The stub's first lines after its docstring.
IMPORTS = "import math\n\n" + NUMPY + F_IMPORT

TOPIC = Topic("multihead", "ex04_multihead.py", "Multi-head self-attention",
              ("split_heads", "merge_heads", "split_heads_backward", "merge_heads_backward", "mhsa_forward",
               "mhsa_backward"),
              intro=INTRO, imports=IMPORTS)
