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

One technique per file
----------------------
==========================  ==============================================================
``crop.py``                 random crop with zero padding (+ the crop/flip gather)
``flip.py``                 random horizontal flip
``randaugment.py``          RandAugment: op choice, magnitudes (``randaugment_ops.py``: the ops)
``erasing.py``              random erasing
``mix.py``                  mixup and CutMix (soft targets)
``normalization.py``        ``(x / 255 - mean) / std`` and the CIFAR statistics
``pipeline.py``             :class:`AugmentConfig` and :func:`augment_batch`
``checks.py``               the argument checks they share
==========================  ==============================================================

Every name is importable from here (``from minivit.data.augment import augment_batch``; the old
``minivit.augment`` is this package).
"""
from minivit.data.augment.checks import (  # noqa: F401
    MAX_MAGNITUDE,
    _check_batch,
    _check_labels,
    _check_magnitude,
    _check_prob,
)
from minivit.data.augment.crop import _crop_flip, _draw_crop, random_crop  # noqa: F401
from minivit.data.augment.erasing import random_erasing  # noqa: F401
from minivit.data.augment.flip import _draw_flip, random_flip  # noqa: F401
from minivit.data.augment.mix import mix_batch, one_hot  # noqa: F401
from minivit.data.augment.normalization import (  # noqa: F401
    CIFAR10_MEAN,
    CIFAR10_STD,
    CIFAR100_MEAN,
    CIFAR100_STD,
    normalize,
)
from minivit.data.augment.pipeline import AugmentConfig, augment_batch  # noqa: F401
from minivit.data.augment.randaugment import OP_RANGES, apply_op, op_value, rand_augment  # noqa: F401
from minivit.data.augment.randaugment_ops import FILL, RANDAUGMENT_OPS  # noqa: F401

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
