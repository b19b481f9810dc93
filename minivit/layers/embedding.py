"""The class token and the position embeddings (paper eq. 1).

z_0 = [x_class; x_p^1 E; ...; x_p^N E] + E_pos

* ``cls_token``: a learned vector x_class prepended to the sequence of patch embeddings;
  its final state is the image representation (eq. 4).
* ``pos_embed``: E_pos of shape (N+1, D) is *added* (not concatenated) to every sequence.
  The paper's default is learnable 1D; ``sincos_2d_position_embedding`` gives the fixed 2D
  sin-cos alternative used in the ablation (Appendix D.4), and "none" simply skips the add.
"""
import numpy as np

from minivit.backend import get_array_module


def cls_token_forward(x, cls):
    """Prepend the class token to every sequence (the x_class of eq. 1).

    x: (B, N, D)   cls: (1, 1, D)
    returns: out (B, N+1, D) with x's dtype: out[:, 0] is cls[0, 0] for every image, out[:, 1:] is x;
             cache

    Keeps the input's dtype (float32 in, float32 out) and does not modify its inputs.

    Derivation:
        Make an empty (B, N+1, D) array with x's dtype and fill position 0 and positions 1..N.
    """
    xp = get_array_module(x)
    B, N, D = x.shape
    if cls.shape != (1, 1, D):
        raise ValueError(f"class token must have shape (1, 1, {D}), got {tuple(cls.shape)}")
    out = xp.empty((B, N + 1, D), dtype=x.dtype)
    out[:, 0] = cls[0, 0]
    out[:, 1:] = x
    return out, None


def cls_token_backward(dout, cache):
    """dout: (B, N+1, D) -> dx (B, N, D), dcls (1, 1, D): the gradients with respect to x and cls.

    Keeps the dtype (float32 in, float32 out). Does not modify dout: the caller's array may be used
    elsewhere. Everything it needs comes from the cache (it may run after other forward calls). cls is
    shared by every image: a parameter gradient adds up the contributions of all of them, in the
    parameter's own shape.

    Derivation:
        dx = dout[:, 1:]. The same x_class was copied into every sequence, so its gradient is the
        sum over the batch: dcls = dout[:, :1].sum(axis=0, keepdims=True).
    """
    dcls = dout[:, :1].sum(axis=0, keepdims=True)
    dx = dout[:, 1:]
    return dx, dcls


def pos_embed_forward(x, pos):
    """Add position embeddings (the + E_pos of eq. 1).

    x: (B, T, D)   pos: (1, T, D)
    returns: out (B, T, D) = x + pos (the same table added to every image; x is not modified), cache

    Keeps the input's dtype (float32 in, float32 out).

    Derivation:
        Broadcasting adds pos to every image.
    """
    if pos.shape[1:] != x.shape[1:]:
        raise ValueError(
            f"position embedding has shape {tuple(pos.shape)} but the sequence is {tuple(x.shape)}: "
            "expected (1, T, D) with the same T and D (did the image size change? see interpolation)"
        )
    return x + pos, None


def pos_embed_backward(dout, cache):
    """dout: (B, T, D) -> dx (B, T, D), dpos (1, T, D): the gradients with respect to x and pos.

    Keeps the dtype (float32 in, float32 out). Does not modify dout: the caller's array may be used
    elsewhere. Everything it needs comes from the cache (it may run after other forward calls). pos[0,
    t] is shared by every image at position t (not across positions): a parameter gradient adds up the
    contributions of all of them, in the parameter's own shape.

    Derivation:
        dx = dout; the same table was added to every image, so dpos = dout.sum(axis=0, keepdims=True).
    """
    return dout, dout.sum(axis=0, keepdims=True)


def sincos_2d_position_embedding(grid_h, grid_w, dim, cls_token=True, temperature=10000.0, dtype=np.float32):
    """Fixed 2D sine-cosine position embeddings (no parameters).

    A quarter of the channels encode the row with sines, a quarter with cosines, and the same
    for the column, at geometrically spaced frequencies (as in "Attention is all you need",
    applied separately to each image axis). The class token's row is zero.

    returns: NumPy array (1, grid_h*grid_w [+1], dim)
    """
    if dim % 4:
        raise ValueError(f"sin-cos 2D position embeddings need a width divisible by 4, got {dim}")
    rows, cols = np.meshgrid(np.arange(grid_h), np.arange(grid_w), indexing="ij")
    omega = 1.0 / temperature ** (np.arange(dim // 4) / (dim // 4))
    r = rows.reshape(-1, 1) * omega           # (N, dim/4)
    c = cols.reshape(-1, 1) * omega
    emb = np.concatenate([np.sin(r), np.cos(r), np.sin(c), np.cos(c)], axis=1)   # (N, dim)
    if cls_token:
        emb = np.concatenate([np.zeros((1, dim)), emb], axis=0)
    return emb[None].astype(dtype)
