"""Optimizers, learning-rate schedules and gradient clipping.

* ``SGD``: momentum SGD (the paper's fine-tuning optimizer, momentum 0.9).
* ``AdamW``: Adam with *decoupled* weight decay (Loshchilov & Hutter 2019), the paper's
  pre-training optimizer (it used Adam with weight decay 0.1).
* ``warmup_cosine``: linear warmup, then cosine decay.
* ``clip_grad_norm``: rescale all gradients so their global L2 norm is at most ``max_norm``.

The per-parameter updates are plain functions (``sgd_update``, ``adamw_update``); the optimizer
classes loop over the parameters and call them through ``F`` (``minivit.layers.dispatch``, filled by ``minivit.ops``), so a learner's version
can be swapped in like any layer. Optimizers take ``model.named_parameters()`` and keep their state (momenta) keyed by
parameter name, so it can be saved in a checkpoint and loaded back.
"""
from __future__ import annotations

import math

import numpy as np

from minivit.backend import get_array_module, to_device, to_numpy
from minivit.layers.dispatch import F


class Optimizer:
    """Common parts: parameter list, learning rate, state save/load."""

    def __init__(self, named_params, lr):
        self.params = dict(named_params)
        if not self.params:
            raise ValueError("optimizer got no parameters")
        self.lr = lr
        self.t = 0            # number of steps taken
        self.state = {}       # name -> dict of arrays

    def _check_grads(self):
        missing = [n for n, p in self.params.items() if p.grad is None]
        if missing:
            raise RuntimeError(f"no gradient for {missing[:3]}{'...' if len(missing) > 3 else ''}: "
                               "call model.backward(...) before optimizer.step()")

    def state_dict(self) -> dict:
        """Flat {key: NumPy array} suitable for an .npz file."""
        out = {"t": np.array(self.t), "lr": np.array(self.lr)}
        for name, st in self.state.items():
            for k, v in st.items():
                out[f"{name}/{k}"] = to_numpy(v).copy()       # a snapshot, not the live buffer
        return out

    def load_state_dict(self, d: dict):
        self.t = int(d["t"])
        self.lr = float(d["lr"])
        self.state = {}
        for key, value in d.items():
            if "/" not in key:
                continue
            name, k = key.rsplit("/", 1)
            if name not in self.params:
                raise KeyError(f"optimizer state for unknown parameter {name!r}")
            p = self.params[name].value
            if value.shape != p.shape:
                raise ValueError(f"optimizer state {key}: shape {value.shape}, parameter has {tuple(p.shape)}")
            value = np.array(to_numpy(value), dtype=p.dtype, copy=True)   # own buffers, never shared
            self.state.setdefault(name, {})[k] = to_device(value, get_array_module(p))
        return self


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


def adamw_update(w, g, m, v, t, lr, b1=0.9, b2=0.999, eps=1e-8, weight_decay=0.0):
    """One AdamW step (Loshchilov & Hutter 2019) for one parameter, in place.

    w: parameter, g: gradient, m, v: first/second moment buffers (updated in place),
    t: the step number, starting at 1.

        m = b1 m + (1 - b1) g              v = b2 v + (1 - b2) g^2
        m_hat = m / (1 - b1^t)             v_hat = v / (1 - b2^t)
        w -= lr * (m_hat / (sqrt(v_hat) + eps) + weight_decay * w)

    The decay term acts on the weights directly instead of being added to the gradient: that is
    what "decoupled" means (with Adam, a penalty added to g would be rescaled by 1/sqrt(v_hat)).
    Returns nothing: w, m and v are updated in place (the caller's arrays change).

    Does not modify g (only w, m and v change); float32 arrays stay float32.

    Derivation:
        In place means w -= ..., m *= b1; m += ... (w = w - ... only rebinds a local name).
        The two bias corrections fold into one step size: m_hat / (sqrt(v_hat) + eps) =
        c1 * m / (sqrt(v) + eps * sqrt(1 - b2^t)) with c1 = sqrt(1 - b2^t) / (1 - b1^t).
    """
    xp = get_array_module(w)
    m *= b1
    m += (1.0 - b1) * g
    v *= b2
    v += (1.0 - b2) * (g * g)
    if weight_decay:
        w *= 1.0 - lr * weight_decay
    # Fold both bias corrections into one step size (the same math, fewer array operations):
    # m_hat / (sqrt(v_hat) + eps) = c1 * m / (sqrt(v) + eps * sqrt(1 - b2^t)), c1 = sqrt(1 - b2^t) / (1 - b1^t)
    step_size = lr * math.sqrt(1.0 - b2 ** t) / (1.0 - b1 ** t)
    denom = xp.sqrt(v)
    denom += eps * math.sqrt(1.0 - b2 ** t)
    w -= step_size * (m / denom)


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


class AdamW(Optimizer):
    """Adam with decoupled weight decay; see :func:`adamw_update`. Weight decay applies only to
    parameters with ``decay=True`` (not to biases, LayerNorm, position embeddings, class token)."""

    def __init__(self, named_params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.05):
        super().__init__(named_params, lr)
        self.b1, self.b2 = betas
        self.eps, self.weight_decay = eps, weight_decay

    def step(self):
        self._check_grads()
        self.t += 1
        for name, p in self.params.items():
            st = self.state.setdefault(name, {})
            if "m" not in st:
                xp = get_array_module(p.value)
                st["m"], st["v"] = xp.zeros_like(p.value), xp.zeros_like(p.value)
            F.adamw_update(p.value, p.grad, st["m"], st["v"], self.t, self.lr, self.b1, self.b2, self.eps,
                           self.weight_decay if p.decay else 0.0)


def warmup_cosine(step, total_steps, base_lr, warmup_steps=0, min_lr=0.0):
    """Learning rate at ``step`` (0-based): linear warmup from ~0 to base_lr over ``warmup_steps``,
    then cosine decay to ``min_lr`` at ``total_steps``; a Python float.

        step < warmup_steps:  base_lr * (step + 1) / warmup_steps
        after:                min_lr + 0.5 (base_lr - min_lr) (1 + cos(pi * progress)),
                              progress = (step - warmup_steps) / (total_steps - warmup_steps), at most 1
        (total_steps == warmup_steps: progress 1 from there on, so min_lr)

    Derivation:
        with no decay steps (total_steps <= warmup_steps) the end is reached when the warmup ends, so
        progress is 1; min(1.0, progress) holds min_lr past the end.
    """
    if step < warmup_steps:
        return base_lr * (step + 1) / warmup_steps
    decay_steps = total_steps - warmup_steps
    progress = min(1.0, (step - warmup_steps) / decay_steps) if decay_steps > 0 else 1.0
    return min_lr + 0.5 * (base_lr - min_lr) * (1.0 + math.cos(math.pi * progress))


def _grad_square_sum(params, xp):
    """sum over all parameters of sum(grad^2): a 0-d float64 array on the device."""
    total = xp.zeros((), dtype=np.float64)
    for p in params:
        total += xp.vdot(p.grad, p.grad)      # sum of squares without a temporary array
    return total


def global_grad_norm(params) -> float:
    """sqrt(sum over all parameters of sum(grad^2)), accumulated on the device in float64."""
    params = list(params)
    total = _grad_square_sum(params, get_array_module(params[0].grad))
    return math.sqrt(float(total))            # one device-to-host transfer


def clip_grad_norm(params, max_norm: float) -> float:
    """Scale every gradient by min(1, max_norm / global_norm). Returns the norm before clipping
    (on a GPU a 0-d device array: the scale is computed there, so the step never waits for the GPU)."""
    params = list(params)
    xp = get_array_module(params[0].grad)
    if xp is not np and max_norm:
        norm = xp.sqrt(_grad_square_sum(params, xp))
        scale = xp.where(norm > max_norm, max_norm / (norm + 1e-6), 1.0)
        for p in params:
            p.grad *= scale.astype(p.grad.dtype)
        return norm
    norm = global_grad_norm(params)
    if max_norm and norm > max_norm:
        scale = max_norm / (norm + 1e-6)
        for p in params:
            p.grad *= scale
    return norm
