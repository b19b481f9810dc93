"""Topic `block`: its notebook's scaffold steps, the small fixed inputs (``INPUTS``) and each
step's reference value (``STEPS``), as ``minivit/yourturn/steps.py`` describes. Intermediates inside
minivit's functions are written out here: this is the solution side."""
import numpy as np

from minivit import layers as L


def _block():          # x (2, 3, 4), p (a block's parameters, D 4, MLP 8), h = 2, dout (2, 3, 4)
    r = np.random.default_rng(11)
    D, M = 4, 8
    shapes = {"ln1_gamma": (D,), "ln1_beta": (D,), "w_qkv": (D, 3 * D), "b_qkv": (3 * D,), "w_out": (D, D),
              "b_out": (D,), "ln2_gamma": (D,), "ln2_beta": (D,), "w1": (D, M), "b1": (M,), "w2": (M, D), "b2": (D,)}
    p = {n: (1.0 if "gamma" in n else 0.0) + 0.5 * r.standard_normal(s) for n, s in shapes.items()}
    return r.standard_normal((2, 3, D)), p, 2, r.standard_normal((2, 3, D))


INPUTS = {"block": _block}


def _block_parts():
    x, p, h, dout = _block()
    z1 = x + L.mhsa_forward(L.layernorm_forward(x, p["ln1_gamma"], p["ln1_beta"])[0],
                            p["w_qkv"], p["b_qkv"], p["w_out"], p["b_out"], h)[0]
    ln2_out, ln2 = L.layernorm_forward(z1, p["ln2_gamma"], p["ln2_beta"])
    dm = L.mlp_backward(dout, L.mlp_forward(ln2_out, p["w1"], p["b1"], p["w2"], p["b2"])[1])[0]
    dz1 = dout + L.layernorm_backward(dm, ln2)[0]
    dx = L.encoder_block_backward(dout, L.encoder_block_forward(x, p, h)[1])[0]
    return {"block_z1": z1, "block_dz1": dz1, "block_dx": dx}


STEPS = {     # an intermediate: one entry of its group's dict (name=name keeps each lambda's own name)
    **{name: (lambda name=name: _block_parts()[name]) for name in ("block_z1", "block_dz1", "block_dx")},
}
