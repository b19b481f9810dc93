"""Topic `loss`: its notebook's scaffold steps, the small fixed inputs (``INPUTS``) and each
step's reference value (``STEPS``), as ``minivit/yourturn/steps.py`` describes. Intermediates inside
minivit's functions are written out here: this is the solution side."""
import numpy as np

from minivit import layers as L


def _loss():           # logits (4, 5), labels (4,), label smoothing 0.1
    r = np.random.default_rng(12)
    return 2 * r.standard_normal((4, 5)), np.array([0, 3, 1, 3]), 0.1


INPUTS = {"loss": _loss}


def _loss_parts():
    logits, labels, eps = _loss()
    B, K = logits.shape
    target = (1 - eps) * np.eye(K)[labels] + eps / K
    shifted = logits - logits.max(1, keepdims=True)
    logp = shifted - np.log(np.exp(shifted).sum(1, keepdims=True))
    loss, cache = L.cross_entropy_forward(logits, labels, eps)
    return {"ce_target": target, "ce_logp": logp, "ce_loss": loss, "ce_dlogits": L.cross_entropy_backward(cache)}


STEPS = {     # an intermediate: one entry of its group's dict (name=name keeps each lambda's own name)
    **{name: (lambda name=name: _loss_parts()[name])
       for name in ("ce_target", "ce_logp", "ce_loss", "ce_dlogits")},
}
