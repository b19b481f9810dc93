"""minivit: a Vision Transformer written from scratch in NumPy (and CuPy), every backward pass by hand.

Two levels (see DESIGN in README):

* ``minivit.layers`` — the functional core: one ``*_forward`` / ``*_backward`` pair per operation.
* ``minivit.modules`` / ``minivit.model`` — thin stateful wrappers that own parameters and call
  the functional pairs through ``minivit.ops.F`` (so a learner's implementation can be swapped in).
"""
__version__ = "0.1.0"

from minivit.model import PRESETS, ViT, ViTConfig  # noqa: E402,F401
