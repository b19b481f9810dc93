"""Topic `patch`: its notebook's scaffold steps, the small fixed inputs (``INPUTS``) and each
step's reference value (``STEPS``), as ``minivit/yourturn/steps.py`` describes. Intermediates inside
minivit's functions are written out here: this is the solution side."""
import numpy as np

from minivit import layers as L


def _patch():          # x (2, 4, 4, 3), P = 2, dpatches (2, 4, 12)
    r = np.random.default_rng(1)
    return r.standard_normal((2, 4, 4, 3)), 2, r.standard_normal((2, 4, 12))


def _linear():         # X (2, 3, 4), W (4, 5), b (5,), G (2, 3, 5)
    r = np.random.default_rng(2)
    return r.standard_normal((2, 3, 4)), r.standard_normal((4, 5)), r.standard_normal(5), r.standard_normal((2, 3, 5))


INPUTS = {"patch": _patch, "linear": _linear}


STEPS = {
    "patch_out": lambda: L.patchify_forward(_patch()[0], _patch()[1])[0],
    "patch_dx": lambda: L.patchify_backward(_patch()[2], L.patchify_forward(_patch()[0], _patch()[1])[1]),
    "linear_y": lambda: L.linear_forward(*_linear()[:3])[0],
    **{f"linear_{n}": (lambda i: lambda: L.linear_backward(_linear()[3], L.linear_forward(*_linear()[:3])[1])[i])(i)
       for i, n in enumerate(("dx", "dw", "db"))},
}
