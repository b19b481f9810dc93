"""Topic `layernorm`: its notebook's scaffold steps, the small fixed inputs (``INPUTS``) and each
step's reference value (``STEPS``), as ``minivit/yourturn/steps.py`` describes. Intermediates inside
minivit's functions are written out here: this is the solution side."""
import numpy as np

from minivit import layers as L


def _layernorm():      # x (2, 3, 5), gamma (5,), beta (5,), dy (2, 3, 5); eps 1e-6
    r = np.random.default_rng(8)
    return (1 + 2 * r.standard_normal((2, 3, 5)), 1 + 0.5 * r.standard_normal(5), r.standard_normal(5),
            r.standard_normal((2, 3, 5)))


INPUTS = {"layernorm": _layernorm}


def _layernorm_parts():
    x, gamma, beta, dy = _layernorm()
    mu = x.mean(-1, keepdims=True)
    rstd = 1 / np.sqrt(x.var(-1, keepdims=True) + 1e-6)
    xhat = (x - mu) * rstd
    g = dy * gamma
    return {"xhat": xhat, "dgamma": (dy * xhat).sum((0, 1)), "dbeta": dy.sum((0, 1)), "dxhat": g,
            "dx_direct": rstd * g, "dx_mean": -rstd * g.mean(-1, keepdims=True),
            "dx_var": -rstd * xhat * (g * xhat).mean(-1, keepdims=True),
            "dx": L.layernorm_backward(dy, L.layernorm_forward(x, gamma, beta)[1])[0]}


STEPS = {     # an intermediate: one entry of its group's dict (name=name keeps each lambda's own name)
    **{name: (lambda name=name: _layernorm_parts()[name])
       for name in ("xhat", "dgamma", "dbeta", "dxhat", "dx_direct", "dx_mean", "dx_var", "dx")},
}
