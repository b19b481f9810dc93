"""Training recipes: :class:`TrainConfig` (everything a run's numbers depend on) and the
``smoke`` / ``cpu`` / ``gpu`` presets of ``python -m minivit train --preset NAME``.

``minivit.train.trainer`` runs them (and re-exports these names).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from minivit.model import ViTConfig


@dataclass
class TrainConfig:
    """A training recipe. ``model`` holds ViTConfig fields; ``augment`` AugmentConfig fields."""

    model: dict = field(default_factory=lambda: dict(ViTConfig.preset("tiny").to_dict()))
    dataset: str = "cifar10"
    epochs: int | None = 10          # None when the run is a time budget or a step count
    batch_size: int = 128
    lr: float = 1e-3
    min_lr: float = 1e-5
    warmup_epochs: float = 1.0
    weight_decay: float = 0.05
    betas: tuple = (0.9, 0.999)
    label_smoothing: float = 0.0
    clip_norm: float = 1.0
    augment: dict = field(default_factory=dict)
    subset: int | None = None        # use only this many training images (seeded choice)
    test_subset: int | None = None   # evaluate on only the first N test images
    val_split: int | None = None     # hold out N training images (a fixed choice) and evaluate on them, never the test set
    final_test: bool = False         # the last evaluation on the whole test set (the ones before: test_subset)
    seed: int = 0
    eval_batch_size: int = 500
    threads: int = 1                 # CPU only: >1 splits each batch over threads (minivit.fast.parallel)
    # Opt-in training pieces, off by default (minivit/train/options.py):
    ema_decay: float = 0.0           # > 0: evaluate an EMA of the weights (minivit/train/ema.py), e.g. 0.999
    flip_tta: bool = False           # also report horizontal-flip TTA accuracy (minivit/train/tta.py)
    optimizer: str = "adamw"         # or 'muon' (minivit/optim/muon.py)
    resize: list | None = None       # progressive resizing, e.g. [[0.0, 24], [0.5, 32]] (minivit/train/resize_schedule.py)
    # A run's length is one of: epochs; time_budget, seconds from process start to the end, the
    # steps fixed by a calibration (minivit/train/budget.py); steps, a fixed step count (a plan replayed).
    time_budget: float | None = None
    steps: int | None = None
    horizons: list | None = None     # with steps: the plan followed, [[0, H0], [g1, H1], ...] (minivit/train/replan.py)

    def to_dict(self):
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d):
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})


def _model(preset, **overrides):
    return ViTConfig.preset(preset, **overrides).to_dict()


# A recipe's length: its epochs, or a default budget (time_budget=3600.0, epochs=None: ``train
# --preset NAME`` then plans its steps for an hour); --epochs / --steps / --time-budget replace it.
RECIPES = {
    # Seconds: a tiny model on a few thousand images. Used by tests and CI.
    "smoke": TrainConfig(model=_model("tiny"), epochs=2, batch_size=64, lr=2e-3, warmup_epochs=0.5,
                         subset=2048, test_subset=1000, augment=dict(crop_padding=4, flip=True)),
    # A 2-core CPU, one hour (a default budget: the steps are planned to end the whole run within 60
    # min, minivit/train/budget.py): a narrow ViT with 4x4 patches (65 tokens), crop + flip, label smoothing.
    # Two heads instead of four: the same FLOPs, but half the softmax work, ~10% faster in NumPy.
    # threads=2: the batch is split over two model replicas, one per core (minivit/fast/parallel.py);
    # for this small model that is ~1.8x the throughput of one model on two BLAS threads.
    # Curves on the first 2,000 test images; the final model on all 10,000 (final_test); best.npz
    # is the final model (nothing is chosen on test images). The levers measured for this budget
    # (docs/budget_levers.md): Muon for the blocks' matrices won (+6.7 points of validation accuracy
    # in 8-minute runs, 2 seeds each, against a seed spread of 1.7), and with Muon, dropping 25% of
    # the patch tokens in training (+1.6, seed spreads 0.0 and 1.1); then, in 10-minute runs, dropping
    # 50% instead of 25% (+2.9, 1.4x the images/s; one seed): Muon and 50% patch dropout are on.
    "cpu": TrainConfig(model=_model("cifar", dim=128, depth=6, num_heads=2, mlp_dim=256, token_drop=0.5),
                       optimizer="muon",
                       epochs=None, time_budget=3600.0, batch_size=128, threads=2, lr=2e-3, min_lr=1e-5,
                       warmup_epochs=1, weight_decay=0.05, label_smoothing=0.1, test_subset=2000, final_test=True,
                       augment=dict(crop_padding=4, flip=True)),
    # One GPU, ten minutes (a default budget). UNTUNED: no GPU has run it yet. ViT-Lite-7/4 with the
    # recipe of Hassani et al. (AdamW 5e-4, wd 3e-2, 5 warmup epochs, cosine, label smoothing 0.1)
    # with RandAugment in place of AutoAugment, stochastic depth 0.1 and mixup/cutmix; set by
    # argument for a short schedule: batch 512 with the learning rate scaled by sqrt(4) (fewer, larger
    # steps keep a GPU busy; the CPU experiments, docs/budget_levers.md, favour a higher rate for a
    # short run), and as in the cpu recipe: curves on 2,000 test images, the final model on all.
    "gpu": TrainConfig(model=_model("cifar", drop_path=0.1), epochs=None, time_budget=600.0, batch_size=512,
                       lr=1e-3, min_lr=1e-6, warmup_epochs=5, weight_decay=0.03, label_smoothing=0.1,
                       test_subset=2000, final_test=True,
                       augment=dict(crop_padding=4, flip=True, randaugment_n=2, randaugment_m=9.0,
                                    mixup_alpha=0.8, cutmix_alpha=1.0, mix_prob=0.5, erasing_prob=0.25)),
}


LENGTHS = ("epochs", "time_budget", "steps")    # the ways to say how long a run is: one at a time


def recipe(name: str, **overrides) -> TrainConfig:
    """The recipe ``name`` with ``overrides`` (TrainConfig fields; None: keep the recipe's). Giving
    one of epochs / time_budget / steps replaces the recipe's length (e.g. its default budget)."""
    if name not in RECIPES:
        raise ValueError(f"unknown preset {name!r}; choose one of {sorted(RECIPES)}")
    d = RECIPES[name].to_dict()
    given = [k for k in LENGTHS if overrides.get(k) is not None]
    if len(given) > 1:
        raise ValueError(f"{' and '.join(given)} exclude each other: a run's length is one of {', '.join(LENGTHS)}")
    if given:                           # the run's length given: the recipe's own (epochs or budget) gives way
        d.update(dict.fromkeys(LENGTHS), horizons=None)
    d.update({k: v for k, v in overrides.items() if v is not None})
    return TrainConfig.from_dict(d)
