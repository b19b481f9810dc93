"""Topic `multihead`: its notebook's scaffold steps, the small fixed inputs (``INPUTS``) and each
step's reference value (``STEPS``), as ``minivit/yourturn/steps.py`` describes. Intermediates inside
minivit's functions are written out here: this is the solution side."""
import numpy as np

from minivit import layers as L


def _heads():          # z (2, 3, 6), h = 2, dheads (2, 2, 3, 3), dmerged (2, 3, 6)
    r = np.random.default_rng(6)
    return r.standard_normal((2, 3, 6)), 2, r.standard_normal((2, 2, 3, 3)), r.standard_normal((2, 3, 6))


def _mhsa():           # x (2, 3, 4), w_qkv (4, 12), b_qkv (12,), w_out (4, 4), b_out (4,), h = 2, G (2, 3, 4)
    r = np.random.default_rng(7)
    return (r.standard_normal((2, 3, 4)), r.standard_normal((4, 12)) / 2, r.standard_normal(12),
            r.standard_normal((4, 4)) / 2, r.standard_normal(4), 2, r.standard_normal((2, 3, 4)))


INPUTS = {"heads": _heads, "mhsa": _mhsa}


def _mhsa_parts():
    x, w_qkv, b_qkv, w_out, b_out, h, G = _mhsa()
    out, (qkv_cache, attn_cache, out_cache, _) = L.mhsa_forward(x, w_qkv, b_qkv, w_out, b_out, h)
    dmerged = G @ w_out.T
    dq, dk, dv = L.attention_backward(L.merge_heads_backward(dmerged, h), attn_cache)
    B, _, T, d = dq.shape
    dqkv = np.stack([dq, dk, dv]).transpose(1, 3, 0, 2, 4).reshape(B, T, 3 * h * d)
    dx = L.mhsa_backward(G, L.mhsa_forward(x, w_qkv, b_qkv, w_out, b_out, h)[1])[0]
    return {"mhsa_dmerged": dmerged, "mhsa_dqkv": dqkv, "mhsa_dx": dx}


STEPS = {
    "heads": lambda: L.split_heads(_heads()[0], _heads()[1]),
    "split_dx": lambda: L.split_heads_backward(_heads()[2]),
    "merge_dx": lambda: L.merge_heads_backward(_heads()[3], _heads()[1]),
    **{name: (lambda name=name: _mhsa_parts()[name]) for name in ("mhsa_dmerged", "mhsa_dqkv", "mhsa_dx")},
}
