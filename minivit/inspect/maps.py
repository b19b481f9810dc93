"""Attention maps (paper Figs. 6 and 14): where the class token's representation draws from,
raw in the last layer and accumulated over all layers with Attention Rollout (Abnar & Zuidema 2020,
"Quantifying Attention Flow in Transformers"), overlaid on the input images."""
from __future__ import annotations

import numpy as np

from minivit.backend import get_array_module, to_numpy
from minivit.inspect.attention import _split_tokens
from minivit.inspect.figures import _plt, _save


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
