"""Learnable 2D position embeddings (paper Appendix D.4, "2-dimensional embedding").

Instead of one learned vector per patch (1D, the default), two smaller tables are learned,
one per image axis, each of width D/2: a row ("Y") embedding and a column ("X") embedding.
The patch at grid position (r, c) gets their concatenation:

    E_pos[r * gw + c] = [ row[r] ; col[c] ]        row: (gh, D/2)   col: (gw, D/2)

so the table has gh*gw rows but only (gh + gw) * D/2 parameters. The class token, which has
no place in the grid, gets a zero position embedding (its own learned vector x_class already
plays that role). The result is added to the tokens with ``pos_embed_forward`` as usual.

The paper found none vs. some position embedding matters, but 1D vs. 2D vs. relative barely
does (Table 8); ``benchmarks/pos_embed_ablation.py`` repeats the comparison on CIFAR-10.
"""
from minivit.backend import get_array_module


def learned_2d_pos_forward(row, col, cls_token=True):
    """Build the (1, [1 +] gh*gw, D) position table from the row and column tables.

    row: (gh, D/2)   col: (gw, D/2)   cls_token: prepend a zero row for the class token.
    returns: table (1, T, D) with T = gh*gw (+1), cache
    """
    xp = get_array_module(row)
    gh, half = row.shape
    gw, half_c = col.shape
    if half != half_c:
        raise ValueError(f"row and column tables must have the same width, got {tuple(row.shape)} and {tuple(col.shape)}")
    grid = xp.empty((gh, gw, 2 * half), dtype=row.dtype)
    grid[:, :, :half] = row[:, None, :]          # the row embedding, repeated along each row
    grid[:, :, half:] = col[None, :, :]          # the column embedding, repeated down each column
    table = grid.reshape(gh * gw, 2 * half)
    if cls_token:
        table = xp.concatenate([xp.zeros((1, 2 * half), dtype=row.dtype), table], axis=0)
    return table[None], (gh, gw, half, cls_token)


def learned_2d_pos_backward(dtable, cache):
    """dtable: (1, T, D) -> drow (gh, D/2), dcol (gw, D/2).

    row[r] was copied into every patch of grid row r, so its gradient is the sum of their
    gradients' first halves; col[c] likewise sums over grid column c (second halves).
    """
    gh, gw, half, cls_token = cache
    d = dtable[0, 1:] if cls_token else dtable[0]
    d = d.reshape(gh, gw, 2 * half)
    return d[:, :, :half].sum(axis=1), d[:, :, half:].sum(axis=0)
