"""RandAugment (Cubuk et al. 2020, "RandAugment: Practical automated data augmentation with a
reduced search space"), vectorized over the batch: each image applies ``n`` ops drawn uniformly
from :data:`RANDAUGMENT_OPS` at one magnitude ``m``. The ops themselves are in ``randaugment_ops.py``.

Magnitudes
----------
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

from typing import Sequence

import numpy as np

from minivit.backend import get_array_module
from minivit.data.augment.checks import MAX_MAGNITUDE, _check_batch, _check_magnitude
from minivit.data.augment.randaugment_ops import _AFFINE_OPS, _COLOR_OPS, RANDAUGMENT_OPS, _affine_gather

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
