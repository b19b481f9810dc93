"""Mixup (Zhang et al. 2018, "mixup: Beyond Empirical Risk Minimization") and CutMix (Yun et al.
2019, "CutMix: Regularization Strategy to Train Strong Classifiers with Localizable Features"):
mix each image with another of the batch, and the labels in the same proportion (soft targets)."""
from __future__ import annotations

import math

import numpy as np

from minivit.backend import get_array_module
from minivit.data.augment.checks import _check_batch, _check_labels, _check_prob


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
