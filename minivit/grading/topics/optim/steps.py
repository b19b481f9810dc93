"""Topic `optim`: its notebook's scaffold steps, the small fixed inputs (``INPUTS``) and each
step's reference value (``STEPS``), as ``minivit/yourturn/steps.py`` describes. Intermediates inside
minivit's functions are written out here: this is the solution side."""
import numpy as np

from minivit.optim import adamw_update, warmup_cosine


def _adamw():          # w, g, m, v (3,), t = 3, lr 0.1, weight decay 0.05 (betas 0.9, 0.999, eps 1e-8)
    r = np.random.default_rng(13)
    return r.standard_normal(3), r.standard_normal(3), 0.1 * r.standard_normal(3), 0.1 * r.random(3), 3, 0.1, 0.05


def _schedule():       # 10 steps, base lr 1.0, 3 warmup steps, min lr 0.1
    return 10, 1.0, 3, 0.1


INPUTS = {"adamw": _adamw, "schedule": _schedule}


def _adamw_parts():
    w, g, m, v, t, lr, wd = _adamw()
    m1, v1 = 0.9 * m + 0.1 * g, 0.999 * v + 0.001 * g * g
    w1, m2, v2 = w.copy(), m.copy(), v.copy()
    adamw_update(w1, g, m2, v2, t, lr, weight_decay=wd)
    return {"adam_m": m1, "adam_v": v1, "adam_mhat": m1 / (1 - 0.9 ** t), "adam_vhat": v1 / (1 - 0.999 ** t),
            "adam_w": w1}


STEPS = {
    "lrs": lambda: np.array([warmup_cosine(s, *_schedule()) for s in range(_schedule()[0] + 2)]),
    **{name: (lambda name=name: _adamw_parts()[name])
       for name in ("adam_m", "adam_v", "adam_mhat", "adam_vhat", "adam_w")},
}
