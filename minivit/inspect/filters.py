"""Embedding filters (paper Fig. 7 left): the principal components of the patch-embedding
matrix E, shown as P x P x C images ("plausible basis functions for the fine structure within a patch")."""
from __future__ import annotations

import numpy as np

from minivit.backend import get_array_module, to_numpy
from minivit.inspect.figures import _plt, _save


def embedding_filters(model_or_weight, num_components: int = 28, patch_size: int | None = None,
                      channels: int | None = None):
    """Principal components of the patch-embedding filters (paper Fig. 7 left).

    E (P*P*C, D) has one filter per output channel: its D columns, each a P*P*C vector in
    patchify's (row, col, channel) order. PCA over the D filters: subtract the mean filter and
    take the right singular vectors of the (D, P*P*C) filter matrix.

    model_or_weight: a ViT, or E itself (then give patch_size and channels).
    returns: components (k, P, P, C), sorted by explained variance, each of unit norm and with
    its largest-magnitude entry positive (the sign of a principal component is arbitrary);
    explained: (k,) fraction of the filters' variance each explains.
    """
    if hasattr(model_or_weight, "patch_embed"):
        E = model_or_weight.patch_embed.weight.value
        patch_size, channels = model_or_weight.config.patch_size, model_or_weight.config.in_channels
    else:
        E = model_or_weight
        if patch_size is None or channels is None:
            raise ValueError("pass patch_size and channels with a bare embedding matrix")
    xp = get_array_module(E)
    P, C = patch_size, channels
    if E.shape[0] != P * P * C:
        raise ValueError(f"embedding matrix has {E.shape[0]} rows, expected P*P*C = {P * P * C}")
    filters = E.T.astype(np.float64)                          # (D, P*P*C): one filter per row
    filters = filters - filters.mean(axis=0, keepdims=True)
    _, S, Vt = xp.linalg.svd(filters, full_matrices=False)
    k = min(num_components, Vt.shape[0])
    comps = Vt[:k]
    idx = xp.argmax(xp.abs(comps), axis=1)
    signs = xp.sign(comps[xp.arange(k), idx])
    comps = comps * signs[:, None]
    var = S * S
    explained = var[:k] / xp.maximum(var.sum(), 1e-300)
    return comps.reshape(k, P, P, C), explained


def plot_embedding_filters(components, path, explained=None, title: str = "RGB embedding filters (first principal components)"):
    """A grid of the (k, P, P, C) components, each min-max scaled to [0, 1] for display."""
    plt = _plt()
    comps = to_numpy(components)
    k = len(comps)
    cols = min(7, k)
    rows = -(-k // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(1.3 * cols, 1.45 * rows + 0.4), squeeze=False)
    for i, a in enumerate(axes.ravel()):
        a.axis("off")
        if i >= k:
            continue
        c = comps[i]
        c = (c - c.min()) / max(float(c.max() - c.min()), 1e-12)
        a.imshow(c if c.shape[-1] == 3 else c[..., 0], cmap=None if c.shape[-1] == 3 else "gray",
                 interpolation="nearest")
        if explained is not None:
            a.set_title(f"{100 * float(to_numpy(explained)[i]):.1f}%", fontsize=7)
    fig.suptitle(title, fontsize=9)
    return _save(fig, path)
