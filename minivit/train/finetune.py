"""Fine-tuning a pre-trained ViT on CIFAR: ``python -m minivit finetune --from FILE``.

The paper's transfer setting (Sections 3.2 and 4.1, Appendix B.1.1):

* start from pre-trained weights: an official checkpoint (``ViT-B_16.npz`` ...) or a minivit one;
* remove the pre-training head (with its hidden tanh layer) and attach a zero-initialized
  linear head for the new classes (``ViT.replace_head``);
* train with SGD, momentum 0.9, no weight decay, gradient clipping at global norm 1, a short
  linear warmup then cosine decay (the official fine-tuning configuration: batch 512,
  lr 0.03, 500 steps with 100 of warmup for CIFAR);
* at the checkpoint's resolution (224 for the ImageNet-21k ViTs) or higher: CIFAR's 32 x 32
  images are resized on the device, batch by batch (``resize_batches``), and ``--image-size``
  changes the model's resolution, interpolating its position embeddings (``ViT.resize``).

Official checkpoints expect pixels scaled to [-1, 1] (mean 0.5, std 0.5); minivit checkpoints
keep the normalization they were trained with.

The loop is minivit's ``Trainer`` (same checkpoints, metrics and plots, ``--resume`` included);
:class:`FineTuner` only asks the optimizer factory for momentum SGD.

On a CPU this is practical for small minivit checkpoints; fine-tuning ViT-B/16 at 224 x 224
(86M parameters, 197 tokens) wants a GPU (``--device gpu``).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from minivit.interpolate import resize_batches  # noqa: F401 (re-exported: part of the fine-tuning API)
from minivit.optim.factory import SGD_MOMENTUM
from minivit.train.runfolder import claim_run_folder
from minivit.train.trainer import TrainConfig, Trainer


def _recipe(**kw):
    base = dict(lr=0.01, min_lr=0.0, warmup_epochs=0.2, weight_decay=0.0, label_smoothing=0.0, clip_norm=1.0,
                augment=dict(crop_padding=4, flip=True))
    return TrainConfig(**{**base, **kw})


FINETUNE_RECIPES = {
    # Seconds, for tests and CI: a few hundred images.
    "smoke": _recipe(epochs=1, batch_size=32, subset=256, test_subset=128, warmup_epochs=0.25),
    # A CPU: a small minivit checkpoint (e.g. pre-trained on CIFAR-100), a few epochs.
    "cpu": _recipe(epochs=3, batch_size=128, lr=0.01),
    # One GPU, an official ViT-B/16 at 224 x 224: the official recipe (lr 0.03 at batch 512,
    # ~5 epochs of CIFAR) scaled to batch 128 (memory) with the learning rate scaled along.
    # Evaluation also keeps every activation (minivit's forward always caches), hence the
    # small evaluation batch.
    "gpu": _recipe(epochs=3, batch_size=128, lr=0.01, warmup_epochs=0.25, eval_batch_size=64),
}


class FineTuner(Trainer):
    """``Trainer`` with the paper's fine-tuning optimizer: SGD, momentum 0.9, no weight decay.

    Takes the same arguments as ``Trainer`` (pass ``model=`` the pre-trained ViT with its new
    head, and ``batch_transform=`` a resize when the resolutions differ). Gradient clipping and
    the warmup + cosine schedule come from the TrainConfig (``clip_norm``, ``warmup_epochs``).
    """

    optimizer = "sgd"                   # chosen once, by minivit/optim/factory.py
    momentum = SGD_MOMENTUM


def prepare_model(path, num_classes: int, image_size: int | None = None, xp=np, seed: int = 0):
    """Load a checkpoint (official or minivit) for fine-tuning.

    Replaces the head with a zero-initialized Linear(D, num_classes) and, when ``image_size``
    is given, resizes the model (position embeddings interpolated in 2D).
    returns: (model, info) with info['mean'], info['std']: the normalization the weights expect.
    """
    from minivit.pretrained import load_model

    model, info = load_model(path, xp=xp)
    model.replace_head(num_classes, seed=seed)
    if image_size is not None and image_size != model.config.image_size:
        model.resize(image_size)
    return model, info


def finetune(path, preset: str = "gpu", out=None, device=None, data_dir=None, dataset_obj=None,
             image_size: int | None = None, progress: bool = True, resume: bool = False, overwrite: bool = False,
             **overrides):
    """Fine-tune the checkpoint at ``path`` on CIFAR (or ``dataset_obj``). Returns the FineTuner
    after training (``.history`` holds the metrics, ``.model`` the fine-tuned ViT).

    out: the run folder, with train's rules (``minivit.train.runfolder``): one that holds a run is only
    continued (``resume``) or moved aside first (``overwrite``), and it is locked while training.

    overrides: TrainConfig fields (epochs, batch_size, lr, dataset, subset, seed...; None = keep).
    """
    if preset not in FINETUNE_RECIPES:
        raise ValueError(f"unknown fine-tuning preset {preset!r}; choose one of {sorted(FINETUNE_RECIPES)}")
    d = FINETUNE_RECIPES[preset].to_dict()
    d.update({k: v for k, v in overrides.items() if v is not None})
    cfg = TrainConfig.from_dict(d)
    out = Path(out or f"runs/finetune-{Path(path).stem}-{cfg.dataset}")
    with claim_run_folder(out, resume=resume, overwrite=overwrite):
        return _finetune(path, cfg, out, device, data_dir, dataset_obj, image_size, progress, resume)


def _finetune(path, cfg, out, device, data_dir, dataset_obj, image_size, progress, resume):
    from minivit.backend import get_xp

    xp = get_xp(device)
    if dataset_obj is None:
        from minivit.data.cifar import load_cifar

        dataset_obj = load_cifar(cfg.dataset, data_dir)
    model, info = prepare_model(path, len(dataset_obj.classes), image_size, xp=xp, seed=cfg.seed)
    cfg.model = model.config.to_dict()
    cfg.augment = {**cfg.augment, "mean": tuple(info["mean"]), "std": tuple(info["std"])}
    tuner = FineTuner(cfg, out, device=device, dataset_obj=dataset_obj, progress=progress, model=model,
                      batch_transform=resize_batches(model.config.image_size))
    if resume:
        tuner.resume()
    print(f"fine-tuning {path} ({info['source']} checkpoint) at {model.config.image_size}x{model.config.image_size}, "
          f"{model.config.num_classes} classes, SGD momentum {FineTuner.momentum}, lr {cfg.lr}, clip {cfg.clip_norm}")
    tuner.fit()
    return tuner
