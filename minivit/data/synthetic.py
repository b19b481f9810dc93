"""A CIFAR-shaped synthetic stand-in, for quick runs (and the notebooks' fast setting) without CIFAR-10."""
from __future__ import annotations

import numpy as np

from minivit.data.formats import CIFAR


def synthetic_cifar(n_train: int = 4096, n_test: int = 1000, seed: int = 0) -> CIFAR:
    """A CIFAR-shaped synthetic dataset: ten classes of noisy coloured stripes, class k at an
    angle of 18k degrees. The notebooks' fast setting (``MINIVIT_FAST=1``, as in CI) falls back
    to it when CIFAR-10 is missing; a small ViT learns it in seconds.

    returns: CIFAR named "synthetic" with x_train uint8 (n_train, 32, 32, 3), y_train int64
    (n_train,), x_test uint8 (n_test, 32, 32, 3), y_test int64 (n_test,); the same seed gives
    the same images.
    """
    if n_train < 1 or n_test < 1:
        raise ValueError(f"n_train and n_test must be >= 1, got {n_train} and {n_test}")
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:32, 0:32] / 32.0

    def make(n):
        y = rng.integers(0, 10, n)
        theta, phase = np.pi * y / 10, rng.uniform(0, 2 * np.pi, n)
        wave = np.sin(6 * np.pi * (np.cos(theta)[:, None, None] * xx + np.sin(theta)[:, None, None] * yy)
                      + phase[:, None, None])
        img = 128 + 90 * wave[..., None] * rng.uniform(0.3, 1.0, (n, 1, 1, 3)) + rng.normal(0, 25, (n, 32, 32, 3))
        return np.clip(img, 0, 255).astype(np.uint8), y.astype(np.int64)

    (x_train, y_train), (x_test, y_test) = make(n_train), make(n_test)
    return CIFAR("synthetic", x_train, y_train, x_test, y_test, [f"stripes {18 * k} deg" for k in range(10)])
