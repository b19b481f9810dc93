"""Looking inside a trained ViT (paper Section 4.5, Figs. 6, 7 and 14).

Each analysis returns arrays (so it can be tested and reused) and has a ``plot_*`` helper that
writes a PNG:

* :func:`embedding_filters`: principal components of the patch-embedding matrix E, shown as
  P x P x C images (Fig. 7 left: "plausible basis functions for the fine structure within a patch").
* :func:`position_similarity`: cosine similarity between the position embedding of every patch
  and every other, drawn as a grid of grids (Fig. 7 center).
* :func:`mean_attention_distance`: per layer and head, how far (in pixels) a query patch looks,
  weighted by attention: the ViT analogue of a CNN's receptive field (Fig. 7 right).
* :func:`last_layer_attention` and :func:`attention_rollout`: where the class token's
  representation draws from, raw (last layer) and accumulated over all layers with Attention
  Rollout (Abnar & Zuidema 2020), overlaid on the input images (Figs. 6 and 14).

The attention weights A (B, h, T, T) come from :func:`attention_weights`, which runs the model
in eval mode and reads each block's cached softmax output.

:func:`inspect_checkpoint` (``python -m minivit inspect CHECKPOINT --out DIR``) runs all four
on a checkpoint (minivit's own, or an official ViT ``.npz``) and writes the PNGs.

Array code takes its library from its inputs (NumPy or CuPy); plots bring results to the host.

One analysis per file, its ``plot_*`` helper beside it: ``attention.py`` (the weights),
``distance.py``, ``maps.py`` (last layer and rollout), ``filters.py``, ``positions.py``;
``report.py`` (:func:`inspect_checkpoint`) and ``figures.py`` (saving PNGs). Every name is
importable from here (``from minivit.inspect import attention_rollout``, ``minivit.inspect.X``).
"""
from minivit.inspect.attention import _split_tokens, attention_weights, block_attention  # noqa: F401
from minivit.inspect.distance import mean_attention_distance, patch_distances, plot_attention_distance  # noqa: F401
from minivit.inspect.figures import _plt, _save  # noqa: F401
from minivit.inspect.filters import embedding_filters, plot_embedding_filters  # noqa: F401
from minivit.inspect.maps import (  # noqa: F401
    attention_rollout,
    last_layer_attention,
    plot_attention_maps,
    upsample_maps,
)
from minivit.inspect.positions import plot_position_similarity, position_similarity  # noqa: F401
from minivit.inspect.report import _logits, inspect_checkpoint  # noqa: F401
