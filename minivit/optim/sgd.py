"""Momentum SGD (the paper's fine-tuning optimizer, momentum 0.9): the per-parameter update
``sgd_update`` and the optimizer ``SGD`` that calls it for every parameter through ``F`` (so a
learner's version can be swapped in like any layer)."""
from __future__ import annotations

from minivit.backend import get_array_module
from minivit.layers.dispatch import F
from minivit.optim.base import Optimizer


def sgd_update(w, g, v, lr, momentum=0.9, weight_decay=0.0, nesterov=False):
    """One SGD step for one parameter, in place.

    w: parameter, g: its gradient, v: momentum buffer (same shape; updated in place).
        g' = g + weight_decay * w            (L2 penalty; pass 0 for biases, LayerNorm...)
        v  = momentum * v + g'
        w -= lr * v                          (Nesterov: w -= lr * (g' + momentum * v))
    """
    if weight_decay:
        g = g + weight_decay * w
    if momentum:
        v *= momentum
        v += g
        g = g + momentum * v if nesterov else v
    w -= lr * g


class SGD(Optimizer):
    """Momentum SGD (the paper's fine-tuning optimizer); weight decay only where ``param.decay``."""

    def __init__(self, named_params, lr=0.01, momentum=0.9, weight_decay=0.0, nesterov=False):
        super().__init__(named_params, lr)
        self.momentum, self.weight_decay, self.nesterov = momentum, weight_decay, nesterov

    def step(self):
        self._check_grads()
        self.t += 1
        for name, p in self.params.items():
            st = self.state.setdefault(name, {})
            if "v" not in st:
                st["v"] = get_array_module(p.value).zeros_like(p.value)
            F.sgd_update(p.value, p.grad, st["v"], self.lr, self.momentum,
                         self.weight_decay if p.decay else 0.0, self.nesterov)
