"""Exercise 7: Softmax cross-entropy with label smoothing. A learner's solution (replaces exercises/ex07_loss.py).

TOPIC: loss
FUNCTION: cross_entropy_backward
MISTAKE: The backward rebuilds the one-hot target from the labels and forgets the label smoothing, so dlogits is wrong whenever label_smoothing > 0.
KIND: backward
EXPECT: label_smoothing_missing
"""
import numpy as np

from minivit.backend import get_array_module


def cross_entropy_forward(logits, labels, label_smoothing=0.0):
    """logits (B, K); labels int (B,) or soft (B, K). returns: loss (float), cache."""
    B, K = logits.shape
    if labels.ndim == 1:
        t = np.zeros((B, K), dtype=logits.dtype)
        t[np.arange(B), labels] = 1.0
    else:
        t = labels.astype(logits.dtype)
    if label_smoothing:
        t = (1 - label_smoothing) * t + label_smoothing / K
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_p = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    loss = -(t * log_p).sum() / B
    return float(loss), (log_p, labels)


def cross_entropy_backward(cache, dloss=1.0):
    """dlogits (B, K) = dloss * (softmax(logits) - target) / B."""
    log_p, labels = cache
    B, K = log_p.shape
    if labels.ndim == 1:
        t = np.zeros((B, K), dtype=log_p.dtype)
        t[np.arange(B), labels] = 1.0
    else:
        t = labels.astype(log_p.dtype)
    dlogits = dloss * (np.exp(log_p) - t) / B
    return dlogits
