"""Topic `attention`: its notebook's scaffold steps, the small fixed inputs (``INPUTS``) and each
step's reference value (``STEPS``), as ``minivit/yourturn/steps.py`` describes. Intermediates inside
minivit's functions are written out here: this is the solution side."""
import numpy as np

from minivit import layers as L


def _softmax():        # x (2, 5) scores, g (2, 5) = dL/ds
    r = np.random.default_rng(4)
    return r.standard_normal((2, 5)), r.standard_normal((2, 5))


def _attention():      # q, k, v (2, 4, 3), G (2, 4, 3) = dL/dO
    r = np.random.default_rng(5)
    return tuple(r.standard_normal((2, 4, 3)) for _ in range(4))


INPUTS = {"softmax": _softmax, "attention": _attention}


def _attention_parts():
    q, k, v, G = _attention()
    S = q @ k.swapaxes(-1, -2) / np.sqrt(q.shape[-1])
    A = L.softmax_forward(S)[0]
    dA = G @ v.swapaxes(-1, -2)
    dS = A * (dA - (dA * A).sum(-1, keepdims=True))
    dq, dk, dv = L.attention_backward(G, L.attention_forward(q, k, v)[1])
    return {"S": S, "A": A, "dA": dA, "dv": dv, "dS": dS, "dq": dq, "dk": dk}


STEPS = {
    "s": lambda: L.softmax_forward(_softmax()[0])[0],
    "gs": lambda: (_softmax()[1] * L.softmax_forward(_softmax()[0])[0]).sum(-1, keepdims=True),
    "softmax_dx": lambda: L.softmax_backward(_softmax()[1], L.softmax_forward(_softmax()[0])[1]),
    **{name: (lambda name=name: _attention_parts()[name])
       for name in ("S", "A", "dA", "dv", "dS", "dq", "dk")},
}
