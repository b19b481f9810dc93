"""Exercise 7: Softmax cross-entropy with label smoothing. A learner's solution (replaces exercises/ex07_loss.py).

Subtracts the row maximum from the caller's logits in place.

TOPIC: loss
FUNCTION: cross_entropy_forward
EXPECT: input_modified
KIND: forward
"""
import numpy as np


def cross_entropy_forward(logits, labels, label_smoothing=0.0):
    B, K = logits.shape
    if labels.ndim == 1:
        target = np.zeros((B, K), dtype=logits.dtype)
        target[np.arange(B), labels] = 1.0
    else:
        target = labels.astype(logits.dtype)
    if label_smoothing:
        target = (1 - label_smoothing) * target + label_smoothing / K
    logits -= logits.max(axis=1, keepdims=True)
    shifted = logits
    log_p = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    loss = -(target * log_p).sum() / B
    return float(loss), (log_p, target)


def cross_entropy_backward(cache, dloss=1.0):
    log_p, target = cache
    B = log_p.shape[0]
    return dloss * (np.exp(log_p) - target) / B
