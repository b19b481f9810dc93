"""A compact subset of CIFAR in one ``.npz`` file, for machines that get a copy of the tree and no network.

    python -m minivit pack --out cifar10-12k.npz --train 10000 --test 2000   # from the usual CIFAR search
    python -m minivit.data pack --out ...                                     # the same command
    python -m minivit train --data-dir cifar10-12k.npz ...                    # train on it (or MINIVIT_DATA=FILE)

10,000 training and 2,000 test images take 36.9 MB as uint8 (32 x 32 x 3 bytes each), less
once compressed: small enough to travel with the source tree to a GPU machine.

What the file holds (``np.load(..., allow_pickle=False)`` reads it; no pickles):

    x_train  uint8 (N, 32, 32, 3)   y_train  uint8 (N,)      train_index  int64 (N,)
    x_test   uint8 (M, 32, 32, 3)   y_test   uint8 (M,)      test_index   int64 (M,)
    classes  str (K,)   dataset  str: what it stands in for ("cifar10" / "cifar100")
    name     str: where the images came from ("cifar10", or "synthetic" for synthetic_cifar)
    format   int: PACK_FORMAT

The images are a seeded random choice from each split (``*_index``: their positions there, in
increasing order, so the original order is kept).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from minivit.storage.tempfiles import atomic_file

PACK_FORMAT = 1
KEYS = ("x_train", "y_train", "train_index", "x_test", "y_test", "test_index", "classes", "dataset", "name", "format")


class PackError(ValueError):
    """A file that is not a valid minivit data pack (wrong keys, shapes, types or labels)."""


def _choose(n_total: int, n: int, rng) -> np.ndarray:
    if not 1 <= n <= n_total:
        raise ValueError(f"cannot take {n} images from a split of {n_total}: choose 1 to {n_total}")
    return np.sort(rng.permutation(n_total)[:n])


def pack(ds, out, n_train: int = 10000, n_test: int = 2000, seed: int = 0, dataset: str | None = None) -> dict:
    """Write ``n_train`` training and ``n_test`` test images of ``ds`` into the .npz file ``out``.

    ds: a ``minivit.data.cifar.CIFAR`` (x_train uint8 (N, 32, 32, 3), y_train (N,), x_test, y_test,
    classes, name). dataset: what the file stands in for (default: ds.name). The file is written
    to a temporary name and renamed. returns: {path, bytes, n_train, n_test, dataset, name}.
    """
    out = Path(out)
    if out.suffix != ".npz":
        raise ValueError(f"the pack file must end in .npz, got {out}")
    if len(ds.classes) > 256:
        raise ValueError(f"{len(ds.classes)} classes do not fit uint8 labels")
    rng = np.random.default_rng([seed, 2024])
    tr, te = _choose(len(ds.x_train), n_train, rng), _choose(len(ds.x_test), n_test, rng)
    arrays = dict(x_train=np.ascontiguousarray(ds.x_train[tr], dtype=np.uint8), y_train=ds.y_train[tr].astype(np.uint8),
                  train_index=tr.astype(np.int64),
                  x_test=np.ascontiguousarray(ds.x_test[te], dtype=np.uint8), y_test=ds.y_test[te].astype(np.uint8),
                  test_index=te.astype(np.int64), classes=np.array(list(ds.classes), dtype=str),
                  dataset=np.array(dataset or ds.name), name=np.array(ds.name), format=np.array(PACK_FORMAT))
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_file(out, "wb") as f:
        np.savez_compressed(f, **arrays)
    return dict(path=str(out), bytes=out.stat().st_size, n_train=n_train, n_test=n_test,
                dataset=str(arrays["dataset"]), name=ds.name)


def read_pack(path, dataset: str | None = None) -> dict:
    """The arrays of a pack file as keyword arguments for ``minivit.data.cifar.CIFAR``
    (name, x_train, y_train int64, x_test, y_test int64, classes). dataset: when given, the pack
    must stand in for it. Raises PackError for anything that is not a valid pack."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as f:
            d = {k: f[k] for k in KEYS if k in f.files}
    except (OSError, EOFError, ValueError) as e:   # not a zip (then NumPy suspects a pickle), truncated
        raise PackError(f"{path} is not a readable .npz file: {e}") from None
    missing = [k for k in KEYS if k not in d]
    if missing:
        raise PackError(f"{path} is not a minivit data pack: no {', '.join(missing)} "
                        "(write one with python -m minivit pack)")
    if int(d["format"]) != PACK_FORMAT:
        raise PackError(f"{path}: pack format {int(d['format'])}, this minivit reads format {PACK_FORMAT}")
    stands_for, classes = str(d["dataset"]), [str(c) for c in d["classes"]]
    if dataset is not None and stands_for != dataset:
        raise PackError(f"{path} holds {stands_for} images, not {dataset} (choose --dataset {stands_for})")
    for split in ("train", "test"):
        x, y = d[f"x_{split}"], d[f"y_{split}"]
        if x.dtype != np.uint8 or x.ndim != 4 or x.shape[1:] != (32, 32, 3) or y.shape != (len(x),):
            raise PackError(f"{path}: x_{split} must be uint8 (N, 32, 32, 3) with N labels, "
                            f"got {x.dtype} {x.shape} and labels {y.shape}")
        if len(y) and int(y.max()) >= len(classes):
            raise PackError(f"{path}: y_{split} has label {int(y.max())}, but there are {len(classes)} classes")
    return dict(name=str(d["name"]), x_train=d["x_train"], y_train=d["y_train"].astype(np.int64),
                x_test=d["x_test"], y_test=d["y_test"].astype(np.int64), classes=classes)
