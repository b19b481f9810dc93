"""An exponential moving average (EMA) of the weights, evaluated in place of the weights.

Polyak averaging in its exponential form: after every optimizer step,

    shadow = d * shadow + (1 - d) * weights          d: the decay, e.g. 0.999

so the shadow is a weighted mean of the recent weights (about the last 1 / (1 - d) steps: 1,000
for d = 0.999). Averaging cancels part of the noise of the last steps, which is why an EMA model
often evaluates better than the raw one, most of all before the learning rate has decayed (a
short, budgeted run ends soon after it has). It costs one multiply-add per weight per step and
one copy of the weights. Used by e.g. timm (``ModelEmaV2``) and the DeiT recipe.

Early in training the shadow would be dominated by the random initial weights; with ``warmup``
the decay of update n (0-based) is min(d, (1 + n) / (10 + n)) (TensorFlow's
``ExponentialMovingAverage(num_updates=...)`` rule), so the first updates follow the weights
closely.

Evaluating with the EMA weights swaps the arrays (no copy, exact): ``with ema.swapped(model):
evaluate(model, ...)``; leaving the block swaps them back bit for bit, even on an exception.

The state (the shadow arrays and the update count) is plain arrays: ``state_dict`` gives
{'updates', 'decay', 'warmup', <parameter name>...}, stored in a checkpoint under ``ema/`` and
restored bit-exactly:

    save_checkpoint(path, model, opt, meta, extra=ema.checkpoint_arrays())
    ema.load_state_dict(extra_arrays(path, EMA.PREFIX))
"""
from __future__ import annotations

import contextlib

import numpy as np

from minivit.backend import get_array_module, to_device, to_numpy


class EMA:
    """Shadow weights of ``model``: {parameter name: array on the parameter's device and dtype}.

    decay: d in [0, 1).  warmup: use min(d, (1 + n) / (10 + n)) for update n.
    """

    PREFIX = "ema/"          # where a checkpoint keeps the state

    def __init__(self, model, decay: float = 0.999, warmup: bool = True):
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"EMA decay must be in [0, 1), got {decay}")
        self.decay, self.warmup = float(decay), bool(warmup)
        self.updates = 0
        self.shadow = {name: p.value.copy() for name, p in model.named_parameters()}

    def current_decay(self) -> float:
        """The decay the next ``update`` uses."""
        if self.warmup:
            return min(self.decay, (1.0 + self.updates) / (10.0 + self.updates))
        return self.decay

    def update(self, model):
        """shadow = d * shadow + (1 - d) * weights, in place (call after each optimizer step)."""
        d = self.current_decay()
        for name, p in model.named_parameters():
            s = self.shadow[name]
            s *= d
            s += (1.0 - d) * p.value
        self.updates += 1

    @contextlib.contextmanager
    def swapped(self, model):
        """Inside the block the model holds the EMA weights (and the EMA the raw ones); on exit
        both are swapped back. Do not train inside the block."""
        params = dict(model.named_parameters())
        self._swap(params)
        try:
            yield model
        finally:
            self._swap(params)

    def _swap(self, params):
        for name, p in params.items():
            p.value, self.shadow[name] = self.shadow[name], p.value

    def copy_to(self, model):
        """Write the EMA weights into ``model`` (a copy: e.g. to save or fine-tune the EMA model)."""
        for name, p in model.named_parameters():
            p.value = self.shadow[name].copy()

    # -- saving ------------------------------------------------------------------------------
    def state_dict(self) -> dict:
        """{'updates': int64, 'decay': float64, 'warmup': bool, <name>: host array (a copy)}."""
        out = {"updates": np.array(self.updates, dtype=np.int64), "decay": np.array(self.decay),
               "warmup": np.array(self.warmup)}
        out.update({name: to_numpy(s).copy() for name, s in self.shadow.items()})
        return out

    def checkpoint_arrays(self) -> dict:
        """``state_dict`` with the keys under ``PREFIX``, for ``save_checkpoint(..., extra=...)``."""
        return {self.PREFIX + k: v for k, v in self.state_dict().items()}

    def load_state_dict(self, d: dict):
        """Restore ``state_dict``'s arrays (names and shapes checked; device and dtype of the shadow)."""
        names = set(d) - {"updates", "decay", "warmup"}
        if names != set(self.shadow):
            missing, unexpected = sorted(set(self.shadow) - names), sorted(names - set(self.shadow))
            raise KeyError(f"EMA state does not match the model: missing {missing[:3]}, unexpected {unexpected[:3]}")
        for name, s in self.shadow.items():
            value = np.asarray(to_numpy(d[name]))
            if value.shape != s.shape:
                raise ValueError(f"EMA state {name}: shape {value.shape}, the model has {tuple(s.shape)}")
            self.shadow[name] = to_device(np.array(value, dtype=s.dtype, copy=True), get_array_module(s))
        self.updates = int(d["updates"])
        self.decay = float(d["decay"])
        self.warmup = bool(d["warmup"])
        return self
