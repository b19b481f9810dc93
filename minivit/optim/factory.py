"""The one place a training run's optimizer is chosen: :func:`make_optimizer`.

    "adamw"  AdamW for every parameter (the paper's pre-training optimizer; the default)
    "muon"   Muon for the blocks' 2D weight matrices, AdamW for the rest (minivit/optim/muon.py)
    "sgd"    momentum SGD, momentum 0.9 (the paper's fine-tuning optimizer; minivit/train/finetune.py)

All three take the run's learning rate (the trainer sets ``opt.lr`` from the schedule before every
step) and its weight decay; AdamW and Muon also its betas.
"""
from __future__ import annotations

from minivit.optim.adamw import AdamW
from minivit.optim.muon import Muon
from minivit.optim.sgd import SGD

CONFIG_OPTIMIZERS = ("adamw", "muon")   # what TrainConfig.optimizer (--optimizer) may name
OPTIMIZERS = CONFIG_OPTIMIZERS + ("sgd",)
SGD_MOMENTUM = 0.9                      # the paper's fine-tuning momentum


def check_optimizer(name: str) -> None:
    """ValueError unless ``name`` is an optimizer a TrainConfig may name."""
    if name not in CONFIG_OPTIMIZERS:
        raise ValueError(f"optimizer must be one of {CONFIG_OPTIMIZERS}, got {name!r}")


def make_optimizer(cfg, model, name: str | None = None):
    """The optimizer of a run of ``cfg`` (a TrainConfig: lr, betas, weight_decay) over
    ``model.named_parameters()``.

    name: 'adamw', 'muon' or 'sgd'; default ``cfg.optimizer`` (which may name only 'adamw' or 'muon':
    ValueError otherwise). The fine-tuner asks for 'sgd'.
    """
    check_optimizer(cfg.optimizer)
    name = cfg.optimizer if name is None else name
    if name == "sgd":
        return SGD(model.named_parameters(), lr=cfg.lr, momentum=SGD_MOMENTUM, weight_decay=cfg.weight_decay)
    kind = Muon if name == "muon" else AdamW
    return kind(model.named_parameters(), lr=cfg.lr, betas=tuple(cfg.betas), weight_decay=cfg.weight_decay)
