"""The whole augmentation pipeline: what :class:`AugmentConfig` asks for, applied by
:func:`augment_batch` to one batch on its device (the order and the targets: see ``__init__.py``)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from minivit.backend import get_array_module
from minivit.data.augment.checks import _check_batch, _check_labels, _check_magnitude, _check_prob
from minivit.data.augment.crop import _crop_flip, _draw_crop
from minivit.data.augment.erasing import random_erasing
from minivit.data.augment.flip import _draw_flip
from minivit.data.augment.mix import mix_batch
from minivit.data.augment.normalization import CIFAR10_MEAN, CIFAR10_STD, normalize
from minivit.data.augment.randaugment import rand_augment


@dataclass
class AugmentConfig:
    """What :func:`augment_batch` does to a training batch (see ``minivit/data/augment/__init__.py``)."""

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
