"""Exercise 7: Softmax cross-entropy with label smoothing. A learner's solution (replaces exercises/ex07_loss.py).

TOPIC: loss
FUNCTION: cross_entropy_forward
MISTAKE: The log-probabilities are computed as log(softmax(s)), which gives log(0) = -inf (and 0 * -inf = nan) for very negative scores, instead of the stable log-softmax.
KIND: forward
EXPECT: log_of_softmax
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
    p = np.exp(shifted) / np.exp(shifted).sum(axis=1, keepdims=True)
    log_p = np.log(p)
    loss = -(t * log_p).sum() / B
    return float(loss), (log_p, t)


def cross_entropy_backward(cache, dloss=1.0):
    """dlogits (B, K) = dloss * (softmax(logits) - target) / B."""
    log_p, t = cache
    B = log_p.shape[0]
    dlogits = dloss * (np.exp(log_p) - t) / B
    return dlogits
