"""Position embeddings resized to another patch grid *inside* the forward, with a backward.

Fine-tuning at another resolution (``ViT.resize``) interpolates the position embeddings once and
trains the result. Progressive resizing (``minivit/train/resize_schedule.py``) instead trains some steps
at a lower resolution (e.g. 24x24 images, a 6x6 grid) and the rest at the full one (32x32, 8x8)
with *one* set of position embeddings, stored at the full grid. The low-resolution steps use the
table interpolated to their grid, so their gradient must flow back through the interpolation to
the stored table.

Bilinear interpolation is linear in the table: along one axis, output j = w0[j] * in[i0[j]] +
w1[j] * in[i1[j]] (taps from ``minivit.interpolate``), i.e. out = M in with an (n_out, n_in)
matrix M. On the 2D grid it acts separably, out = M_h grid M_w^T (per channel), so the backward
is the transpose: dgrid = M_h^T dout M_w. The class token's row is copied, so its gradient is
copied back.

    pos_resize_forward:    pos (1, [1 +] gh*gw, D)  ->  (1, [1 +] gh'*gw', D)     (learned 1D table)
    table_resize_forward:  table (n, D)              ->  (n', D)                   (learned 2D row/col tables)

The forward is :func:`minivit.interpolate.interpolate_pos_embed` (the same numbers ``ViT.resize``
uses); the matrices only serve the backward.
"""
from __future__ import annotations

import numpy as np

from minivit.backend import get_array_module
from minivit.interpolate import _linear_taps, interpolate_pos_embed, resize_table_1d


def interpolation_matrix(n_in: int, n_out: int, align_corners: bool = False, dtype=np.float64):
    """The (n_out, n_in) host matrix M of 1D linear interpolation: resized = M @ original.
    Each row holds the two taps' weights (summing to 1)."""
    i0, i1, w0, w1 = _linear_taps(n_in, n_out, align_corners)
    m = np.zeros((n_out, n_in))
    rows = np.arange(n_out)
    np.add.at(m, (rows, i0), w0)        # add.at: at the edge i0 == i1 and both weights land there
    np.add.at(m, (rows, i1), w1)
    return m.astype(dtype)


def pos_resize_forward(pos, grid_h: int, grid_w: int, new_h: int, new_w: int, cls_token: bool = True):
    """Interpolate a 1D learned position table from its (grid_h, grid_w) grid to (new_h, new_w).

    pos: (1, [1 +] grid_h*grid_w, D)   cls_token: row 0 belongs to the class token (kept as is).
    returns: out (1, [1 +] new_h*new_w, D) (bilinear, by location in the image), cache
    """
    out = interpolate_pos_embed(pos, new_h, new_w, grid_h, grid_w, cls_token=cls_token)
    return out, (grid_h, grid_w, new_h, new_w, bool(cls_token))


def pos_resize_backward(dout, cache):
    """dout: (1, [1 +] new_h*new_w, D) -> dpos (1, [1 +] grid_h*grid_w, D).

    dgrid = M_h^T dout_grid M_w per channel (the transpose of the forward's linear map); the class
    token's row gets its gradient unchanged."""
    gh, gw, nh, nw, cls_token = cache
    xp = get_array_module(dout)
    D = dout.shape[-1]
    mh = xp.asarray(interpolation_matrix(gh, nh, dtype=dout.dtype))          # (nh, gh)
    mw = xp.asarray(interpolation_matrix(gw, nw, dtype=dout.dtype))          # (nw, gw)
    d = (dout[0, 1:] if cls_token else dout[0]).reshape(nh, nw, D)
    d = xp.einsum("ja,jkd->akd", mh, d)                                      # back along the rows: (gh, nw, D)
    d = xp.einsum("kb,akd->abd", mw, d).reshape(1, gh * gw, D)               # and the columns: (1, gh*gw, D)
    if cls_token:
        d = xp.concatenate([dout[:, :1], d], axis=1)
    return d


def table_resize_forward(table, n_out: int):
    """Linear interpolation of an (n, D) table (a 2D position embedding's row or column table).
    returns: out (n_out, D), cache"""
    return resize_table_1d(table, n_out), table.shape[0]


def table_resize_backward(dout, cache):
    """dout: (n_out, D) -> dtable (n, D) = M^T dout."""
    n_in = cache
    xp = get_array_module(dout)
    m = xp.asarray(interpolation_matrix(n_in, dout.shape[0], dtype=dout.dtype))
    return m.T @ dout
