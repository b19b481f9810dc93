"""Exercise 9: AdamW + the warmup-cosine schedule.

TOPIC: optim
FUNCTION: adamw_update
EXPECT: input_modified
KIND: optimizer

The squared gradient is computed in g's own array (`g2 = g; g2 *= g`): w, m and v are right, but the
caller's gradient changed.
"""
import math

import numpy as np


def adamw_update(w, g, m, v, t, lr, b1=0.9, b2=0.999, eps=1e-8, weight_decay=0.0):
    m *= b1
    m += (1 - b1) * g
    g2 = g
    g2 *= g
    v *= b2
    v += (1 - b2) * g2
    m_hat = m / (1 - b1 ** t)
    v_hat = v / (1 - b2 ** t)
    w -= lr * (m_hat / (np.sqrt(v_hat) + eps) + weight_decay * w)


def warmup_cosine(step, total_steps, base_lr, warmup_steps=0, min_lr=0.0):
    if warmup_steps > 0 and step < warmup_steps:
        return base_lr * (step + 1) / warmup_steps
    decay_steps = total_steps - warmup_steps
    progress = np.clip((step - warmup_steps) / decay_steps, 0.0, 1.0) if decay_steps > 0 else 1.0
    return min_lr + (base_lr - min_lr) * (np.cos(np.pi * progress) + 1) / 2
