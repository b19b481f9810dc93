"""Topic `tokens`, exercise 2 (``exercises/ex02_tokens.py``): Class token + position embeddings.

Its definition is here: the functions the learner writes, the stub's introduction and imports. Beside
it: ``checks.py`` (the checks, the wrong variants and their mistake messages), ``hints.py`` (three
levels of hints per function) and ``steps.py`` (the notebook's scaffold steps: small fixed inputs and
their reference values). Everything in this folder is the answer side: the grader's child process
cannot open it.
"""
from minivit.grading.topics.topic import NUMPY, Topic

# The stub's docstring starts with this (python -m minivit.stubs).
INTRO = """\
After the patch embedding, a learned class token is prepended to every sequence and learned position
embeddings are added (paper eq. 1):  z_0 = [x_class; x_p^1 E; ...; x_p^N E] + E_pos."""

# The stub's first lines after its docstring.
IMPORTS = NUMPY

TOPIC = Topic("tokens", "ex02_tokens.py", "Class token + position embeddings",
              ("cls_token_forward", "cls_token_backward", "pos_embed_forward", "pos_embed_backward"),
              intro=INTRO, imports=IMPORTS)
