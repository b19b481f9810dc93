"""Fast paths: quicker CPU versions of a few functional-core functions, kept *beside* the plain code.

The code to read is in ``minivit/layers`` and ``minivit/optim/__init__.py``: it says what each operation
computes, in the most direct way. This module computes the same thing (to float rounding) with
fewer passes over memory and fewer temporary arrays:

* work in place on arrays this function itself just allocated (never on its inputs);
* fold constants into the smallest array (scale q, (T, d), instead of the scores, (T, T));
* row-wise dot products with ``einsum`` (no (…, T, T) temporary), and row and column sums
  with a BLAS matrix-vector product (``a @ ones``: LayerNorm, the softmax's normalization, the
  linear layer's bias gradient), several times quicker than ``a.sum(axis=...)`` over short rows;
* run elementwise chains (LayerNorm, GELU) row block by row block, so that only the first read
  and the last write of each block go to memory and the passes in between stay in cache, and
  fold a neighbour's pass into the same blocks (the MLP: fc1's bias add before the GELU, the
  bias gradient's sum after its backward);
* write matmul results straight into the layout the next step needs
  (``np.matmul(..., out=view)``) instead of ``stack`` + ``transpose`` + copy.

Every function has the signature and return values of its reference twin, and caches with the
same layout (``minivit.inspect`` reads the attention weights A out of the MSA cache; the
reference backward passes accept a fast forward's cache and vice versa). ``tests/test_fast.py``
compares each one with the reference in float64 and float32.

The code is in two modules beside this one: ``minivit/fast/attention.py`` (softmax, attention,
multi-head self-attention) and ``minivit/fast/layers.py`` (LayerNorm, GELU, the linear layer's
backward, AdamW); this module gathers them.

These are NumPy (CPU) paths: called with CuPy arrays, every function here simply runs the
reference implementation. The GPU's counterpart is ``minivit/fast/fused/__init__.py`` (CUDA kernels), which
``functions()`` adds on top.

Turning them on and off. Nothing here is used unless you ask for it:

    from minivit import fast, ops
    with ops.use(fast.functions()):     # {} (reference everywhere) when MINIVIT_FAST_PATHS=0
        ...
    python -m minivit train --impl fast        # the same from the command line
    MINIVIT_FAST_PATHS=0 python -m minivit train --impl fast   # ... switched off again

``ops.use(fast)`` and ``ops.use(fast.FUNCTIONS)`` install them unconditionally (for tests).
"""
from __future__ import annotations

import os

from minivit import ops
from minivit.fast.attention import (  # noqa: F401 - the fast functions, gathered here
    _attention, _attention_backward, attention_backward, attention_forward, mhsa_backward, mhsa_forward,
    softmax_backward, softmax_forward)
from minivit.fast.layers import (  # noqa: F401
    _numpy, adamw_update, gelu_backward, gelu_forward, layernorm_backward, layernorm_forward, linear_backward,
    mlp_backward, mlp_forward)

ENV_VAR = "MINIVIT_FAST_PATHS"


def enabled() -> bool:
    """False when the environment variable MINIVIT_FAST_PATHS is "0" (or "false", "off", "no")."""
    return os.environ.get(ENV_VAR, "1").strip().lower() not in ("0", "false", "off", "no")


# ------------------------------------------------------------------------------ exports
FAST_NAMES = (
    "softmax_forward", "softmax_backward",
    "attention_forward", "attention_backward",
    "mhsa_forward", "mhsa_backward",
    "layernorm_forward", "layernorm_backward",
    "gelu_forward", "gelu_backward",
    "linear_backward",
    "mlp_forward", "mlp_backward",
    "adamw_update",
)
FUNCTIONS = {name: globals()[name] for name in FAST_NAMES}   # for ops.use / ops.install
assert set(FAST_NAMES) <= set(ops.FUNCTION_NAMES)


def functions() -> dict:
    """The fast functions to pass to ``ops.use`` / ``ops.install``; {} (the reference everywhere)
    when MINIVIT_FAST_PATHS=0. On top of them, the fused GPU kernels that MINIVIT_FUSED chooses
    (``minivit.fast.fused``: by default only those a GPU has verified); they run only on CuPy arrays."""
    if not enabled():
        return {}
    from minivit.fast import fused

    return {**FUNCTIONS, **fused.functions(fallback=FUNCTIONS)}
