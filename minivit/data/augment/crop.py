"""Random crop with zero padding: pad each image by ``padding`` pixels (zeros), then cut an H x W
window at a random offset per image -- the standard CIFAR augmentation (4-pixel padding, as in
He et al. 2016, "Deep Residual Learning for Image Recognition", Sec. 4.2).

:func:`_crop_flip` is the one gather that crops and/or mirrors a batch; the pipeline fuses the
random crop with the horizontal flip (``flip.py``) through it.
"""
from __future__ import annotations

from minivit.backend import get_array_module
from minivit.data.augment.checks import _check_batch


def _draw_crop(rng, batch, padding):
    """(2, B) crop offsets in [0, 2*padding] (row, column) — drawn on the host."""
    return rng.integers(0, 2 * padding + 1, size=(2, batch))


def _crop_flip(x, padding, offsets=None, flips=None):
    """Crop with zero padding at per-image ``offsets`` (2, B) and/or mirror where ``flips``.

    Output pixel (i, j) of image b is padded[b, i + oy, j' + ox] with
    j' = W - 1 - j for flipped images (crop first, then flip). One gather.
    """
    xp = get_array_module(x)
    b, h, w, c = x.shape
    p = padding if offsets is not None else 0
    hp, wp = h + 2 * p, w + 2 * p
    src = xp.pad(x, ((0, 0), (p, p), (p, p), (0, 0))) if p else x
    # only the (B,) parameters travel to the device; the index is built there
    rows = xp.arange(h)[None, :]  # (1, H)
    cols = xp.arange(w)[None, :]  # (1, W)
    if flips is not None:
        cols = xp.where(xp.asarray(flips)[:, None], (w - 1) - cols, cols)  # (B, W)
    if offsets is not None:
        rows = rows + xp.asarray(offsets[0])[:, None]
        cols = cols + xp.asarray(offsets[1])[:, None]
    # flat pixel index into src viewed as (B*Hp*Wp, C)
    base = (xp.arange(b) * (hp * wp))[:, None, None]
    flat = base + (rows * wp)[:, :, None] + cols[:, None, :]  # (B, H, W)
    return src.reshape(-1, c)[flat]


def random_crop(x, padding, rng):
    """Random crop with zero padding: pad by ``padding``, cut an H x W window at a
    random per-image offset. ``x`` (B, H, W, C), any dtype; same shape out.
    ``padding = 0`` returns ``x`` unchanged (and draws nothing)."""
    _check_batch(x)
    if int(padding) != padding or padding < 0:
        raise ValueError(f"padding must be an integer >= 0, got {padding!r}")
    padding = int(padding)
    if padding == 0:
        return x
    offsets = _draw_crop(rng, x.shape[0], padding)
    return _crop_flip(x, padding, offsets=offsets)
