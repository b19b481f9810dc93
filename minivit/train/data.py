"""The Trainer's data: a dataset on the device as uint8, and the normalization for its dataset.

``prepare_data`` loads CIFAR-10/100 (or takes a dataset object), holds out a ``--val-split`` of the
training images as the evaluation set (then the test set is never touched: ``test_subset`` and
``final_test`` do not apply), keeps a seeded
``--subset`` of the remaining training images and the first ``--test-subset`` test images, checks
the labels once, and puts the arrays on the device; ``augment_config`` is a TrainConfig's augmentation with its dataset's mean
and std; ``eval_batches`` the test images in batches as the model sees them. Used by
:class:`minivit.train.trainer.Trainer`, minivit/train/evaluation.py and minivit/train/tta.py.
"""
from __future__ import annotations

import numpy as np

from minivit.data.augment import CIFAR10_MEAN, CIFAR10_STD, CIFAR100_MEAN, CIFAR100_STD, AugmentConfig, augment_batch
from minivit.train.recipes import TrainConfig

VAL_SEED = 20210503     # the validation split is the same images for every run and every seed


def validation_split(n_train: int, n_val: int):
    """(train indices, validation indices) of a training set of ``n_train`` images: ``n_val`` images
    held out, a fixed seeded choice (independent of the run's seed, so that every run of a
    comparison is validated on the same images), both sorted."""
    if not 0 < n_val < n_train:
        raise ValueError(f"--val-split must be between 1 and {n_train - 1} (the training set has {n_train} "
                         f"images), got {n_val}")
    perm = np.random.default_rng(VAL_SEED).permutation(n_train)
    return np.sort(perm[n_val:]), np.sort(perm[:n_val])


def prepare_data(cfg: TrainConfig, xp, data_dir=None, dataset_obj=None):
    """Load the dataset and put it on the device as uint8. Returns a dict of arrays and names:
    x_train (N, H, W, C) uint8, y_train (N,) int64, x_test / y_test the *evaluation* set (the
    held-out validation images with ``cfg.val_split``, else the test images), eval_set ('val' or
    'test'), test_total (the size of the set the evaluation images are taken from), classes,
    num_classes; with ``cfg.final_test`` also x_test_full / y_test_full, the whole test set (the
    last evaluation's)."""
    if dataset_obj is None:
        from minivit.data.cifar import load_cifar

        dataset_obj = load_cifar(cfg.dataset, data_dir)
    ds = dataset_obj
    x_train, y_train = ds.x_train, ds.y_train
    if cfg.val_split:                   # the evaluation set: held-out training images; the test set unread
        keep, val = validation_split(len(x_train), cfg.val_split)
        x_test, y_test, eval_set = x_train[val], y_train[val], "val"
        x_train, y_train = x_train[keep], y_train[keep]
    else:
        x_test, y_test, eval_set = ds.x_test, ds.y_test, "test"
    if cfg.subset:
        if not 0 < cfg.subset <= len(x_train):
            if cfg.val_split:               # the subset may be the recipe's: name the split that shrank the set
                raise ValueError(
                    f"--val-split {cfg.val_split} leaves {len(x_train)} of the {len(ds.x_train)} training images, "
                    f"fewer than the training subset of {cfg.subset} images (the recipe's, or --subset): "
                    f"hold out fewer images, or give --subset N with N at most {len(x_train)}")
            raise ValueError(f"--subset must be between 1 and {len(x_train)}, got {cfg.subset}")
        keep = np.sort(np.random.default_rng([cfg.seed, 12345]).permutation(len(x_train))[:cfg.subset])
        x_train, y_train = x_train[keep], y_train[keep]
    test_total = len(x_test)
    K = len(ds.classes)
    for name, y in (("training", y_train), (eval_set, y_test)):     # once, here: the steps never check
        if len(y) and (int(y.min()) < 0 or int(y.max()) >= K):
            raise ValueError(f"the {name} labels must be in [0, {K - 1}] for {K} classes, "
                             f"got values from {int(y.min())} to {int(y.max())}")
    full = {}
    if cfg.final_test and eval_set == "test":   # the run's last evaluation: the whole test set (never with a val split)
        full = dict(x_test_full=xp.asarray(x_test), y_test_full=xp.asarray(y_test.astype(np.int64)))
    if cfg.test_subset and eval_set == "test":  # the validation images are always used whole
        x_test, y_test = x_test[:cfg.test_subset], y_test[:cfg.test_subset]
    return dict(**full,
        x_train=xp.asarray(x_train), y_train=xp.asarray(y_train.astype(np.int64)),
        x_test=xp.asarray(x_test), y_test=xp.asarray(y_test.astype(np.int64)),
        classes=list(ds.classes), num_classes=len(ds.classes), test_total=test_total, eval_set=eval_set,
    )


def augment_config(cfg: TrainConfig) -> AugmentConfig:
    mean, std = (CIFAR100_MEAN, CIFAR100_STD) if cfg.dataset == "cifar100" else (CIFAR10_MEAN, CIFAR10_STD)
    return AugmentConfig(**{"mean": mean, "std": std, **cfg.augment})


def eval_batches(x_uint8, y, aug: AugmentConfig, num_classes, batch_size=500, batch_transform=None):
    """The test images in batches of ``batch_size``, as the model sees them: (x (B, H, W, C) normalized
    floats, y (B,) labels), without augmentation; ``batch_transform`` applied to every x."""
    for i in range(0, len(x_uint8), batch_size):
        xb, yb = augment_batch(x_uint8[i:i + batch_size], y[i:i + batch_size], None, aug, num_classes, train=False)
        yield (xb if batch_transform is None else batch_transform(xb)), yb
