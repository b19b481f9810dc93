"""The learning-rate schedule: linear warmup, then cosine decay (``warmup_cosine``); the trainer sets
``opt.lr`` from it before every optimizer step."""
from __future__ import annotations

import math


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
