"""Topic `mlp`: its notebook's scaffold steps, the small fixed inputs (``INPUTS``) and each
step's reference value (``STEPS``), as ``minivit/yourturn/steps.py`` describes. Intermediates inside
minivit's functions are written out here: this is the solution side."""
import numpy as np

from minivit import layers as L


def _gelu():           # x (2, 5), dout (2, 5)
    r = np.random.default_rng(9)
    return 2 * r.standard_normal((2, 5)), r.standard_normal((2, 5))


def _mlp():            # x (2, 3, 4), w1 (4, 6), b1 (6,), w2 (6, 4), b2 (4,), G (2, 3, 4)
    r = np.random.default_rng(10)
    return (r.standard_normal((2, 3, 4)), r.standard_normal((4, 6)) / 2, r.standard_normal(6),
            r.standard_normal((6, 4)) / 2, r.standard_normal(4), r.standard_normal((2, 3, 4)))


INPUTS = {"gelu": _gelu, "mlp": _mlp}


def _gelu_parts():
    x, dout = _gelu()
    c = np.sqrt(2 / np.pi)
    u = c * (x + 0.044715 * x ** 3)
    t = np.tanh(u)
    local = 0.5 * (1 + t) + 0.5 * x * (1 - t ** 2) * c * (1 + 3 * 0.044715 * x ** 2)
    return {"gelu_u": u, "gelu_t": t, "gelu_local": local,
            "gelu_dx": L.gelu_backward(dout, L.gelu_forward(x)[1])}


def _mlp_parts():
    x, w1, b1, w2, b2, G = _mlp()
    h = x @ w1 + b1
    da = G @ w2.T
    dh = L.gelu_backward(da, L.gelu_forward(h)[1])
    dx = L.mlp_backward(G, L.mlp_forward(x, w1, b1, w2, b2)[1])[0]
    return {"mlp_h": h, "mlp_dw2": np.einsum("bti,btj->ij", L.gelu_forward(h)[0], G), "mlp_da": da,
            "mlp_dh": dh, "mlp_dx": dx}


STEPS = {     # an intermediate: one entry of its group's dict (name=name keeps each lambda's own name)
    **{name: (lambda name=name: _gelu_parts()[name])
       for name in ("gelu_u", "gelu_t", "gelu_local", "gelu_dx")},
    **{name: (lambda name=name: _mlp_parts()[name])
       for name in ("mlp_h", "mlp_dw2", "mlp_da", "mlp_dh", "mlp_dx")},
}
