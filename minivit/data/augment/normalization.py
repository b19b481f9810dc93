"""Normalization: uint8 pixels -> float32 ``(x / 255 - mean) / std`` per channel, on the device.

The means and standard deviations are the per-channel statistics of the CIFAR-10 / CIFAR-100
training sets in [0, 1] units (the values commonly used with torchvision).
"""
from __future__ import annotations

import numpy as np

from minivit.backend import get_array_module
from minivit.data.augment.checks import _check_batch

CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR10_STD = (0.2470, 0.2435, 0.2616)
CIFAR100_MEAN = (0.5071, 0.4865, 0.4409)
CIFAR100_STD = (0.2673, 0.2564, 0.2762)


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
