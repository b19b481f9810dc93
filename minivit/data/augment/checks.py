"""Argument checks shared by the augmentations: each error names the value and what was expected."""
from __future__ import annotations

import numpy as np

MAX_MAGNITUDE = 30.0  # RandAugment magnitude scale (torchvision: 31 bins, 0..30)


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
