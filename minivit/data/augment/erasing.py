"""Random erasing (Zhong et al. 2017, "Random Erasing Data Augmentation"): blank out one random
rectangle per image, on the normalized float batch."""
from __future__ import annotations

import math

import numpy as np

from minivit.backend import get_array_module
from minivit.data.augment.checks import _check_batch, _check_prob


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
