"""The cross-entropy's wrong variants (topic `loss`): wrong targets and losses for the forward,
wrong dlogits for the backward, and the reference dlogits' separate terms.

Shapes: logits (B, K); labels int (B,) or soft (B, K); the loss a float; dlogits (B, K).
"""
import numpy as np

from minivit.grading.common import _softmax


# -- cross-entropy --------------------------------------------------------------------------------------
def ce_target(logits, labels, eps, kind="ok"):
    """The (B, K) float64 target for logits (B, K), labels (B,) int or (B, K) soft, smoothing eps,
    the right way (kind "ok") or one of the wrong ones."""
    B, K = logits.shape
    if labels.ndim == 1 or kind == "soft_argmax":
        idx = labels if labels.ndim == 1 else labels.argmax(axis=1)
        t = np.zeros((B, K))
        t[np.arange(B), idx] = 1.0
    else:
        t = labels.astype(np.float64).copy()
    if kind == "no_smoothing" or not eps or (kind == "soft_no_smoothing" and labels.ndim == 2):
        return t
    if kind == "k_minus_1":
        return t * (1 - eps) + (1 - t) * eps / (K - 1)
    if kind == "no_uniform":
        return t * (1 - eps)
    return t * (1 - eps) + eps / K


TARGET_KINDS = ("no_smoothing", "k_minus_1", "no_uniform", "soft_no_smoothing", "soft_argmax")


def loss_variant(kind):
    """A wrong cross_entropy_forward: (logits, labels, eps) -> the loss (a float)."""
    def f(logits, labels, eps=0.0):
        B, K = logits.shape
        t = ce_target(logits, labels, eps, kind if kind in TARGET_KINDS else "ok")
        logp = logits - logits.max(axis=1, keepdims=True)
        logp = logp - np.log(np.exp(logp).sum(axis=1, keepdims=True))
        loss = -(t * logp).sum()
        return {"sum": loss, "mean_all": loss / (B * K), "sign": -loss / B,
                "no_log": -(t * np.exp(logp)).sum() / B}.get(kind, loss / B)
    return f


LOSS_FWD_MISTAKES = (("label_smoothing_missing", loss_variant("no_smoothing")),
                     ("label_smoothing_k_minus_1", loss_variant("k_minus_1")),
                     ("label_smoothing_no_uniform", loss_variant("no_uniform")),
                     ("label_smoothing_soft_targets", loss_variant("soft_no_smoothing")),
                     ("soft_targets_ignored", loss_variant("soft_argmax")),
                     ("loss_not_averaged", loss_variant("sum")),
                     ("loss_mean_over_classes", loss_variant("mean_all")),
                     ("loss_sign", loss_variant("sign")),
                     ("missing_log", loss_variant("no_log")))


def dlogits_variants(args, dloss):
    """[(mistake key, wrong dlogits (B, K))] for one input of the backward check."""
    logits, labels = args[0], args[1]
    eps = args[2] if len(args) > 2 else 0.0
    B = logits.shape[0]
    p = _softmax(logits, 1)
    logp = np.log(p)
    t = ce_target(logits, labels, eps)
    out = [("dlogits_not_averaged", dloss * (p - t)),
           ("dlogits_sign", dloss * (t - p) / B),
           ("dloss_ignored", (p - t) / B),
           ("dlogits_no_softmax", dloss * (logits - t) / B),
           ("dlogits_no_softmax", dloss * (logp - t) / B)]
    for key, kind in (("label_smoothing_missing", "no_smoothing"), ("label_smoothing_k_minus_1", "k_minus_1"),
                      ("label_smoothing_no_uniform", "no_uniform"),
                      ("label_smoothing_soft_targets", "soft_no_smoothing"), ("soft_targets_ignored", "soft_argmax")):
        out.append((key, dloss * (p - ce_target(logits, labels, eps, kind)) / B))
    return out


def dlogits_terms(args, dloss):
    """The reference dlogits' separate terms [(name, (B, K) array)] and their coefficients (dloss each):
    softmax(s)/B, minus the (1 - eps)-scaled labels / B, minus the uniform eps/K / B."""
    logits, labels = args[0], args[1]
    eps = args[2] if len(args) > 2 else 0.0
    B, K = logits.shape
    base = ce_target(logits, labels, 0.0)
    terms = [("through the probabilities", _softmax(logits, 1) / B), ("through the labels", -(1 - eps) * base / B)]
    if eps:
        terms.append(("through the uniform smoothing", np.full((B, K), -eps / K / B)))
    return terms, [dloss] * len(terms)
