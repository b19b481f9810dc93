"""Mean attention distance (paper Fig. 7 right): per layer and head, how far in pixels a query
patch looks, weighted by attention -- the ViT analogue of a CNN's receptive field size."""
from __future__ import annotations

import numpy as np

from minivit.backend import get_array_module, to_numpy
from minivit.inspect.attention import _split_tokens
from minivit.inspect.figures import _plt, _save


def patch_distances(grid_h: int, grid_w: int, patch_size: int):
    """(N, N) Euclidean distances in pixels between patch centres (N = grid_h * grid_w).

    Patch n sits at grid row n // grid_w, column n % grid_w; its centre at
    ((row + 0.5) P, (col + 0.5) P) pixels; the 0.5 cancels in differences.
    """
    r, c = np.divmod(np.arange(grid_h * grid_w), grid_w)
    dr = r[:, None] - r[None, :]
    dc = c[:, None] - c[None, :]
    return patch_size * np.sqrt(dr * dr + dc * dc)


def mean_attention_distance(attn, patch_size: int, cls_token: bool = True, grid: tuple | None = None):
    """Mean attention distance per layer and head, in pixels (paper Fig. 7 right).

    attn: list of L arrays (B, h, T, T) (from :func:`attention_weights`), or one (L, B, h, T, T) array.
    For a query patch q: d_q = sum_k A[q, k] * dist(q, k), with dist the pixel distance between
    patch centres; then the mean over query patches and images.

    Choice: the class token is excluded from both queries and keys (it has no position in the
    image). A query's attention to the other patches is renormalized to sum to 1, so d_q is the
    distance *among the patches it attends to*. cls_token: whether token 0 is the class token.
    grid: (gh, gw), by default square.
    returns: (L, h) array (on the host).
    """
    s, n, g = _split_tokens(attn[0], cls_token)
    gh, gw = grid or (g, g)
    if gh * gw != n:
        raise ValueError(f"{n} patch tokens do not form a {gh}x{gw} grid")
    xp = get_array_module(attn[0])
    dist = xp.asarray(patch_distances(gh, gw, patch_size).astype(np.float64))
    rows = []
    for A in attn:
        Ap = A[..., s:, s:].astype(np.float64)                          # (B, h, N, N) patch -> patch
        Ap = Ap / xp.maximum(Ap.sum(axis=-1, keepdims=True), 1e-12)     # renormalize over patch keys
        d = (Ap * dist).sum(axis=-1)                                    # (B, h, N): per query
        rows.append(d.mean(axis=(0, 2)))                                # (h,)
    return to_numpy(xp.stack(rows))


def plot_attention_distance(dist, path, image_size: int | None = None, title: str = "Mean attention distance"):
    """Scatter of the (L, h) distances against depth, one dot per head (as in Fig. 7 right)."""
    plt = _plt()
    dist = to_numpy(dist)
    L, H = dist.shape
    fig, ax = plt.subplots(figsize=(5, 4))
    for h in range(H):
        ax.scatter(np.arange(1, L + 1), dist[:, h], s=18, label=f"head {h + 1}" if H <= 16 else None)
    if image_size:
        ax.set_ylim(0, image_size)
    ax.set(xlabel="network depth (layer)", ylabel="mean attention distance (pixels)", title=title)
    ax.set_xticks(range(1, L + 1))
    ax.grid(alpha=0.3)
    if H <= 16:
        ax.legend(fontsize=6, ncol=2, loc="lower right")
    return _save(fig, path)
