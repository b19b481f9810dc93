"""Bilinear resizing of image batches and of position-embedding grids (paper Section 3.2).

Fine-tuning at a higher resolution keeps the patch size, so the sequence gets longer and the
learned position embeddings no longer fit. The paper "performs 2D interpolation of the
pre-trained position embeddings, according to their location in the original image"; the class
token's embedding is kept as is. :func:`interpolate_pos_embed` does exactly that: it lays the
patch rows of E_pos out on their (gh, gw) grid, resizes the grid bilinearly to (gh', gw') and
flattens it back.

Two conventions exist for where a resized grid's samples fall:

* ``align_corners=False`` (the default here): sample centres keep their *location in the image*.
  Output index j sits at input coordinate (j + 0.5) * n_in / n_out - 0.5 (clamped to the edge).
  This is what the paper's sentence describes, and what ``jax.image.resize``, PIL, TF and
  ``torch.nn.functional.interpolate(..., align_corners=False)`` do.
* ``align_corners=True``: the first and last samples map onto each other,
  j -> j * (n_in - 1) / (n_out - 1). The official 2020 code resized position embeddings with
  ``scipy.ndimage.zoom(order=1)``, which is this convention. It reproduces any function that is
  linear in (row, col) exactly, edges included.

At the same size both are the identity. Everything is array code on the input's library
(NumPy or CuPy): two gathers and two weighted sums, no Python loop over pixels.
"""
from __future__ import annotations

import numpy as np

from minivit.backend import get_array_module


def _linear_taps(n_in: int, n_out: int, align_corners: bool):
    """For each output index: the two input indices and their weights (host arrays)."""
    if n_in < 1 or n_out < 1:
        raise ValueError(f"sizes must be positive, got {n_in} -> {n_out}")
    j = np.arange(n_out, dtype=np.float64)
    if align_corners:
        src = j * ((n_in - 1) / (n_out - 1)) if n_out > 1 else np.zeros(1)
    else:
        src = (j + 0.5) * (n_in / n_out) - 0.5
    src = np.clip(src, 0.0, n_in - 1)
    i0 = np.floor(src).astype(np.int64)
    i1 = np.minimum(i0 + 1, n_in - 1)
    w1 = src - i0
    return i0, i1, 1.0 - w1, w1


def resize_bilinear(x, out_h: int, out_w: int, align_corners: bool = False):
    """Bilinear resize of a batch of images (or of any grid of feature vectors).

    x: (B, H, W, C) float, NumPy or CuPy   returns: (B, out_h, out_w, C), same library and dtype.
    Separable: first along H, then along W. No antialiasing (as torch's ``interpolate``): for
    downscaling by large factors, blur first.
    """
    if x.ndim != 4:
        raise ValueError(f"resize_bilinear expects (B, H, W, C), got shape {tuple(x.shape)}")
    xp = get_array_module(x)
    B, H, W, C = x.shape
    if (H, W) == (out_h, out_w):
        return x.copy()
    dtype = x.dtype if x.dtype.kind == "f" else np.float32
    x = x.astype(dtype, copy=False)
    i0, i1, w0, w1 = _linear_taps(H, out_h, align_corners)
    w0 = xp.asarray(w0.astype(dtype))[None, :, None, None]
    w1 = xp.asarray(w1.astype(dtype))[None, :, None, None]
    y = x[:, xp.asarray(i0)] * w0 + x[:, xp.asarray(i1)] * w1                  # (B, out_h, W, C)
    i0, i1, w0, w1 = _linear_taps(W, out_w, align_corners)
    w0 = xp.asarray(w0.astype(dtype))[None, None, :, None]
    w1 = xp.asarray(w1.astype(dtype))[None, None, :, None]
    return y[:, :, xp.asarray(i0)] * w0 + y[:, :, xp.asarray(i1)] * w1        # (B, out_h, out_w, C)


def resize_table_1d(table, n_out: int, align_corners: bool = False):
    """Linear interpolation of a (n, D) table of per-position vectors to (n_out, D).

    Used for the row and column tables of 2D learned position embeddings.
    """
    return resize_bilinear(table[None, :, None, :], n_out, 1, align_corners)[0, :, 0, :]


def interpolate_pos_embed(pos, new_gh: int, new_gw: int | None = None, old_gh: int | None = None,
                          old_gw: int | None = None, cls_token: bool | None = None, align_corners: bool = False):
    """Resize learned position embeddings to a new patch grid (paper Section 3.2).

    pos: (1, [1 +] gh*gw, D)  ->  (1, [1 +] new_gh*new_gw, D)

    new_gw: defaults to new_gh (square grid).
    old_gh, old_gw: the old grid; by default inferred as a square grid from the length.
    cls_token: whether row 0 is the class token's embedding (kept unchanged). By default it is
        inferred: a length of the form 1 + g*g means a class token, g*g means none.
    align_corners: see the module docstring (False: by location in the image).
    """
    if pos.ndim != 3 or pos.shape[0] != 1:
        raise ValueError(f"position embeddings must have shape (1, T, D), got {tuple(pos.shape)}")
    xp = get_array_module(pos)
    T, D = pos.shape[1], pos.shape[2]
    new_gw = new_gh if new_gw is None else new_gw
    if cls_token is None:
        if old_gh is not None:
            cls_token = T == 1 + old_gh * (old_gw or old_gh)
        else:
            g1, g0 = int(round(np.sqrt(T - 1))), int(round(np.sqrt(T)))
            cls_token = g1 * g1 == T - 1 and g0 * g0 != T
    n = T - 1 if cls_token else T
    if old_gh is None:
        old_gh = int(round(np.sqrt(n)))
        old_gw = old_gh
    old_gw = old_gh if old_gw is None else old_gw
    if old_gh * old_gw != n:
        raise ValueError(f"position embeddings have {n} patch rows (T={T}, class token: {cls_token}), "
                         f"which is not a {old_gh}x{old_gw} grid; pass old_gh and old_gw")
    grid = pos[:, 1:] if cls_token else pos
    grid = grid.reshape(1, old_gh, old_gw, D)                          # rows back onto the patch grid
    grid = resize_bilinear(grid, new_gh, new_gw, align_corners).reshape(1, new_gh * new_gw, D)
    if cls_token:
        grid = xp.concatenate([pos[:, :1], grid], axis=1)              # the class token's row, unchanged
    return grid.astype(pos.dtype, copy=False)


def resize_batches(size: int):
    """A ``batch_transform`` that resizes every normalized float batch (B, H, W, C) to size x size
    (bilinear, on the batch's device; the identity when the size already matches)."""

    def transform(x):
        if x.shape[1] == size and x.shape[2] == size:
            return x
        return resize_bilinear(x, size, size)

    transform.size = size
    return transform
