"""Exercise 7: Softmax cross-entropy with label smoothing. A learner's solution (replaces exercises/ex07_loss.py).

Correct: caches the probabilities and the smoothed target; builds the target with np.full and fancy indexing.

TOPIC: loss
FUNCTION: cross_entropy_backward
EXPECT: VALID
KIND: backward
"""
import numpy as np


def cross_entropy_forward(logits, labels, label_smoothing=0.0):
    B, K = logits.shape
    eps = label_smoothing
    if labels.ndim == 2:
        target = (1.0 - eps) * labels.astype(logits.dtype) + eps / K
    else:
        target = np.full((B, K), eps / K, dtype=logits.dtype)
        target[np.arange(B), labels] += 1.0 - eps
    m = logits.max(axis=1, keepdims=True)
    lse = m + np.log(np.sum(np.exp(logits - m), axis=1, keepdims=True))
    log_p = logits - lse
    probs = np.exp(log_p)
    loss = -np.sum(target * log_p, axis=1).mean()
    return float(loss), [probs, target]


def cross_entropy_backward(cache, dloss=1.0):
    probs, target = cache
    grad = probs - target
    grad *= dloss / probs.shape[0]
    return grad
