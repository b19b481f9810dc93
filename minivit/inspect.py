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
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from minivit.backend import get_array_module, to_numpy


# ------------------------------------------------------------------------ attention weights
def block_attention(block):
    """The attention weights A (B, h, T, T) of ``block``'s last forward pass, from its cache.

    The cache nesting (see ``layers/block.py`` and ``layers/attention.py``):
    ``block.cache`` = encoder-block cache, whose entry 1 is the MSA cache
    (qkv, attention, out, heads), whose entry 1 is the attention cache (q, k, v, A, scale).
    """
    try:
        A = block.cache[1][1][3]
    except (AttributeError, IndexError, TypeError, KeyError) as e:
        raise RuntimeError("could not find the attention weights in the encoder block's cache "
                           "(run model.forward first, with minivit's reference layers)") from e
    if getattr(A, "ndim", 0) != 4 or A.shape[-1] != A.shape[-2]:
        raise RuntimeError(f"unexpected attention cache entry with shape {getattr(A, 'shape', None)}; "
                           "expected (B, h, T, T)")
    return A


def attention_weights(model, x, batch_size: int = 64):
    """Attention weights of every block for images ``x``.

    x: (B, H, W, C) float, normalized as for training (on the model's device).
    returns: list of L arrays (B, h, T, T), rows summing to 1 (T = N+1 with a class token).
    Runs in eval mode (no dropout) with minivit's reference layers, ``batch_size`` images at a time.
    """
    from minivit import ops

    xp = get_array_module(x)
    out = [[] for _ in model.blocks]
    was_training = model.training
    model.eval()
    try:
        with ops.use(ops.reference()):
            for i in range(0, len(x), batch_size):
                model.forward(x[i:i + batch_size])
                for layer, block in enumerate(model.blocks):
                    out[layer].append(block_attention(block).copy())
    finally:
        model.train(was_training)
        model.cache = None
        for block in model.blocks:
            block.cache = None
    return [xp.concatenate(a) for a in out]


def _split_tokens(A, cls_token):
    """Index where patch tokens start (1 with a class token, else 0) and the grid side."""
    s = 1 if cls_token else 0
    n = A.shape[-1] - s
    g = int(round(np.sqrt(n)))
    return s, n, g


# ------------------------------------------------------------ Fig. 7 right: attention distance
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


# --------------------------------------------------------------------- Figs. 6, 14: attention maps
def last_layer_attention(attn, cls_token: bool = True):
    """Raw attention of the output token to the patches in the last layer, heads averaged.

    attn: list of (B, h, T, T). With a class token: row 0 of the last layer's attention,
    over the patch keys. Without one (GAP), the output is the mean of all tokens, so the map is
    the mean over all query rows.
    returns: (B, gh, gw) (rows of the map sum to at most 1: the rest went to the class token).
    """
    A = attn[-1].mean(axis=1)                                           # (B, T, T)
    s, n, g = _split_tokens(A, cls_token)
    m = A[:, 0, s:] if cls_token else A.mean(axis=1)
    return m.reshape(len(A), g, g)


def attention_rollout(attn, cls_token: bool = True, residual: bool = True, return_matrix: bool = False):
    """Attention Rollout (Abnar & Zuidema 2020), as in the paper's Figs. 6 and 14.

    For each layer: heads averaged, A_bar = mean_h A; the residual connection is accounted for by
    adding the identity and renormalizing the rows: A_hat = (A_bar + I) / 2. (Since the rows of
    A_bar sum to 1, "add I, renormalize" and "0.5 A_bar + 0.5 I" are the same thing.)
    The layers are then multiplied: R = A_hat_L ... A_hat_2 A_hat_1, so R[i, j] is how much
    output token i draws from input token j along all paths through the network.

    attn: list of L arrays (B, h, T, T).  residual: False gives the plain product of A_bar.
    returns: (B, gh, gw), the class token's row of R over the patches (without a class token:
    the mean over all rows, as GAP averages all tokens); with ``return_matrix`` also R (B, T, T).
    """
    xp = get_array_module(attn[0])
    B, _, T, _ = attn[0].shape
    eye = xp.eye(T, dtype=attn[0].dtype)
    R = xp.broadcast_to(eye, (B, T, T)).copy()
    for A in attn:
        Ab = A.mean(axis=1)
        if residual:
            Ab = 0.5 * Ab + 0.5 * eye
        R = Ab @ R
    s, n, g = _split_tokens(R, cls_token)
    m = R[:, 0, s:] if cls_token else R[:, :, s:].mean(axis=1)
    m = m.reshape(B, g, g)
    return (m, R) if return_matrix else m


def upsample_maps(maps, height: int, width: int):
    """(B, gh, gw) patch-level maps -> (B, height, width) bilinearly (for overlays)."""
    from minivit.interpolate import resize_bilinear

    return resize_bilinear(maps[..., None].astype(np.float32), height, width)[..., 0]


def plot_attention_maps(images, maps: dict, path, labels=None, title: str = "Attention to the input"):
    """One row per image: the image, then each map overlaid (heat map), then the image masked
    by the last map (as in Fig. 6).

    images: (B, H, W, 3) uint8 or float in [0, 1].  maps: {name: (B, gh, gw)}.
    labels: optional list of B strings (e.g. class names) for the row titles.
    """
    plt = _plt()
    images = to_numpy(images)
    imgs = images.astype(np.float32) / (255.0 if images.dtype == np.uint8 else 1.0)
    B, H, W = imgs.shape[:3]
    names = list(maps)
    up = {k: to_numpy(upsample_maps(maps[k], H, W)) for k in names}
    cols = 2 + len(names)
    fig, axes = plt.subplots(B, cols, figsize=(2.0 * cols, 2.0 * B), squeeze=False)
    for b in range(B):
        axes[b, 0].imshow(np.clip(imgs[b], 0, 1))
        axes[b, 0].set_title(labels[b] if labels is not None else "input", fontsize=8)
        for j, k in enumerate(names):
            m = up[k][b]
            m = (m - m.min()) / max(float(m.max() - m.min()), 1e-12)
            axes[b, 1 + j].imshow(np.clip(imgs[b], 0, 1))
            axes[b, 1 + j].imshow(m, cmap="jet", alpha=0.5)
            axes[b, 1 + j].set_title(k, fontsize=8)
        m = up[names[-1]][b]
        m = m / max(float(m.max()), 1e-12)
        axes[b, -1].imshow(np.clip(imgs[b] * m[..., None], 0, 1))
        axes[b, -1].set_title(f"image x {names[-1]}", fontsize=8)
    for a in axes.ravel():
        a.axis("off")
    fig.suptitle(title)
    return _save(fig, path)


# --------------------------------------------------------------- Fig. 7 left: embedding filters
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


# ------------------------------------------------------- Fig. 7 center: position similarity
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


# --------------------------------------------------------------------------- everything at once
def inspect_checkpoint(checkpoint, out, data_dir=None, num_images: int = 8, device=None, dataset_obj=None,
                       dataset: str | None = None, distance_images: int = 128, batch_size: int = 32):
    """Run the four analyses on a checkpoint and write PNGs into ``out``.

    checkpoint: a minivit checkpoint or an official ViT ``.npz`` (see ``minivit.pretrained``).
    Test images (CIFAR, or ``dataset_obj``) are normalized as the checkpoint expects and resized
    to its resolution when it differs. The attention distance averages over ``distance_images``
    images; the attention maps show the first ``num_images``.
    returns: dict of the written paths and the arrays behind them.
    """
    from minivit.data.augment import normalize
    from minivit.backend import get_xp
    from minivit.interpolate import resize_bilinear
    from minivit.pretrained import load_model

    xp = get_xp(device)
    model, info = load_model(checkpoint, xp=xp)
    c = model.config
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    result = {}

    comps, explained = embedding_filters(model)
    result["embedding_filters"] = dict(components=to_numpy(comps), explained=to_numpy(explained))
    result["filters_png"] = plot_embedding_filters(comps, out / "embedding_filters.png", explained)

    if c.pos_embed != "none":
        sim = position_similarity(model)
        result["position_similarity"] = to_numpy(sim)
        result["position_png"] = plot_position_similarity(sim, out / "position_similarity.png",
                                                          title=f"Position embedding similarity ({c.pos_embed})")

    if dataset_obj is None:
        from minivit.data.cifar import load_cifar

        dataset_obj = load_cifar(dataset or info.get("dataset") or "cifar10", data_dir)
    n = max(num_images, distance_images)
    raw = dataset_obj.x_test[:n]
    x = normalize(xp.asarray(raw), info["mean"], info["std"]).astype(model.dtype)
    if x.shape[1] != c.image_size or x.shape[2] != c.image_size:
        x = resize_bilinear(x, c.image_size, c.image_size)
    cls = c.pool == "cls"
    # Chunk by chunk, so that only one chunk's attention weights (L x (b, h, T, T)) is in memory.
    m = min(distance_images, len(x))
    dist = 0.0
    for i in range(0, m, batch_size):
        chunk = x[i:min(i + batch_size, m)]
        dist = dist + mean_attention_distance(attention_weights(model, chunk, batch_size), c.patch_size,
                                              cls_token=cls) * (len(chunk) / m)
    result["attention_distance"] = dist
    result["distance_png"] = plot_attention_distance(dist, out / "attention_distance.png", image_size=c.image_size)

    k = min(num_images, len(raw))
    few = attention_weights(model, x[:k], batch_size)
    maps = {"last layer": last_layer_attention(few, cls), "rollout": attention_rollout(few, cls)}
    result["attention_maps"] = {name: to_numpy(m) for name, m in maps.items()}
    preds = to_numpy(xp.argmax(_logits(model, x[:k]), axis=1))
    classes = list(getattr(dataset_obj, "classes", []))
    labels = None
    if classes and model.config.num_classes == len(classes):
        labels = [f"{classes[int(t)]} -> {classes[int(p)]}" for t, p in zip(dataset_obj.y_test[:k], preds)]
    result["maps_png"] = plot_attention_maps(raw[:k], maps, out / "attention_maps.png", labels=labels,
                                             title="class-token attention: last layer and rollout")
    np.savez(out / "inspect.npz", attention_distance=dist, filters=result["embedding_filters"]["components"],
             explained=result["embedding_filters"]["explained"],
             **({"position_similarity": result["position_similarity"]} if "position_similarity" in result else {}),
             last_layer=result["attention_maps"]["last layer"], rollout=result["attention_maps"]["rollout"])
    result["npz"] = out / "inspect.npz"
    return result


def _logits(model, x):
    was = model.training
    model.eval()
    try:
        return model.forward(x)
    finally:
        model.train(was)


# ----------------------------------------------------------------------------------- helpers
def _plt():
    from minivit.plots import _plt as plots_plt

    return plots_plt()


def _save(fig, path):
    import matplotlib.pyplot as plt

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
