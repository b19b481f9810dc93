"""Random horizontal flip: mirror each image left-right with probability 0.5 (the classic
augmentation of Krizhevsky et al. 2012, "ImageNet Classification with Deep Convolutional Neural
Networks"). The pipeline fuses it with the random crop into one gather (``crop.py``).
"""
from __future__ import annotations

from minivit.backend import get_array_module
from minivit.data.augment.checks import _check_batch


def _draw_flip(rng, batch):
    """(B,) booleans, True = mirror this image -- drawn on the host."""
    return rng.random(batch) < 0.5


def random_flip(x, rng):
    """Mirror each image left-right with probability 0.5. ``x`` (B, H, W, C), any dtype."""
    _check_batch(x)
    xp = get_array_module(x)
    flips = _draw_flip(rng, x.shape[0])
    return xp.where(xp.asarray(flips)[:, None, None, None], x[:, :, ::-1], x)
