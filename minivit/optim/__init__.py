"""Optimizers, learning-rate schedules and gradient clipping, one concept per file.

* ``SGD`` (sgd.py): momentum SGD (the paper's fine-tuning optimizer, momentum 0.9).
* ``AdamW`` (adamw.py): Adam with *decoupled* weight decay (Loshchilov & Hutter 2019), the paper's
  pre-training optimizer (it used Adam with weight decay 0.1).
* ``Muon`` (muon.py): orthogonalized momentum for the blocks' weight matrices, AdamW for the rest.
* ``warmup_cosine`` (schedule.py): linear warmup, then cosine decay.
* ``clip_grad_norm`` (clip.py): rescale all gradients so their global L2 norm is at most ``max_norm``.
* ``make_optimizer`` (factory.py): the one place a training run's optimizer is chosen.

The per-parameter updates are plain functions (``sgd_update``, ``adamw_update``); the optimizer
classes loop over the parameters and call them through ``F`` (``minivit.layers.dispatch``, filled by
``minivit.ops``), so a learner's version can be swapped in like any layer. Optimizers take
``model.named_parameters()`` and keep their state (momenta) keyed by parameter name (base.py), so it
can be saved in a checkpoint and loaded back.
"""
from minivit.optim.base import Optimizer  # noqa: F401
from minivit.optim.sgd import SGD, sgd_update  # noqa: F401
from minivit.optim.adamw import AdamW, adamw_update  # noqa: F401
from minivit.optim.schedule import warmup_cosine  # noqa: F401
from minivit.optim.clip import _grad_square_sum, clip_grad_norm, global_grad_norm  # noqa: F401
from minivit.optim.factory import make_optimizer  # noqa: F401
