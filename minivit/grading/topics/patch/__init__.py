"""Topic `patch`, exercise 1 (``exercises/ex01_patch_embedding.py``): Patchify + patch embedding (the linear layer).

Its definition is here: the functions the learner writes, the stub's introduction and imports. Beside
it: ``checks.py`` (the checks, the wrong variants and their mistake messages), ``hints.py`` (three
levels of hints per function) and ``steps.py`` (the notebook's scaffold steps: small fixed inputs and
their reference values). Everything in this folder is the answer side: the grader's child process
cannot open it.
"""
from minivit.grading.topics.topic import NUMPY, Topic

# The stub's docstring starts with this (python -m minivit.stubs).
INTRO = """\
The first step of a ViT (paper eq. 1): cut each image into P x P patches, flatten every patch into a
vector of P*P*C numbers, and map it to the model width D with a linear layer (the "patch embedding" E).
You write patchify (and its backward) and the linear layer (forward and backward)."""

# The stub's first lines after its docstring.
IMPORTS = NUMPY

TOPIC = Topic("patch", "ex01_patch_embedding.py", "Patchify + patch embedding (the linear layer)",
              ("patchify_forward", "patchify_backward", "linear_forward", "linear_backward"),
              intro=INTRO, imports=IMPORTS)
