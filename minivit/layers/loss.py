"""Softmax cross-entropy, with optional label smoothing (Szegedy et al. 2016).

For logits s (B, K) and targets t (B, K) (one-hot, smoothed, or mixed soft labels):

    loss = -(1/B) sum_b sum_k t_bk log softmax(s_b)_k
    dloss/ds = (softmax(s) - t) / B

Label smoothing eps replaces the one-hot target by (1 - eps) * onehot + eps / K.
"""
import numpy as np

from minivit.backend import get_array_module


def cross_entropy_forward(logits, labels, label_smoothing=0.0):
    """logits: (B, K) float; labels: int (B,) class indices, or float (B, K) soft targets.

    loss = -(1/B) sum_b sum_k t_bk log softmax(logits_b)_k, with t the one-hot rows of the labels
    (or the soft targets themselves); label smoothing eps replaces t by (1 - eps) * t + eps / K.
    Logits as large as 1e4 must give a finite loss.
    returns: loss (a Python float), cache

    Keeps working for labels of any integer dtype; does not modify its inputs; float32 logits give a
    float32-accurate loss.

    Derivation:
        Stable log-softmax: log_p = s - max(s) - log(sum(exp(s - max(s)))) (rows, keepdims=True);
        never log(softmax(s)), which gives log(0) = -inf for very negative scores.
    """
    xp = get_array_module(logits)
    if logits.ndim != 2:
        raise ValueError(f"logits must have shape (B, K), got {tuple(logits.shape)}")
    if not 0.0 <= label_smoothing < 1.0:
        raise ValueError(f"label_smoothing must be in [0, 1), got {label_smoothing}")
    B, K = logits.shape
    if labels.ndim == 1:
        if labels.shape[0] != B:
            raise ValueError(f"got {labels.shape[0]} labels for {B} logits")
        if xp.issubdtype(labels.dtype, xp.floating):
            raise TypeError("class-index labels must be integers; pass soft targets as a (B, K) array")
        # On a GPU, reading labels.min() would make the host wait for the GPU: there the caller checks
        # the labels once (the trainer does when it loads the data), and the loss stays a 0-d device array.
        if B and xp is np and (int(labels.min()) < 0 or int(labels.max()) >= K):
            raise ValueError(f"class labels must be in [0, {K - 1}] for {K} logits, got values from "
                             f"{int(labels.min())} to {int(labels.max())}")
        target = xp.zeros((B, K), dtype=logits.dtype)
        target[xp.arange(B), labels] = 1.0
    elif labels.shape == (B, K):
        target = labels.astype(logits.dtype, copy=True)
    else:
        raise ValueError(f"labels must be (B,) integers or (B, K) soft targets for logits {tuple(logits.shape)}, "
                         f"got {tuple(labels.shape)}")
    if label_smoothing:
        target *= 1.0 - label_smoothing
        target += label_smoothing / K
    # log softmax, stably: s - max - log(sum(exp(s - max)))
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_probs = shifted - xp.log(xp.exp(shifted).sum(axis=1, keepdims=True))
    loss = -(target * log_probs).sum() / B
    return (float(loss) if xp is np else loss), (log_probs, target)


def cross_entropy_backward(cache, dloss=1.0):
    """cache: from cross_entropy_forward; dloss: the gradient with respect to the loss (1.0: the loss itself).

    returns: dlogits (B, K), the gradient with respect to the logits, with the logits' dtype.

    Everything it needs comes from the cache; dloss is a number.

    Derivation:
        dlogits = dloss * (softmax(logits) - target) / B, with softmax(logits) = exp(log_p).
    """
    log_probs, target = cache
    xp = get_array_module(log_probs)
    B = log_probs.shape[0]
    dlogits = xp.exp(log_probs)
    dlogits -= target
    dlogits *= dloss / B
    return dlogits
