"""Horizontal-flip test-time augmentation (TTA): predict from an image and its mirror image.

A model trained with random horizontal flips has learned that a mirrored cat is a cat, but its
predictions for the two views still differ a little; averaging them cancels part of that noise.
It costs a second forward pass per image at evaluation and nothing in training.

What is averaged: the **softmax probabilities** of the two views (not the logits),

    p_tta(x) = (softmax(f(x)) + softmax(f(flip(x)))) / 2,   prediction = argmax p_tta

so each view contributes a proper distribution whatever the scale of its logits, and the loss
of the TTA prediction is the cross-entropy of p_tta. flip mirrors the width axis of the
channels-last batch (B, H, W, C): x[:, :, ::-1].

:func:`evaluate_tta` reports both, from the same forward passes: the plain accuracy and loss
(the first view alone, what ``minivit.train.trainer.evaluate`` gives) and the TTA ones.
"""
from __future__ import annotations

from minivit.backend import get_array_module
from minivit.ops import F
from minivit.train.data import eval_batches


def hflip(x):
    """Mirror a channels-last batch left-right: (B, H, W, C) -> (B, H, W, C), a contiguous copy."""
    xp = get_array_module(x)
    return xp.ascontiguousarray(x[:, :, ::-1])


def tta_average(logits, logits_flip):
    """The TTA probabilities (B, K): the mean of the two views' softmax."""
    return 0.5 * (F.softmax_forward(logits)[0] + F.softmax_forward(logits_flip)[0])


def flip_tta_probs(forward, x):
    """(p_tta, p_plain): the averaged softmax of x and hflip(x), and x's own softmax; each (B, K).

    forward: images (B, H, W, C) -> logits (B, K) (a model in eval mode, or a parallel forward)."""
    logits = forward(x)
    return tta_average(logits, forward(hflip(x))), F.softmax_forward(logits)[0]


def evaluate_tta(model, x_uint8, y, aug, num_classes, batch_size=500, batch_transform=None, forward=None):
    """Accuracy and loss with and without flip TTA (eval mode, no other augmentation).

    x_uint8: (N, H, W, C) uint8 test images   y: (N,) int labels   aug: the run's AugmentConfig
    (for its normalization)   forward: optional replacement for ``model.forward``.
    returns: dict(acc, loss, acc_tta, loss_tta, preds, preds_tta): acc and loss (the mean
    cross-entropy of the first view's logits) exactly as ``minivit.train.trainer.evaluate`` computes them,
    loss_tta the mean cross-entropy of the averaged probabilities.
    """
    forward = forward or model.forward
    xp = get_array_module(x_uint8)
    was_training = model.training
    model.eval()
    n = len(x_uint8)
    loss = loss_tta = 0.0
    preds, preds_tta = [], []
    try:
        for xb, yb in eval_batches(x_uint8, y, aug, num_classes, batch_size, batch_transform):
            logits = forward(xb)
            p_tta = tta_average(logits, forward(hflip(xb)))
            batch_loss, _ = F.cross_entropy_forward(logits, yb)
            loss = loss + batch_loss * len(xb)                 # as train.evaluate sums it
            tiny = xp.finfo(p_tta.dtype).tiny                 # log(0) would be -inf
            loss_tta = loss_tta - xp.log(xp.maximum(p_tta[xp.arange(len(yb)), yb], tiny)).sum()
            preds.append(xp.argmax(logits, axis=1))
            preds_tta.append(xp.argmax(p_tta, axis=1))
    finally:
        model.train(was_training)
    preds, preds_tta = xp.concatenate(preds), xp.concatenate(preds_tta)
    return dict(acc=float((preds == y).mean()), loss=float(loss) / n, acc_tta=float((preds_tta == y).mean()),
                loss_tta=float(loss_tta) / n, preds=preds, preds_tta=preds_tta)
