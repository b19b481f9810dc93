"""Position embedding similarity (paper Fig. 7 center): the cosine similarity between the position
embedding of every patch and every other, drawn as a grid of grids."""
from __future__ import annotations

import numpy as np

from minivit.backend import get_array_module, to_numpy
from minivit.inspect.figures import _plt, _save


def position_similarity(model_or_pos, cls_token: bool | None = None, grid: tuple | None = None):
    """Cosine similarity between the position embeddings of all pairs of patches (Fig. 7 center).

    model_or_pos: a ViT (its ``position_table()``, whatever the kind) or a table (1, T, D) / (T, D).
    cls_token: whether row 0 is the class token's (excluded); taken from the model, else
        inferred (a length of the form 1 + g^2).
    returns: (gh, gw, gh, gw): sim[r, c] is the similarity map of patch (r, c) with every patch.
    """
    if hasattr(model_or_pos, "position_table"):
        pos = model_or_pos.position_table()
        if pos is None:
            raise ValueError("this model has no position embeddings (pos_embed='none')")
        cls_token = model_or_pos.config.pool == "cls"
    else:
        pos = model_or_pos
    pos = pos[0] if pos.ndim == 3 else pos
    xp = get_array_module(pos)
    T = pos.shape[0]
    if cls_token is None:
        cls_token = int(round(np.sqrt(T - 1))) ** 2 == T - 1 and int(round(np.sqrt(T))) ** 2 != T
    patches = pos[1:] if cls_token else pos
    n = patches.shape[0]
    gh, gw = grid or (int(round(np.sqrt(n))),) * 2
    if gh * gw != n:
        raise ValueError(f"{n} patch embeddings do not form a {gh}x{gw} grid")
    p = patches.astype(np.float64)
    p = p / xp.maximum(xp.linalg.norm(p, axis=1, keepdims=True), 1e-12)
    return (p @ p.T).reshape(gh, gw, gh, gw)


def plot_position_similarity(sim, path, title: str = "Position embedding similarity"):
    """The grid of grids: tile (r, c) shows patch (r, c)'s cosine similarity with every patch."""
    plt = _plt()
    sim = to_numpy(sim)
    gh, gw = sim.shape[:2]
    mosaic = np.full((gh * (gh + 1) - 1, gw * (gw + 1) - 1), np.nan)  # one NaN gap between tiles
    for r in range(gh):
        for c in range(gw):
            mosaic[r * (gh + 1):r * (gh + 1) + gh, c * (gw + 1):c * (gw + 1) + gw] = sim[r, c]
    fig, ax = plt.subplots(figsize=(5.2, 4.6))
    im = ax.imshow(mosaic, cmap="viridis", vmin=-1, vmax=1, interpolation="nearest")
    ax.set_xticks([c * (gw + 1) + gw / 2 - 0.5 for c in range(gw)], range(1, gw + 1), fontsize=6)
    ax.set_yticks([r * (gh + 1) + gh / 2 - 0.5 for r in range(gh)], range(1, gh + 1), fontsize=6)
    ax.set(xlabel="input patch column", ylabel="input patch row", title=title)
    fig.colorbar(im, ax=ax, label="cosine similarity", fraction=0.046)
    return _save(fig, path)
