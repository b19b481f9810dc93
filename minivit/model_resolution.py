"""The ViT at another head or resolution: fine-tuning (paper Section 3.2) and flexible_resolution.

Functions of a :class:`minivit.model.ViT` (its ``config``, ``head`` and position-embedding parameters)
that change what the model was built for; ViT's methods of the same names call them:

* :func:`replace_head`: the pre-training head (and its hidden tanh layer) swapped for a
  zero-initialized Linear(D, K) for the new task;
* :func:`resize`: a new input resolution, same patch size: the position embeddings interpolated to
  the new (H/P, W/P) grid (:func:`minivit.interpolate.interpolate_pos_embed`), once, in place;
* :func:`position_table`: the (1, T, D) table the forward adds, whatever its kind;
* :func:`other_grid_pos`: with ``flexible_resolution``, the same interpolation inside each forward
  (and its gradient in the backward) for a batch at another grid: every progressive-resizing run.
"""
from __future__ import annotations

import dataclasses

import numpy as np

from minivit.backend import get_array_module, to_device
from minivit.interpolate import interpolate_pos_embed, resize_table_1d
from minivit.layers.embedding import sincos_2d_position_embedding
from minivit.modules import Linear
from minivit.ops import F


def other_grid_pos(model, z, grid, cache):
    """Add position embeddings for a (gh, gw) patch grid other than the configured one
    (``flexible_resolution``): the tables are interpolated to it, with a backward.
    z: (B, T, D) -> (B, T, D)."""
    c, (gh, gw) = model.config, grid
    if c.pos_embed == "learned":
        table, cache["pos_resize"] = F.pos_resize_forward(model.pos_embed.value, c.grid_size, c.grid_size,
                                                          gh, gw, cls_token=c.pool == "cls")
    elif c.pos_embed == "learned2d":
        row, cache["row_resize"] = F.table_resize_forward(model.pos_embed_row.value, gh)
        col, cache["col_resize"] = F.table_resize_forward(model.pos_embed_col.value, gw)
        table, cache["pos2d"] = F.learned_2d_pos_forward(row, col, cls_token=c.pool == "cls")
    elif c.pos_embed == "sincos":               # fixed: computed for this grid
        return z + to_device(sincos_2d_position_embedding(gh, gw, c.dim, cls_token=c.pool == "cls",
                                                          dtype=z.dtype), get_array_module(z))
    else:                                        # 'none'
        return z
    z, cache["pos"] = F.pos_embed_forward(z, table)
    return z

def position_table(model):
    """The position embeddings the forward adds, (1, T, D) on the model's device, or None
    for pos_embed='none'. (For 'learned2d' the table built from the row and column tables.)"""
    c = model.config
    if c.pos_embed == "learned":
        return model.pos_embed.value
    if c.pos_embed == "sincos":
        return model.fixed_pos
    if c.pos_embed == "learned2d":
        return F.learned_2d_pos_forward(model.pos_embed_row.value, model.pos_embed_col.value, c.pool == "cls")[0]
    return None

def replace_head(model, num_classes: int, seed: int = 0):
    """Swap the head for fine-tuning: a single zero-initialized Linear(D, num_classes).

    As in the paper (Section 3.2), the pre-training head is removed, including its hidden
    tanh layer (``pre_logits``) when there is one. Returns the model. Call it *before*
    creating an optimizer: the new head is a new pair of Parameters.
    """
    if int(num_classes) < 1:
        raise ValueError(f"num_classes must be positive, got {num_classes}")
    xp = get_array_module(model.head.weight.value)
    model.pre_logits = None
    model.head = Linear(model.config.dim, int(num_classes), np.random.default_rng(seed), model.dtype, zero_init=True)
    if xp is not np:
        model.head.to(xp)
    model.config = dataclasses.replace(model.config, num_classes=int(num_classes), representation_size=None)
    model.train(model.training)
    return model

def resize(model, image_size: int, align_corners: bool = False):
    """Change the input resolution, keeping the patch size (paper Section 3.2).

    The sequence gets longer (or shorter). Learned 1D position embeddings are laid out on
    their (H/P, W/P) grid and interpolated bilinearly to the new grid, the class token's row
    kept as is (:func:`interpolate_pos_embed`); 2D learned row/column tables are
    interpolated linearly; fixed sin-cos tables are recomputed. Returns the model. Call it
    before creating an optimizer (parameter shapes change).
    """
    c = model.config
    if image_size % c.patch_size:
        raise ValueError(f"image size {image_size} is not divisible by the patch size {c.patch_size}")
    old, new = c.grid_size, image_size // c.patch_size
    model.config = dataclasses.replace(c, image_size=int(image_size))
    if c.pos_embed == "learned":
        model.pos_embed.value = interpolate_pos_embed(model.pos_embed.value, new, new, old, old,
                                                     cls_token=c.pool == "cls", align_corners=align_corners)
        model.pos_embed.grad = None
    elif c.pos_embed == "learned2d":
        for p in (model.pos_embed_row, model.pos_embed_col):
            p.value = resize_table_1d(p.value, new, align_corners)
            p.grad = None
    elif c.pos_embed == "sincos":
        model._moved(None, None)          # recomputes the fixed table for the new grid
    return model
