"""Exercise 7: Softmax cross-entropy with label smoothing. A learner's solution (replaces exercises/ex07_loss.py).

Caches the logits and subtracts the target from them, skipping the softmax.

TOPIC: loss
FUNCTION: cross_entropy_backward
EXPECT: dlogits_no_softmax
KIND: backward
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
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_p = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    loss = -(target * log_p).sum() / B
    return float(loss), (logits, target)


def cross_entropy_backward(cache, dloss=1.0):
    logits, target = cache
    B = logits.shape[0]
    return dloss * (logits - target) / B
