"""Topic `mlp`, exercise 6 (``exercises/ex06_mlp.py``): GELU + the MLP block.

Its definition is here: the functions the learner writes, the stub's introduction and imports. Beside
it: ``checks.py`` (the checks, the wrong variants and their mistake messages), ``hints.py`` (three
levels of hints per function) and ``steps.py`` (the notebook's scaffold steps: small fixed inputs and
their reference values). Everything in this folder is the answer side: the grader's child process
cannot open it.
"""
from minivit.grading.topics.topic import F_IMPORT, NUMPY, Topic

# The stub's docstring starts with this (python -m minivit.stubs).
INTRO = """\
The transformer's MLP block (paper eq. 3): two linear layers with a GELU between them. GELU comes in
two forms: the tanh approximation (the ViT default) and the exact x * Phi(x)."""

# The stub's first lines after its docstring.
ERF_IMPORT = "from minivit.layers.activation import erf   # elementwise erf, NumPy and CuPy\n"
IMPORTS = "import math\n\n" + NUMPY + ERF_IMPORT + F_IMPORT

TOPIC = Topic("mlp", "ex06_mlp.py", "GELU + the MLP block",
              ("gelu_forward", "gelu_backward", "mlp_forward", "mlp_backward"),
              intro=INTRO, imports=IMPORTS)
