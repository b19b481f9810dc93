"""AdamW: Adam with *decoupled* weight decay (Loshchilov & Hutter 2019), the paper's pre-training
optimizer (it used Adam with weight decay 0.1): the per-parameter update ``adamw_update`` and the
optimizer ``AdamW`` that calls it for every parameter through ``F`` (so a learner's version can be
swapped in like any layer)."""
from __future__ import annotations

import math

from minivit.backend import get_array_module
from minivit.layers.dispatch import F
from minivit.optim.base import Optimizer


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
