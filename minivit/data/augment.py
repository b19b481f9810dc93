"""Batch data augmentation and normalization that runs on the device.

Everything here works on a whole batch at once, with NumPy on the CPU or CuPy
on a GPU (the array module is taken from the input, see
:func:`minivit.backend.get_array_module`). There is no Python loop over
images; at most a loop over a handful of operation *types*.

Randomness
----------
Every random *parameter* (crop offsets, flip bits, RandAugment op choices and
signs, the mixup lambda and pairing, erasing boxes) is a small array drawn on
the HOST from the ``numpy.random.Generator`` passed in as ``rng`` and then
moved to the device with ``xp.asarray``. Only the pixel work runs on the
device. So the same seed gives bit-identical augmentation on NumPy and CuPy,
and a resumed run (which rebuilds ``rng`` from (seed, epoch, step), see
:func:`minivit.backend.make_rng`) re-creates exactly the same numbers. No
global random state is ever used. The number of values each function draws
does not depend on the pixel data.

Pipeline (:func:`augment_batch`)
--------------------------------
uint8 ops (random crop + horizontal flip, fused into one gather; RandAugment)
-> :func:`normalize` to float32 -> :func:`random_erasing` -> :func:`mix_batch`
(mixup / CutMix). With ``train=False`` only :func:`normalize` runs.

Targets: when mixing is enabled in the config (``mixup_alpha > 0`` or
``cutmix_alpha > 0``, and ``mix_prob > 0``) :func:`augment_batch` ALWAYS
returns float32 soft targets ``(B, K)`` (plain one-hot rows for a batch that
the ``mix_prob`` draw left unmixed), so the target type never changes within
a run. Otherwise it returns the int64 labels ``(B,)``. Label smoothing is the
loss's job, not done here.

RandAugment
-----------
Magnitudes use torchvision's scale: ``m`` in ``[0, 30]`` (default 9), each op's
value grows linearly from "no change" at ``m = 0`` to its maximum at
``m = 30``; ops marked signed get a random sign per image. See
:data:`RANDAUGMENT_OPS` and :data:`OP_RANGES`:

==============  =====================================  ======================
op              value at magnitude m                   meaning
==============  =====================================  ======================
identity        -                                      no change
autocontrast    -                                      per-channel min/max stretch
equalize        -                                      per-channel histogram equalization
rotate          +-30 * m/30 degrees                    rotation about the centre (+ = CCW)
solarize        threshold 256 * (1 - m/30)             invert pixels >= threshold
color           factor 1 +- 0.9 * m/30                 saturation (blend with grey)
posterize       bits 8 - round(4 * m/30)               keep the top `bits` bits
contrast        factor 1 +- 0.9 * m/30                 blend with the mean grey level
brightness      factor 1 +- 0.9 * m/30                 blend with black
sharpness       factor 1 +- 0.9 * m/30                 blend with a 3x3 smoothed image
shear_x/_y      +-0.3 * m/30                           shear factor, about the centre
translate_x/_y  +-(150/331) * m/30 * width/height      shift in pixels
==============  =====================================  ======================

Implementation notes and deliberate approximations:

* Geometric ops (rotate, shear, translate) are one vectorized affine gather
  per round: nearest neighbour, about the image centre, pixels that come
  from outside the image are filled with grey ``FILL = 128`` (≈ the data
  mean, so ≈ 0 after normalization). Rotation and shear agree with PIL's
  ``Image.rotate`` / ``Image.transform`` (NEAREST) up to exact rounding ties.
* On CuPy the pipeline never waits for the GPU except inside ``equalize``
  (``cupy.bincount`` reads the largest key back to size its output).
* ``equalize`` and ``autocontrast`` follow PIL's ``ImageOps`` algorithms
  exactly (per image, per channel; equalize via a batched ``bincount``
  histogram and ``cumsum``).
* ``solarize`` uses threshold ``256 * (1 - m/30)`` (instead of torchvision's
  ``255 * ...``) so that ``m = 0`` is exactly the identity; ``m = 30`` inverts.
* Blend ops (color, contrast, brightness, sharpness) compute in float32 and
  round to nearest (PIL/torchvision truncate); the grey image is not rounded
  to uint8 first.
* With ``m = 0`` every op except autocontrast and equalize is the identity.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from minivit.backend import get_array_module

__all__ = [
    "CIFAR10_MEAN",
    "CIFAR10_STD",
    "CIFAR100_MEAN",
    "CIFAR100_STD",
    "FILL",
    "RANDAUGMENT_OPS",
    "OP_RANGES",
    "AugmentConfig",
    "normalize",
    "random_crop",
    "random_flip",
    "rand_augment",
    "apply_op",
    "op_value",
    "mix_batch",
    "one_hot",
    "random_erasing",
    "augment_batch",
]

CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR10_STD = (0.2470, 0.2435, 0.2616)
CIFAR100_MEAN = (0.5071, 0.4865, 0.4409)
CIFAR100_STD = (0.2673, 0.2564, 0.2762)

#: Grey value given to pixels that a RandAugment geometric op pulls in from
#: outside the image.
FILL = 128

MAX_MAGNITUDE = 30.0  # RandAugment magnitude scale (torchvision: 31 bins, 0..30)


@dataclass
class AugmentConfig:
    """What :func:`augment_batch` does to a training batch (see the module docstring)."""

    crop_padding: int = 4  # random crop with zero padding (0 = off)
    flip: bool = True  # random horizontal flip
    randaugment_n: int = 0  # RandAugment: number of ops per image (0 = off)
    randaugment_m: float = 9.0  # magnitude on the 0..30 scale (torchvision's)
    mixup_alpha: float = 0.0  # 0 = off
    cutmix_alpha: float = 0.0  # 0 = off; when both > 0, one of them per batch, prob 0.5
    mix_prob: float = 1.0  # probability that a batch is mixed at all
    erasing_prob: float = 0.0  # random erasing probability per image
    mean: tuple = CIFAR10_MEAN  # per channel, in [0, 1] units
    std: tuple = CIFAR10_STD

    def __post_init__(self):
        if int(self.crop_padding) != self.crop_padding or self.crop_padding < 0:
            raise ValueError(f"crop_padding must be an integer >= 0, got {self.crop_padding!r}")
        if int(self.randaugment_n) != self.randaugment_n or self.randaugment_n < 0:
            raise ValueError(f"randaugment_n must be an integer >= 0, got {self.randaugment_n!r}")
        _check_magnitude(self.randaugment_m)
        for name in ("mixup_alpha", "cutmix_alpha"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)!r}")
        _check_prob(self.mix_prob, "mix_prob")
        _check_prob(self.erasing_prob, "erasing_prob")
        if len(self.mean) != len(self.std):
            raise ValueError(f"mean and std differ in length: {len(self.mean)} vs {len(self.std)}")
        if any(not s > 0 for s in self.std):
            raise ValueError(f"std must be positive, got {self.std!r}")

    @property
    def mixing(self) -> bool:
        """True when mixup or CutMix can happen (then targets are always soft)."""
        return (self.mixup_alpha > 0 or self.cutmix_alpha > 0) and self.mix_prob > 0


# ---------------------------------------------------------------------------
# validation helpers


def _check_batch(x, name="x", uint8=False, floating=False):
    if getattr(x, "ndim", None) != 4:
        raise ValueError(
            f"{name} must be a batch of images of rank 4 (B, H, W, C), "
            f"got shape {getattr(x, 'shape', None)}"
        )
    if uint8 and x.dtype != np.uint8:
        raise TypeError(f"{name} must have dtype uint8, got {x.dtype}")
    if floating and x.dtype.kind != "f":
        raise TypeError(f"{name} must have a floating dtype, got {x.dtype}")


def _check_prob(p, name):
    if not (isinstance(p, (int, float, np.floating, np.integer)) and 0.0 <= p <= 1.0):
        raise ValueError(f"{name} must be a probability in [0, 1], got {p!r}")


def _check_magnitude(m):
    if not (isinstance(m, (int, float, np.floating, np.integer)) and 0 <= m <= MAX_MAGNITUDE):
        raise ValueError(f"RandAugment magnitude must be in [0, {MAX_MAGNITUDE:g}], got {m!r}")


def _check_labels(y, batch, name="y"):
    if getattr(y, "ndim", None) != 1 or y.shape[0] != batch:
        raise ValueError(f"{name} must have shape ({batch},), got {getattr(y, 'shape', None)}")
    if y.dtype.kind not in "iu":
        raise TypeError(f"{name} must hold integer class labels, got dtype {y.dtype}")


# ---------------------------------------------------------------------------
# normalization


def normalize(x_uint8, mean, std, dtype="float32"):
    """``(x / 255 - mean) / std`` per channel: uint8 (B, H, W, C) -> float (B, H, W, C)."""
    _check_batch(x_uint8, "x_uint8", uint8=True)
    dtype = np.dtype(dtype)
    if dtype.kind != "f":
        raise TypeError(f"normalize: dtype must be floating, got {dtype}")
    c = x_uint8.shape[-1]
    mean = np.asarray(mean, dtype=np.float64).reshape(-1)
    std = np.asarray(std, dtype=np.float64).reshape(-1)
    if mean.shape != (c,) or std.shape != (c,):
        raise ValueError(
            f"mean and std must have one value per channel ({c}), got {mean.shape} and {std.shape}"
        )
    if np.any(std <= 0):
        raise ValueError(f"std must be positive, got {std}")
    xp = get_array_module(x_uint8)
    b, h, w, _ = x_uint8.shape
    # x * scale + shift, with scale and shift computed once on the host and tiled
    # along W so the broadcast runs over rows of W*C values (much faster on NumPy
    # than broadcasting a length-3 last axis).
    scale = xp.asarray(np.tile(1.0 / (255.0 * std), w).astype(dtype))
    shift = xp.asarray(np.tile(-mean / std, w).astype(dtype))
    out = x_uint8.reshape(b * h, w * c).astype(dtype)
    out *= scale
    out += shift
    return out.reshape(b, h, w, c)


# ---------------------------------------------------------------------------
# random crop and flip (one gather)


def _draw_crop(rng, batch, padding):
    """(2, B) crop offsets in [0, 2*padding] (row, column) — drawn on the host."""
    return rng.integers(0, 2 * padding + 1, size=(2, batch))


def _draw_flip(rng, batch):
    return rng.random(batch) < 0.5


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


def random_flip(x, rng):
    """Mirror each image left-right with probability 0.5. ``x`` (B, H, W, C), any dtype."""
    _check_batch(x)
    xp = get_array_module(x)
    flips = _draw_flip(rng, x.shape[0])
    return xp.where(xp.asarray(flips)[:, None, None, None], x[:, :, ::-1], x)


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

#: op -> (value at m = 0, value at m = 30, signed). Translations are fractions of
#: the image width/height (converted to pixels by :func:`op_value`).
OP_RANGES = {
    "identity": (0.0, 0.0, False),
    "autocontrast": (0.0, 0.0, False),
    "equalize": (0.0, 0.0, False),
    "rotate": (0.0, 30.0, True),  # degrees
    "solarize": (256.0, 0.0, False),  # threshold
    "color": (1.0, 0.9, True),  # factor 1 +- 0.9
    "posterize": (8.0, 4.0, False),  # bits kept (rounded)
    "contrast": (1.0, 0.9, True),
    "brightness": (1.0, 0.9, True),
    "sharpness": (1.0, 0.9, True),
    "shear_x": (0.0, 0.3, True),  # shear factor
    "shear_y": (0.0, 0.3, True),
    "translate_x": (0.0, 150.0 / 331.0, True),  # fraction of the width
    "translate_y": (0.0, 150.0 / 331.0, True),  # fraction of the height
}


def op_value(name, m, signs=None, size=(32, 32)):
    """Per-image value of op ``name`` at magnitude ``m`` (0..30), in the op's units.

    ``signs`` (host array of +-1) flips signed ops; ``size`` = (H, W) turns
    translations into pixels. Returns a float32 host array (or a 0-d one).
    """
    if name not in OP_RANGES:
        raise ValueError(f"unknown RandAugment op {name!r}; known: {sorted(OP_RANGES)}")
    _check_magnitude(m)
    lo, hi, signed = OP_RANGES[name]
    frac = float(m) / MAX_MAGNITUDE
    s = np.ones(()) if signs is None else np.asarray(signs, dtype=np.float64)
    if name in ("color", "contrast", "brightness", "sharpness"):
        v = 1.0 + s * hi * frac  # factor 1 +- 0.9 m/30
    elif name == "posterize":
        v = np.rint(lo + (hi - lo) * frac) * np.ones_like(s)
    elif signed:
        v = s * (lo + (hi - lo) * frac)
        if name == "translate_x":
            v = v * size[1]
        elif name == "translate_y":
            v = v * size[0]
    else:
        v = (lo + (hi - lo) * frac) * np.ones_like(s)
    return np.asarray(v, dtype=np.float32)


def apply_op(x_uint8, name, value):
    """Apply RandAugment op ``name`` to EVERY image of ``x_uint8`` with ``value``
    (a scalar or one per image) in the op's own units: degrees (rotate), shear
    factor, pixels (translate), enhancement factor (color, contrast, brightness,
    sharpness: 1 = unchanged), bits kept (posterize), threshold (solarize).
    Ignored by identity, autocontrast and equalize. uint8 in, uint8 out."""
    _check_batch(x_uint8, "x_uint8", uint8=True)
    b, h, w, _ = x_uint8.shape
    v = np.broadcast_to(np.asarray(value, dtype=np.float32), (b,))
    if name in _AFFINE_OPS:
        return _affine_gather(x_uint8, _AFFINE_OPS[name](v, h, w))
    if name in _COLOR_OPS:
        return _COLOR_OPS[name](x_uint8, v)
    raise ValueError(f"unknown RandAugment op {name!r}; known: {sorted(OP_RANGES)}")


def rand_augment(x_uint8, n, m, rng, ops: Sequence[str] | None = None):
    """RandAugment (Cubuk et al. 2020), vectorized over the batch.

    Each image independently applies ``n`` ops drawn uniformly (with
    replacement) from ``ops`` (default :data:`RANDAUGMENT_OPS`), at magnitude
    ``m`` on the 0..30 scale, with a random sign per image for signed ops.
    Per round, the images that picked a geometric op are warped by one affine
    gather, and each colour op runs once on the subset that picked it.
    uint8 (B, H, W, C) in, uint8 out; the input is not modified.

    Draws from ``rng``: ``n * B`` op choices, then ``n * B`` signs.
    """
    _check_batch(x_uint8, "x_uint8", uint8=True)
    if int(n) != n or n < 0:
        raise ValueError(f"rand_augment: n must be an integer >= 0, got {n!r}")
    _check_magnitude(m)
    ops = tuple(RANDAUGMENT_OPS if ops is None else ops)
    if not ops:
        raise ValueError("rand_augment: ops must not be empty")
    for name in ops:
        if name not in OP_RANGES:
            raise ValueError(f"unknown RandAugment op {name!r}; known: {sorted(OP_RANGES)}")
    n = int(n)
    if n == 0:
        return x_uint8
    xp = get_array_module(x_uint8)
    b, h, w, _ = x_uint8.shape
    choices = rng.integers(0, len(ops), size=(n, b))
    signs = np.where(rng.random((n, b)) < 0.5, -1.0, 1.0)
    # value of every op for every round and image, on the host: {op: (n, B)}
    values = {name: op_value(name, m, signs, size=(h, w)) for name in set(ops)}
    affine_ids = [k for k, name in enumerate(ops) if name in _AFFINE_OPS]

    x = x_uint8.copy()
    for r in range(n):
        ch = choices[r]
        # geometric ops of this round: one affine gather
        geo = np.flatnonzero(np.isin(ch, affine_ids)) if affine_ids else np.empty(0, np.int64)
        if geo.size:
            mats = np.empty((geo.size, 2, 3), dtype=np.float64)
            for k in affine_ids:
                sel = ch[geo] == k
                if sel.any():
                    mats[sel] = _AFFINE_OPS[ops[k]](values[ops[k]][r, geo[sel]], h, w)
            gi = xp.asarray(geo)
            x[gi] = _affine_gather(x[gi], mats)
        # colour ops: each on the subset that chose it
        for k, name in enumerate(ops):
            if name == "identity" or name in _AFFINE_OPS:
                continue
            idx = np.flatnonzero(ch == k)
            if idx.size:
                gi = xp.asarray(idx)
                x[gi] = _COLOR_OPS[name](x[gi], values[name][r, idx])
    return x


# ---------------------------------------------------------------------------
# random erasing


def random_erasing(x_float, prob, rng, scale=(0.02, 0.33), ratio=(0.3, 3.3), value=0.0, attempts=10):
    """Random erasing (Zhong et al. 2017) on a normalized float batch.

    Each image, with probability ``prob``, gets one rectangle of area fraction
    uniform in ``scale`` and aspect ratio (h/w) log-uniform in ``ratio`` set to
    ``value`` (default 0, i.e. the dataset mean colour after normalization).
    Up to ``attempts`` candidate boxes are drawn per image (all at once on the
    host); the first that fits is used, none -> the image is left alone.
    ``prob = 0`` returns ``x_float`` itself and draws nothing.

    Draws: B uniforms (erase?), B*attempts areas, B*attempts ratios, 2*B positions.
    """
    _check_batch(x_float, "x_float", floating=True)
    _check_prob(prob, "prob")
    if not (0 < scale[0] <= scale[1] <= 1):
        raise ValueError(f"random_erasing: scale must satisfy 0 < lo <= hi <= 1, got {scale}")
    if not (0 < ratio[0] <= ratio[1]):
        raise ValueError(f"random_erasing: ratio must satisfy 0 < lo <= hi, got {ratio}")
    if prob == 0:
        return x_float
    xp = get_array_module(x_float)
    b, h, w, _ = x_float.shape
    erase = rng.random(b) < prob
    area = rng.uniform(scale[0], scale[1], size=(b, attempts)) * (h * w)
    logr = rng.uniform(math.log(ratio[0]), math.log(ratio[1]), size=(b, attempts))
    pos = rng.random((2, b))
    r = np.exp(logr)
    eh = np.rint(np.sqrt(area * r)).astype(np.int64)
    ew = np.rint(np.sqrt(area / r)).astype(np.int64)
    fits = (eh < h) & (ew < w) & (eh > 0) & (ew > 0)
    first = np.argmax(fits, axis=1)
    ok = erase & fits.any(axis=1)
    rows = np.arange(b)
    eh = np.where(ok, eh[rows, first], 0)
    ew = np.where(ok, ew[rows, first], 0)
    top = np.floor(pos[0] * (h - eh + 1)).astype(np.int64)
    left = np.floor(pos[1] * (w - ew + 1)).astype(np.int64)
    top, eh, left, ew = (xp.asarray(a)[:, None] for a in (top, eh, left, ew))
    ar_h, ar_w = xp.arange(h)[None, :], xp.arange(w)[None, :]
    rmask = (ar_h >= top) & (ar_h < top + eh)  # (B, H)
    cmask = (ar_w >= left) & (ar_w < left + ew)  # (B, W)
    box = rmask[:, :, None, None] & cmask[:, None, :, None]  # (B, H, W, 1)
    return xp.where(box, xp.asarray(value, dtype=x_float.dtype), x_float)


# ---------------------------------------------------------------------------
# mixup / CutMix


def one_hot(y, num_classes, dtype="float32"):
    """int labels (B,) -> (B, K) one-hot on the same device."""
    xp = get_array_module(y)
    out = xp.zeros((y.shape[0], int(num_classes)), dtype=dtype)
    out[xp.arange(y.shape[0]), y] = 1
    return out


def mix_batch(x_float, y, num_classes, rng, mixup_alpha=0.0, cutmix_alpha=0.0, mix_prob=1.0):
    """Mixup (Zhang et al. 2018) or CutMix (Yun et al. 2019), one choice per batch.

    With probability ``mix_prob`` the batch is mixed with a random permutation
    of itself: mixup blends whole images with lambda ~ Beta(a, a); CutMix
    pastes a box of area ~ (1 - lambda) (clipped at the border; lambda is then
    recomputed as the exact kept-area fraction). When both alphas are > 0,
    CutMix is chosen with probability 0.5. Returns ``(x, y_soft)`` with
    ``y_soft = lam * one_hot(y) + (1 - lam) * one_hot(y[perm])``, float32
    (B, K) (plain one-hot when the batch is not mixed); rows sum to 1.
    """
    _check_batch(x_float, "x_float", floating=True)
    xp = get_array_module(x_float)
    b, h, w, _ = x_float.shape
    y = xp.asarray(y)
    _check_labels(y, b)
    if int(num_classes) != num_classes or num_classes < 1:
        raise ValueError(f"num_classes must be a positive integer, got {num_classes!r}")
    for name, a in (("mixup_alpha", mixup_alpha), ("cutmix_alpha", cutmix_alpha)):
        if not a >= 0:
            raise ValueError(f"{name} must be >= 0, got {a!r}")
    _check_prob(mix_prob, "mix_prob")
    y_soft = xp.zeros((b, int(num_classes)), dtype=np.float32)
    rows = xp.arange(b)
    if (mixup_alpha <= 0 and cutmix_alpha <= 0) or not rng.random() < mix_prob:
        y_soft[rows, y] = 1.0
        return x_float, y_soft
    if mixup_alpha > 0 and cutmix_alpha > 0:
        use_cutmix = bool(rng.random() < 0.5)
    else:
        use_cutmix = cutmix_alpha > 0
    alpha = cutmix_alpha if use_cutmix else mixup_alpha
    lam = float(rng.beta(alpha, alpha))
    perm = xp.asarray(rng.permutation(b))
    if use_cutmix:
        cut = math.sqrt(1.0 - lam)
        ch, cw = int(h * cut), int(w * cut)
        cy, cx = int(rng.integers(0, h)), int(rng.integers(0, w))
        y0, y1 = max(cy - ch // 2, 0), min(cy + ch // 2, h)
        x0, x1 = max(cx - cw // 2, 0), min(cx + cw // 2, w)
        lam = 1.0 - (y1 - y0) * (x1 - x0) / float(h * w)
        out = x_float.copy()
        out[:, y0:y1, x0:x1] = x_float[perm, y0:y1, x0:x1]
    else:
        out = x_float * np.float32(lam)
        out += x_float[perm] * np.float32(1.0 - lam)
    y_soft[rows, y] = np.float32(lam)
    y_soft[rows, y[perm]] += np.float32(1.0 - lam)
    return out, y_soft


# ---------------------------------------------------------------------------
# the whole pipeline


def augment_batch(x_uint8, y, rng, cfg: AugmentConfig, num_classes: int, train: bool = True):
    """Augment and normalize one batch on its device.

    ``x_uint8`` (B, H, W, C) uint8, ``y`` (B,) integer labels, ``rng`` a host
    ``numpy.random.Generator``. Training: crop + flip (one gather) ->
    RandAugment -> normalize -> random erasing -> mixup/CutMix. ``train=False``
    only normalizes. Returns ``(x, targets)``: x float32 (B, H, W, C);
    targets float32 (B, K) soft labels whenever ``cfg.mixing`` (even for a
    batch the ``mix_prob`` draw left unmixed), else int64 (B,).
    The random draws equal those of calling :func:`random_crop`,
    :func:`random_flip`, :func:`rand_augment`, :func:`random_erasing` and
    :func:`mix_batch` one after the other with the same ``rng``.
    """
    _check_batch(x_uint8, "x_uint8", uint8=True)
    xp = get_array_module(x_uint8)
    y = xp.asarray(y)
    _check_labels(y, x_uint8.shape[0])
    y = y.astype(np.int64, copy=False)
    if not train:
        return normalize(x_uint8, cfg.mean, cfg.std), y
    b = x_uint8.shape[0]
    x = x_uint8
    offsets = _draw_crop(rng, b, cfg.crop_padding) if cfg.crop_padding > 0 else None
    flips = _draw_flip(rng, b) if cfg.flip else None
    if offsets is not None or flips is not None:
        x = _crop_flip(x, int(cfg.crop_padding), offsets=offsets, flips=flips)
    if cfg.randaugment_n > 0:
        x = rand_augment(x, cfg.randaugment_n, cfg.randaugment_m, rng)
    x = normalize(x, cfg.mean, cfg.std)
    if cfg.erasing_prob > 0:
        x = random_erasing(x, cfg.erasing_prob, rng)
    if cfg.mixing:
        x, y = mix_batch(x, y, num_classes, rng, cfg.mixup_alpha, cfg.cutmix_alpha, cfg.mix_prob)
    return x, y
