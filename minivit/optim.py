"""Optimizers, learning-rate schedules and gradient clipping.

* ``SGD``: momentum SGD (the paper's fine-tuning optimizer, momentum 0.9).
* ``AdamW``: Adam with *decoupled* weight decay (Loshchilov & Hutter 2019), the paper's
  pre-training optimizer (it used Adam with weight decay 0.1).
* ``warmup_cosine``: linear warmup, then cosine decay.
* ``clip_grad_norm``: rescale all gradients so their global L2 norm is at most ``max_norm``.

Optimizers take ``model.named_parameters()`` and keep their state (momenta) keyed by
parameter name, so it can be saved in a checkpoint and loaded back.
"""
from __future__ import annotations

import math

import numpy as np

from minivit.backend import get_array_module, to_device, to_numpy


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
                out[f"{name}/{k}"] = to_numpy(v)
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
            self.state.setdefault(name, {})[k] = to_device(np.asarray(value, dtype=p.dtype), get_array_module(p))
        return self


class SGD(Optimizer):
    """v = momentum * v + g ;  w -= lr * (v + weight_decay * w)   (weight decay only where param.decay)."""

    def __init__(self, named_params, lr=0.01, momentum=0.9, weight_decay=0.0, nesterov=False):
        super().__init__(named_params, lr)
        self.momentum, self.weight_decay, self.nesterov = momentum, weight_decay, nesterov

    def step(self):
        self._check_grads()
        self.t += 1
        for name, p in self.params.items():
            g = p.grad
            if self.weight_decay and p.decay:
                g = g + self.weight_decay * p.value
            if self.momentum:
                st = self.state.setdefault(name, {})
                if "v" not in st:
                    st["v"] = get_array_module(g).zeros_like(p.value)
                v = st["v"]
                v *= self.momentum
                v += g
                g = g + self.momentum * v if self.nesterov else v
            p.value -= self.lr * g


class AdamW(Optimizer):
    """Adam with decoupled weight decay.

        m = b1 m + (1 - b1) g              v = b2 v + (1 - b2) g^2
        m_hat = m / (1 - b1^t)             v_hat = v / (1 - b2^t)
        w -= lr * (m_hat / (sqrt(v_hat) + eps) + weight_decay * w)

    The decay term is applied to the weights directly, not added to the gradient (that is what
    "decoupled" means), and only to parameters with ``decay=True`` (not to biases, LayerNorm,
    position embeddings or the class token).
    """

    def __init__(self, named_params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.05):
        super().__init__(named_params, lr)
        self.b1, self.b2 = betas
        self.eps, self.weight_decay = eps, weight_decay

    def step(self):
        self._check_grads()
        self.t += 1
        b1, b2, lr = self.b1, self.b2, self.lr
        # Fold both bias corrections into one step size (same math, fewer array operations).
        step_size = lr * math.sqrt(1.0 - b2 ** self.t) / (1.0 - b1 ** self.t)
        eps_hat = self.eps * math.sqrt(1.0 - b2 ** self.t)
        for name, p in self.params.items():
            xp = get_array_module(p.value)
            g = p.grad
            st = self.state.setdefault(name, {})
            if "m" not in st:
                st["m"] = xp.zeros_like(p.value)
                st["v"] = xp.zeros_like(p.value)
            m, v = st["m"], st["v"]
            m *= b1
            m += (1.0 - b1) * g
            v *= b2
            v += (1.0 - b2) * (g * g)
            if self.weight_decay and p.decay:
                p.value *= 1.0 - lr * self.weight_decay
            denom = xp.sqrt(v)
            denom += eps_hat
            p.value -= step_size * (m / denom)


def warmup_cosine(step, total_steps, base_lr, warmup_steps=0, min_lr=0.0):
    """Learning rate at ``step`` (0-based): linear warmup from ~0 to base_lr over ``warmup_steps``,
    then cosine decay to ``min_lr`` at ``total_steps``."""
    if step < warmup_steps:
        return base_lr * (step + 1) / warmup_steps
    progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
    progress = min(1.0, progress)
    return min_lr + 0.5 * (base_lr - min_lr) * (1.0 + math.cos(math.pi * progress))


def global_grad_norm(params) -> float:
    """sqrt(sum over all parameters of sum(grad^2))."""
    total = 0.0
    for p in params:
        g = p.grad
        total += float((g * g).sum())
    return math.sqrt(total)


def clip_grad_norm(params, max_norm: float) -> float:
    """Scale every gradient by min(1, max_norm / global_norm). Returns the norm before clipping."""
    params = list(params)
    norm = global_grad_norm(params)
    if max_norm and norm > max_norm:
        scale = max_norm / (norm + 1e-6)
        for p in params:
            p.grad *= scale
    return norm
