"""Evaluation: a model's test loss, accuracy and predictions, and ``python -m minivit eval``.

``evaluate`` runs the model in eval mode (no dropout, no augmentation) over the test images in
batches; the Trainer calls it after every epoch (through ``minivit.train.trainer.evaluate``, which the
tests replace). ``evaluate_checkpoint`` loads a checkpoint and reports its test accuracy, per-class
accuracy and confusion matrix (optionally confusion.png and the flip-TTA numbers).
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from minivit.data.augment import AugmentConfig
from minivit.backend import get_array_module, get_xp, to_numpy
from minivit.ops import F
from minivit.train.recipes import TrainConfig
from minivit.train.data import augment_config, eval_batches


def evaluate(model, x_uint8, y, aug: AugmentConfig, num_classes, batch_size=500, batch_transform=None, forward=None,
             progress=False):
    """Test loss, accuracy and predictions (eval mode, no augmentation). Returns (loss, acc, preds).

    forward: optional replacement for ``model.forward`` (e.g. ``DataParallel.forward``).
    progress: show a progress bar (tqdm, on stderr) over the images."""
    forward = forward or model.forward
    bar = _eval_bar(len(x_uint8)) if progress else None
    xp = get_array_module(x_uint8)
    was_training = model.training
    model.eval()
    total_loss, preds = 0.0, []
    try:
        for xb, yb in eval_batches(x_uint8, y, aug, num_classes, batch_size, batch_transform):
            logits = forward(xb)
            loss, _ = F.cross_entropy_forward(logits, yb)
            total_loss = total_loss + loss * len(xb)       # a device array on a GPU: no wait per batch
            preds.append(xp.argmax(logits, axis=1))
            if bar is not None:
                bar.update(len(xb))
    finally:
        model.train(was_training)
        if bar is not None:
            bar.close()
    preds = xp.concatenate(preds)
    acc = float((preds == y).mean())
    return float(total_loss) / len(x_uint8), acc, preds


def _eval_bar(total):
    from tqdm.auto import tqdm

    return tqdm(total=total, desc="evaluating", unit="img", file=sys.stderr, dynamic_ncols=True,
                mininterval=0.5 if sys.stderr.isatty() else 10.0)


def load_images(path, num_classes: int, image_shape):
    """Test images from an .npz file (e.g. the 1,017 exact official CIFAR-10 test images): arrays
    ``x`` (N, H, W, C) uint8 and ``y`` (N,) integer labels in [0, num_classes). Read without pickle;
    anything else raises DataIntegrityError (a ValueError) naming the file and what was expected."""
    import zipfile

    from minivit.data.cifar import DataIntegrityError

    try:
        with np.load(path, allow_pickle=False) as f:
            arrays = {k: f[k] for k in f.files}
    except (ValueError, OSError, zipfile.BadZipFile, EOFError) as e:
        if isinstance(e, FileNotFoundError):
            raise
        raise DataIntegrityError(f"{path}: not an .npz file of images x and labels y ({e})") from e
    x, y = arrays.get("x"), arrays.get("y")
    expected = f"x ({'N, ' + ', '.join(map(str, image_shape))}) uint8 and y (N,) integer labels in [0, {num_classes - 1}]"
    if x is None or y is None:
        raise DataIntegrityError(f"{path}: holds {sorted(arrays)}; expected {expected}")
    if x.dtype != np.uint8 or x.shape[1:] != tuple(image_shape) or not np.issubdtype(y.dtype, np.integer) \
            or y.shape != (len(x),) or (len(y) and (y.min() < 0 or y.max() >= num_classes)) or not len(x):
        raise DataIntegrityError(f"{path}: x {x.shape} {x.dtype}, y {y.shape} {y.dtype}; expected {expected}")
    return x, y.astype(np.int64)


def evaluate_checkpoint(path, data_dir=None, device=None, out=None, batch_size=500, progress=False, flip_tta=False,
                        images=None):
    """Test accuracy, per-class accuracy and confusion matrix of a checkpoint. Returns a dict.

    out: a folder for confusion.png (None: no plot; ``python -m minivit eval`` passes the checkpoint's
    folder). progress: a progress bar on stderr. flip_tta: also the horizontal-flip TTA numbers
    (test_acc_tta, test_loss_tta; minivit/train/tta.py), from the same forward passes (then no progress bar).
    images: an .npz of test images to use instead of the dataset's test set (:func:`load_images`)."""
    from minivit.storage.checkpoint import model_from_checkpoint
    from minivit.data.cifar import load_cifar

    xp = get_xp(device)
    model, meta = model_from_checkpoint(path, xp=xp)
    cfg = TrainConfig.from_dict(meta.get("train_config", {}))
    ds = load_cifar(cfg.dataset, data_dir)
    x, y = ds.x_test, ds.y_test.astype(np.int64)
    if images is not None:
        x, y = load_images(images, len(ds.classes), ds.x_test.shape[1:])
    x, y = xp.asarray(x), xp.asarray(y)
    transform = None
    if model.config.image_size != ds.x_test.shape[1]:       # a model fine-tuned at another resolution
        from minivit.interpolate import resize_batches

        transform = resize_batches(model.config.image_size)
    tta = {}
    if flip_tta:
        from minivit.train.tta import evaluate_tta

        r = evaluate_tta(model, x, y, augment_config(cfg), len(ds.classes), batch_size, transform)
        loss, acc, preds = r["loss"], r["acc"], r["preds"]
        tta = dict(test_loss_tta=r["loss_tta"], test_acc_tta=r["acc_tta"])
    else:
        loss, acc, preds = evaluate(model, x, y, augment_config(cfg), len(ds.classes), batch_size, transform,
                                    progress=progress)
    K = len(ds.classes)
    cm = np.zeros((K, K), dtype=np.int64)
    np.add.at(cm, (to_numpy(y), to_numpy(preds)), 1)
    per_class = cm.diagonal() / np.maximum(1, cm.sum(axis=1))
    result = dict(checkpoint=str(path), dataset=cfg.dataset, images=str(images) if images else "test set",
                  num_images=int(len(y)), test_loss=loss, test_acc=acc,
                  per_class={c: float(a) for c, a in zip(ds.classes, per_class)}, confusion=cm.tolist(), **tta)
    if out is not None:
        from minivit.plots import plot_confusion

        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        result["confusion_png"] = str(plot_confusion(cm, ds.classes, out / "confusion.png",
                                                     title=f"{Path(path).name}: test accuracy {100 * acc:.2f}%"))
    return result
