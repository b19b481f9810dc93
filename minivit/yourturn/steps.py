"""The scaffold steps of the notebooks' "Your turn" cells: fixed small inputs and reference values.

``INPUTS[topic]()`` builds a scaffold's input (seeded, float64, small enough to print);
``STEPS[name]()`` is the reference value of step ``name`` for that input, which
``minivit.yourturn.checks.check`` compares with the learner's. The values come from minivit's own
functions where the step is one of their results, and are written out here where it is an
intermediate inside them (this file is the solution side, like the ``Derivation:`` parts).
tests/test_yourturn.py checks that the intermediates add up to minivit's results.
"""
from __future__ import annotations

import numpy as np

from minivit import layers as L
from minivit.optim import adamw_update, warmup_cosine


def _rng(seed):
    return np.random.default_rng(seed)


def _patch():          # x (2, 4, 4, 3), P = 2, dpatches (2, 4, 12)
    r = _rng(1)
    return r.standard_normal((2, 4, 4, 3)), 2, r.standard_normal((2, 4, 12))


def _linear():         # X (2, 3, 4), W (4, 5), b (5,), G (2, 3, 5)
    r = _rng(2)
    return r.standard_normal((2, 3, 4)), r.standard_normal((4, 5)), r.standard_normal(5), r.standard_normal((2, 3, 5))


def _tokens():         # x (2, 3, 4) patch tokens, cls (1, 1, 4), pos (1, 4, 4), dout (2, 4, 4)
    r = _rng(3)
    return (r.standard_normal((2, 3, 4)), r.standard_normal((1, 1, 4)), r.standard_normal((1, 4, 4)),
            r.standard_normal((2, 4, 4)))


def _softmax():        # x (2, 5) scores, g (2, 5) = dL/ds
    r = _rng(4)
    return r.standard_normal((2, 5)), r.standard_normal((2, 5))


def _attention():      # q, k, v (2, 4, 3), G (2, 4, 3) = dL/dO
    r = _rng(5)
    return tuple(r.standard_normal((2, 4, 3)) for _ in range(4))


def _heads():          # z (2, 3, 6), h = 2, dheads (2, 2, 3, 3), dmerged (2, 3, 6)
    r = _rng(6)
    return r.standard_normal((2, 3, 6)), 2, r.standard_normal((2, 2, 3, 3)), r.standard_normal((2, 3, 6))


def _mhsa():           # x (2, 3, 4), w_qkv (4, 12), b_qkv (12,), w_out (4, 4), b_out (4,), h = 2, G (2, 3, 4)
    r = _rng(7)
    return (r.standard_normal((2, 3, 4)), r.standard_normal((4, 12)) / 2, r.standard_normal(12),
            r.standard_normal((4, 4)) / 2, r.standard_normal(4), 2, r.standard_normal((2, 3, 4)))


def _layernorm():      # x (2, 3, 5), gamma (5,), beta (5,), dy (2, 3, 5); eps 1e-6
    r = _rng(8)
    return 1 + 2 * r.standard_normal((2, 3, 5)), 1 + 0.5 * r.standard_normal(5), r.standard_normal(5), r.standard_normal((2, 3, 5))


def _gelu():           # x (2, 5), dout (2, 5)
    r = _rng(9)
    return 2 * r.standard_normal((2, 5)), r.standard_normal((2, 5))


def _mlp():            # x (2, 3, 4), w1 (4, 6), b1 (6,), w2 (6, 4), b2 (4,), G (2, 3, 4)
    r = _rng(10)
    return (r.standard_normal((2, 3, 4)), r.standard_normal((4, 6)) / 2, r.standard_normal(6),
            r.standard_normal((6, 4)) / 2, r.standard_normal(4), r.standard_normal((2, 3, 4)))


def _block():          # x (2, 3, 4), p (a block's parameters, D 4, MLP 8), h = 2, dout (2, 3, 4)
    r = _rng(11)
    D, M = 4, 8
    shapes = {"ln1_gamma": (D,), "ln1_beta": (D,), "w_qkv": (D, 3 * D), "b_qkv": (3 * D,), "w_out": (D, D),
              "b_out": (D,), "ln2_gamma": (D,), "ln2_beta": (D,), "w1": (D, M), "b1": (M,), "w2": (M, D), "b2": (D,)}
    p = {n: (1.0 if "gamma" in n else 0.0) + 0.5 * r.standard_normal(s) for n, s in shapes.items()}
    return r.standard_normal((2, 3, D)), p, 2, r.standard_normal((2, 3, D))


def _loss():           # logits (4, 5), labels (4,), label smoothing 0.1
    r = _rng(12)
    return 2 * r.standard_normal((4, 5)), np.array([0, 3, 1, 3]), 0.1


def _adamw():          # w, g, m, v (3,), t = 3, lr 0.1, weight decay 0.05 (betas 0.9, 0.999, eps 1e-8)
    r = _rng(13)
    return r.standard_normal(3), r.standard_normal(3), 0.1 * r.standard_normal(3), 0.1 * r.random(3), 3, 0.1, 0.05


def _schedule():       # 10 steps, base lr 1.0, 3 warmup steps, min lr 0.1
    return 10, 1.0, 3, 0.1


INPUTS = {"patch": _patch, "linear": _linear, "tokens": _tokens, "softmax": _softmax, "attention": _attention,
          "heads": _heads, "mhsa": _mhsa, "layernorm": _layernorm, "gelu": _gelu, "mlp": _mlp, "block": _block,
          "loss": _loss, "adamw": _adamw, "schedule": _schedule}


# ------------------------------------------------------------------ reference values of the steps
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


def _attention_parts():
    q, k, v, G = _attention()
    S = q @ k.swapaxes(-1, -2) / np.sqrt(q.shape[-1])
    A = L.softmax_forward(S)[0]
    dA = G @ v.swapaxes(-1, -2)
    dS = A * (dA - (dA * A).sum(-1, keepdims=True))
    dq, dk, dv = L.attention_backward(G, L.attention_forward(q, k, v)[1])
    return {"S": S, "A": A, "dA": dA, "dv": dv, "dS": dS, "dq": dq, "dk": dk}


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


def _mhsa_parts():
    x, w_qkv, b_qkv, w_out, b_out, h, G = _mhsa()
    out, (qkv_cache, attn_cache, out_cache, _) = L.mhsa_forward(x, w_qkv, b_qkv, w_out, b_out, h)
    dmerged = G @ w_out.T
    dq, dk, dv = L.attention_backward(L.merge_heads_backward(dmerged, h), attn_cache)
    B, _, T, d = dq.shape
    dqkv = np.stack([dq, dk, dv]).transpose(1, 3, 0, 2, 4).reshape(B, T, 3 * h * d)
    dx = L.mhsa_backward(G, L.mhsa_forward(x, w_qkv, b_qkv, w_out, b_out, h)[1])[0]
    return {"mhsa_dmerged": dmerged, "mhsa_dqkv": dqkv, "mhsa_dx": dx}


def _block_parts():
    x, p, h, dout = _block()
    z1 = x + L.mhsa_forward(L.layernorm_forward(x, p["ln1_gamma"], p["ln1_beta"])[0],
                            p["w_qkv"], p["b_qkv"], p["w_out"], p["b_out"], h)[0]
    ln2_out, ln2 = L.layernorm_forward(z1, p["ln2_gamma"], p["ln2_beta"])
    dm = L.mlp_backward(dout, L.mlp_forward(ln2_out, p["w1"], p["b1"], p["w2"], p["b2"])[1])[0]
    dz1 = dout + L.layernorm_backward(dm, ln2)[0]
    dx = L.encoder_block_backward(dout, L.encoder_block_forward(x, p, h)[1])[0]
    return {"block_z1": z1, "block_dz1": dz1, "block_dx": dx}


def _loss_parts():
    logits, labels, eps = _loss()
    B, K = logits.shape
    target = (1 - eps) * np.eye(K)[labels] + eps / K
    shifted = logits - logits.max(1, keepdims=True)
    logp = shifted - np.log(np.exp(shifted).sum(1, keepdims=True))
    loss, cache = L.cross_entropy_forward(logits, labels, eps)
    return {"ce_target": target, "ce_logp": logp, "ce_loss": loss, "ce_dlogits": L.cross_entropy_backward(cache)}


def _adamw_parts():
    w, g, m, v, t, lr, wd = _adamw()
    m1, v1 = 0.9 * m + 0.1 * g, 0.999 * v + 0.001 * g * g
    w1, m2, v2 = w.copy(), m.copy(), v.copy()
    adamw_update(w1, g, m2, v2, t, lr, weight_decay=wd)
    return {"adam_m": m1, "adam_v": v1, "adam_mhat": m1 / (1 - 0.9 ** t), "adam_vhat": v1 / (1 - 0.999 ** t),
            "adam_w": w1}


def _part(group, name):
    return lambda: group()[name]


STEPS = {
    "patch_out": lambda: L.patchify_forward(_patch()[0], _patch()[1])[0],
    "patch_dx": lambda: L.patchify_backward(_patch()[2], L.patchify_forward(_patch()[0], _patch()[1])[1]),
    "linear_y": lambda: L.linear_forward(*_linear()[:3])[0],
    **{f"linear_{n}": (lambda i: lambda: L.linear_backward(_linear()[3], L.linear_forward(*_linear()[:3])[1])[i])(i)
       for i, n in enumerate(("dx", "dw", "db"))},
    "tokens_z": lambda: L.cls_token_forward(_tokens()[0], _tokens()[1])[0],
    "dcls": lambda: L.cls_token_backward(_tokens()[3], L.cls_token_forward(*_tokens()[:2])[1])[1],
    "tokens_dx": lambda: L.cls_token_backward(_tokens()[3], L.cls_token_forward(*_tokens()[:2])[1])[0],
    "dpos": lambda: L.pos_embed_backward(_tokens()[3], L.pos_embed_forward(_tokens()[3], _tokens()[2])[1])[1],
    "s": lambda: L.softmax_forward(_softmax()[0])[0],
    "gs": lambda: (_softmax()[1] * L.softmax_forward(_softmax()[0])[0]).sum(-1, keepdims=True),
    "softmax_dx": lambda: L.softmax_backward(_softmax()[1], L.softmax_forward(_softmax()[0])[1]),
    "heads": lambda: L.split_heads(_heads()[0], _heads()[1]),
    "split_dx": lambda: L.split_heads_backward(_heads()[2]),
    "merge_dx": lambda: L.merge_heads_backward(_heads()[3], _heads()[1]),
    "lrs": lambda: np.array([warmup_cosine(s, *_schedule()) for s in range(_schedule()[0] + 2)]),
}
for _group, _names in ((_layernorm_parts, ("xhat", "dgamma", "dbeta", "dxhat", "dx_direct", "dx_mean", "dx_var", "dx")),
                       (_attention_parts, ("S", "A", "dA", "dv", "dS", "dq", "dk")),
                       (_gelu_parts, ("gelu_u", "gelu_t", "gelu_local", "gelu_dx")),
                       (_mlp_parts, ("mlp_h", "mlp_dw2", "mlp_da", "mlp_dh", "mlp_dx")),
                       (_mhsa_parts, ("mhsa_dmerged", "mhsa_dqkv", "mhsa_dx")),
                       (_block_parts, ("block_z1", "block_dz1", "block_dx")),
                       (_loss_parts, ("ce_target", "ce_logp", "ce_loss", "ce_dlogits")),
                       (_adamw_parts, ("adam_m", "adam_v", "adam_mhat", "adam_vhat", "adam_w"))):
    for _name in _names:
        STEPS[_name] = _part(_group, _name)
