"""Topic `block`, exercise 8 (``exercises/ex08_block.py``): The pre-norm encoder block.

Its definition is here: the functions the learner writes, the stub's introduction and imports. Beside
it: ``checks.py`` (the checks, the wrong variants and their mistake messages), ``hints.py`` (three
levels of hints per function) and ``steps.py`` (the notebook's scaffold steps: small fixed inputs and
their reference values). Everything in this folder is the answer side: the grader's child process
cannot open it.
"""
from minivit.grading.topics.topic import F_IMPORT, Topic

# The stub's docstring starts with this (python -m minivit.stubs).
INTRO = """\
The pre-norm transformer encoder block (paper eqs. 2-3):  z' = z + MSA(LN(z)),  out = z' + MLP(LN(z')),
with optional dropout and drop-path on each residual branch."""

# The stub's first lines after its docstring.
IMPORTS = F_IMPORT

TOPIC = Topic("block", "ex08_block.py", "The pre-norm encoder block",
              ("encoder_block_forward", "encoder_block_backward"),
              intro=INTRO, imports=IMPORTS)
