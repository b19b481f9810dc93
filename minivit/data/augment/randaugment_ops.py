"""The fourteen RandAugment operations, vectorized over a batch (used by ``randaugment.py``).

Colour ops follow PIL's ``ImageOps`` / ``ImageEnhance`` (the ops torchvision's RandAugment uses);
geometric ops (rotate, shear, translate) are inverse affine maps applied by one nearest-neighbour
gather. The values, approximations and references are in ``randaugment.py``'s docstring.
"""
from __future__ import annotations

import numpy as np

from minivit.backend import get_array_module

#: Grey value given to pixels that a RandAugment geometric op pulls in from
#: outside the image.
FILL = 128


# ---------------------------------------------------------------------------
# RandAugment: the ops
#
# Each colour op is f(x, v) -> x' with x a uint8 (s, H, W, C) device array
# and v a float32 HOST array (s,) of per-image values in the op's own units
# (factor, bits, threshold). Geometric ops build (s, 2, 3) inverse affine
# matrices on the host; one gather applies them.


def _to_uint8(xp, y):
    """Round a float array to nearest and clip to [0, 255] -> uint8 (``y`` is overwritten)."""
    xp.rint(y, out=y)
    xp.clip(y, 0, 255, out=y)
    return y.astype(np.uint8)


def _col(xp, v, dtype=np.float32):
    """Per-image host values (s,) -> device (s, 1, 1, 1) for broadcasting."""
    return xp.asarray(np.asarray(v, dtype=dtype).reshape(-1, 1, 1, 1))


def _blend(xp, degenerate, x, factor):
    """degenerate + factor * (x - degenerate), float32, rounded to uint8.
    factor 1 returns x, factor 0 the degenerate image."""
    f = _col(xp, factor)
    out = x.astype(np.float32)
    out -= degenerate
    out *= f
    out += degenerate
    return _to_uint8(xp, out)


def _grey(xp, x):
    """ITU-R 601-2 luma (PIL's 'L'), float32 (s, H, W, 1)."""
    g = x[..., 0:1].astype(np.float32) * np.float32(0.299)
    g += x[..., 1:2].astype(np.float32) * np.float32(0.587)
    g += x[..., 2:3].astype(np.float32) * np.float32(0.114)
    return g


def _op_identity(x, v):
    return x


def _op_brightness(x, v):
    xp = get_array_module(x)
    return _blend(xp, xp.zeros((), np.float32), x, v)


def _op_color(x, v):
    xp = get_array_module(x)
    if x.shape[-1] != 3:  # saturation needs RGB; grey images have none
        return x
    return _blend(xp, _grey(xp, x), x, v)


def _op_contrast(x, v):
    xp = get_array_module(x)
    g = _grey(xp, x) if x.shape[-1] == 3 else x.astype(np.float32)
    mean = g.reshape(g.shape[0], -1).mean(axis=1).reshape(-1, 1, 1, 1)
    return _blend(xp, mean, x, v)


def _op_sharpness(x, v):
    """PIL ImageEnhance.Sharpness: blend with the image smoothed by the 3x3 kernel
    [[1,1,1],[1,5,1],[1,1,1]]/13 (border pixels are kept as they are)."""
    xp = get_array_module(x)
    s, h, w, c = x.shape
    if h < 3 or w < 3:
        return x
    # work on (s, H, W*C) rows: a shift by one pixel along W is a shift by C
    xf = x.astype(np.float32).reshape(s, h, w * c)
    inner = (slice(None), slice(1, h - 1), slice(c, (w - 1) * c))
    acc = xf[inner] * np.float32(4.0)  # centre weight 5 = 4 + the (1, 1) term below
    for dy in range(3):
        for dx in range(3):
            acc += xf[:, dy:dy + h - 2, dx * c:(dx + w - 2) * c]
    acc *= np.float32(1.0 / 13.0)
    degenerate = xf.copy()
    degenerate[inner] = xp.rint(acc, out=acc)
    xf -= degenerate  # blend in place: degenerate + f * (x - degenerate)
    xf *= _col(xp, v).reshape(-1, 1, 1)
    xf += degenerate
    return _to_uint8(xp, xf).reshape(s, h, w, c)


def _op_posterize(x, v):
    """Keep the top ``v`` bits (0..8) of every channel value."""
    xp = get_array_module(x)
    bits = np.clip(np.rint(np.asarray(v)), 0, 8).astype(np.int64)
    mask = ((0xFF << (8 - bits)) & 0xFF).astype(np.uint8)
    return x & _col(xp, mask, np.uint8)


def _op_solarize(x, v):
    """Invert (255 - x) every value >= threshold ``v`` (v = 256: identity, 0: invert)."""
    xp = get_array_module(x)
    t = np.ceil(np.clip(np.asarray(v, dtype=np.float32), 0, 256)).astype(np.int16)
    return xp.where(x >= _col(xp, t, np.int16), 255 - x, x)


def _op_autocontrast(x, v):
    """PIL ImageOps.autocontrast (cutoff 0): per image and channel, map [min, max]
    linearly onto [0, 255] (floor); constant channels are left unchanged."""
    xp = get_array_module(x)
    # (two single-axis reductions: much faster on NumPy than axis=(1, 2))
    lo = x.min(axis=1).min(axis=1)[:, None, None, :].astype(np.float32)
    hi = x.max(axis=1).max(axis=1)[:, None, None, :].astype(np.float32)
    span = hi - lo
    scale = xp.where(span > 0, np.float32(255.0) / xp.maximum(span, np.float32(1.0)), np.float32(1.0))
    lo = xp.where(span > 0, lo, np.float32(0.0))
    y = x.astype(np.float32)
    y -= lo
    y *= scale
    # floor((x - lo) * 255 / span) exactly: a non-integer true value is at least
    # 1/span >= 1/255 below the next integer, far more than float32 error + 1e-3
    y += np.float32(1e-3)
    xp.clip(y, 0, 255, out=y)
    return y.astype(np.uint8)


def _op_equalize(x, v):
    """PIL ImageOps.equalize, per image and channel, all at once: one bincount
    histogram over (image, channel, value), cumsum, PIL's lookup table."""
    xp = get_array_module(x)
    s, h, w, c = x.shape
    rows = (np.arange(s)[:, None] * c + np.arange(c)[None, :]) * 256  # (s, c)
    key = x.astype(np.int32) + xp.asarray(rows.astype(np.int32))[:, None, None, :]
    hist = xp.bincount(key.ravel(), minlength=s * c * 256).reshape(s, c, 256)
    top = x.max(axis=1).max(axis=1).astype(np.int64)  # largest value present, (s, c)
    h_last = xp.take_along_axis(hist, top[:, :, None], axis=2)  # (s, c, 1)
    step = (h * w - h_last) // 255
    cum = xp.cumsum(hist, axis=2) - hist  # pixels strictly below each value
    lut = (cum + step // 2) // xp.maximum(step, 1)
    lut = xp.where(step > 0, xp.minimum(lut, 255), xp.arange(256))
    return lut.astype(np.uint8).reshape(-1)[key]


def _affine_rotate(v, h, w):
    a = np.deg2rad(np.asarray(v, dtype=np.float64))
    cos, sin = np.cos(a), np.sin(a)
    z = np.zeros_like(a)
    # PIL's Image.rotate convention: positive angles turn the content counter-clockwise
    return np.stack([np.stack([cos, -sin, z], -1), np.stack([sin, cos, z], -1)], 1)


def _affine_shear_x(v, h, w):
    v = np.asarray(v, dtype=np.float64)
    o, z = np.ones_like(v), np.zeros_like(v)
    return np.stack([np.stack([o, v, z], -1), np.stack([z, o, z], -1)], 1)


def _affine_shear_y(v, h, w):
    v = np.asarray(v, dtype=np.float64)
    o, z = np.ones_like(v), np.zeros_like(v)
    return np.stack([np.stack([o, z, z], -1), np.stack([v, o, z], -1)], 1)


def _affine_translate_x(v, h, w):
    v = np.asarray(v, dtype=np.float64)
    o, z = np.ones_like(v), np.zeros_like(v)
    return np.stack([np.stack([o, z, -v], -1), np.stack([z, o, z], -1)], 1)


def _affine_translate_y(v, h, w):
    v = np.asarray(v, dtype=np.float64)
    o, z = np.ones_like(v), np.zeros_like(v)
    return np.stack([np.stack([o, z, z], -1), np.stack([z, o, -v], -1)], 1)


def _affine_gather(x, mats, fill=FILL):
    """Warp each image by its inverse affine map (s, 2, 3) (host), nearest neighbour.

    Output pixel at centred coordinates (u, w) = (col - cx, row - cy) takes the
    input pixel at mats @ (u, w, 1) (+ centre); outside the image -> ``fill``.
    """
    xp = get_array_module(x)
    s, h, w, c = x.shape
    m = xp.asarray(np.asarray(mats, dtype=np.float32))  # (s, 2, 3)
    cy, cx = (h - 1) / 2.0, (w - 1) / 2.0
    u = xp.asarray((np.arange(w, dtype=np.float32) - np.float32(cx))[None, None, :])  # (1, 1, W)
    vv = xp.asarray((np.arange(h, dtype=np.float32) - np.float32(cy))[None, :, None])  # (1, H, 1)
    m = m[:, :, :, None, None]  # (s, 2, 3, 1, 1)
    src_x = m[:, 0, 0] * u + m[:, 0, 1] * vv + (m[:, 0, 2] + np.float32(cx))
    src_y = m[:, 1, 0] * u + m[:, 1, 1] * vv + (m[:, 1, 2] + np.float32(cy))
    ix = xp.floor(src_x + np.float32(0.5)).astype(np.int32)  # (s, H, W)
    iy = xp.floor(src_y + np.float32(0.5)).astype(np.int32)
    valid = (ix >= 0) & (ix < w) & (iy >= 0) & (iy < h)
    xp.clip(ix, 0, w - 1, out=ix)
    xp.clip(iy, 0, h - 1, out=iy)
    base = xp.asarray((np.arange(s, dtype=np.int32) * (h * w))[:, None, None])
    out = x.reshape(-1, c)[base + iy * w + ix]  # (s, H, W, C)
    return xp.where(valid[..., None], out, xp.asarray(fill, dtype=x.dtype))


#: The default RandAugment op list (torchvision's RandAugment set).
RANDAUGMENT_OPS = (
    "identity",
    "autocontrast",
    "equalize",
    "rotate",
    "solarize",
    "color",
    "posterize",
    "contrast",
    "brightness",
    "sharpness",
    "shear_x",
    "shear_y",
    "translate_x",
    "translate_y",
)

_COLOR_OPS = {
    "identity": _op_identity,
    "autocontrast": _op_autocontrast,
    "equalize": _op_equalize,
    "solarize": _op_solarize,
    "color": _op_color,
    "posterize": _op_posterize,
    "contrast": _op_contrast,
    "brightness": _op_brightness,
    "sharpness": _op_sharpness,
}

_AFFINE_OPS = {
    "rotate": _affine_rotate,
    "shear_x": _affine_shear_x,
    "shear_y": _affine_shear_y,
    "translate_x": _affine_translate_x,
    "translate_y": _affine_translate_y,
}
