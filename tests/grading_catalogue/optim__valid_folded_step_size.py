"""Exercise 9: AdamW + the warmup-cosine schedule. A learner's solution (replaces exercises/ex09_optim.py).

Correct: decays first, folds the bias corrections into the step size (as minivit does), writes with [...].

TOPIC: optim
FUNCTION: adamw_update
EXPECT: VALID
KIND: backward
"""
import math

import numpy as np


def adamw_update(w, g, m, v, t, lr, b1=0.9, b2=0.999, eps=1e-8, weight_decay=0.0):
    m[...] = b1 * m + (1.0 - b1) * g
    v[...] = b2 * v + (1.0 - b2) * np.square(g)
    if weight_decay:
        w *= 1.0 - lr * weight_decay
    c2 = math.sqrt(1.0 - b2 ** t)
    step_size = lr * c2 / (1.0 - b1 ** t)
    w -= step_size * m / (np.sqrt(v) + eps * c2)


def warmup_cosine(step, total_steps, base_lr, warmup_steps=0, min_lr=0.0):
    if step < warmup_steps:
        return base_lr * (step + 1) / warmup_steps
    decay_steps = total_steps - warmup_steps
    progress = (step - warmup_steps) / decay_steps if decay_steps > 0 else 1.0
    progress = min(1.0, progress)
    return min_lr + 0.5 * (base_lr - min_lr) * (1 + math.cos(math.pi * progress))
