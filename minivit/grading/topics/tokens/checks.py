"""Grading topic `tokens`: The class token and position embeddings: its checks, wrong variants and
mistake messages."""

import numpy as np

from minivit.grading.common import MISTAKES, _rng
from minivit.grading.topics.parts import PartsPair, describe_fit, fit_terms

MISTAKES.update({
    "cls_appended": "The class token goes first (position 0 of every sequence), not last.",
    "cls_overwrites": "The class token must be prepended as an extra token (the output has N+1 tokens), not "
                      "written over the first patch.",
    "cls_dx_keeps_token": "dx must drop position 0, the class token's slot: the input x had N tokens, not N+1.",
    "cls_dx_wrong_slice": "dx takes the wrong N positions: the patches sit at positions 1..N of the output.",
    "param_grad_shape": "The parameter's gradient must have the parameter's own shape (keepdims=True keeps the "
                        "leading axis of size 1).",
    "cls_grad_all_tokens": "dcls collects the gradient of every position: the class token sits only at position 0 of "
                           "each sequence; positions 1..N belong to the patches (dx).",
    "pos_grad_summed_over_tokens": "dpos is summed over the tokens too: each position t has its own embedding pos[0, "
                                   "t], shared only across the batch, so dpos keeps one row per position, shape (1, T,"
                                   " D).",
})


# -- tokens -----------------------------------------------------------------------------------
def _cls_overwrite(x, cls):
    y = x.copy()
    y[:, 0] = cls[0, 0]
    return y


def _cls_full(d, **changed):
    """The class-token backward's gradients {dx, dcls} for upstream d (B, N+1, D), some replaced."""
    return {"dx": d[:, 1:], "dcls": d[:, :1].sum(axis=0, keepdims=True), **changed}


def _pos_full(d, **changed):
    """The position-embedding backward's gradients {dx, dpos} for upstream d (B, T, D), some replaced."""
    return {"dx": d, "dpos": d.sum(axis=0, keepdims=True), **changed}


def _explain_tokens(param, term):
    """explain for a backward whose parameter gradient is one term (the sum over the batch)."""
    def explain(args, dout, rc, ref, mine):
        want = term(dout)
        if np.shape(mine[param]) != want.shape or not np.any(want):
            return ""
        coefs, resid = fit_terms(mine[param], {f"the right {param}": want})
        return describe_fit(param, coefs, {f"the right {param}": 1.0}, resid)
    return explain


CLS = PartsPair(
    "cls_token_forward", "cls_token_backward", ("dx", "dcls"),
    cases=lambda: (lambda r: [(r((2, 4, 6)), r((1, 1, 6))), (r((1, 1, 3)), r((1, 1, 3))), (r((3, 9, 5)), r((1, 1, 5)))])(
        _rng("cls").standard_normal),
    fd_cases=lambda: (lambda r: [(r((2, 3, 4)), r((1, 1, 4)))])(_rng("cls-fd").standard_normal),
    wrt=lambda a: [a[0], a[1]],
    fwd_mistakes=(
        ("cls_appended", lambda x, c: np.concatenate([x, np.broadcast_to(c, (x.shape[0], 1, x.shape[2]))], axis=1)),
        ("cls_overwrites", _cls_overwrite),
    ),
    bwd_mistakes=(
        ("bias_grad_not_summed", lambda a, d, rc, rg: _cls_full(d, dcls=d[:, :1])),
        ("bias_grad_not_summed", lambda a, d, rc, rg: _cls_full(d, dcls=d[:1, :1])),        # first image only
        ("grad_mean_not_sum", lambda a, d, rc, rg: _cls_full(d, dcls=d[:, :1].mean(axis=0, keepdims=True))),
        ("param_grad_shape", lambda a, d, rc, rg: _cls_full(d, dcls=d[:, 0].sum(axis=0))),
        ("param_grad_shape", lambda a, d, rc, rg: _cls_full(d, dcls=d[:, :1].sum(axis=0))),
        ("cls_grad_all_tokens", lambda a, d, rc, rg: _cls_full(d, dcls=d.sum(axis=(0, 1), keepdims=True))),
        ("cls_dx_keeps_token", lambda a, d, rc, rg: _cls_full(d, dx=d)),
        ("cls_dx_wrong_slice", lambda a, d, rc, rg: _cls_full(d, dx=d[:, :-1])),
    ),
    explain=_explain_tokens("dcls", lambda d: d[:, :1].sum(axis=0, keepdims=True)),
)

POS = PartsPair(
    "pos_embed_forward", "pos_embed_backward", ("dx", "dpos"),
    cases=lambda: (lambda r: [(r((2, 5, 6)), r((1, 5, 6))), (r((1, 1, 3)), r((1, 1, 3))), (r((4, 3, 2)), r((1, 3, 2)))])(
        _rng("pos").standard_normal),
    fd_cases=lambda: (lambda r: [(r((2, 3, 4)), r((1, 3, 4)))])(_rng("pos-fd").standard_normal),
    wrt=lambda a: [a[0], a[1]],
    bwd_mistakes=(
        ("bias_grad_not_summed", lambda a, d, rc, rg: _pos_full(d, dpos=d)),
        ("bias_grad_not_summed", lambda a, d, rc, rg: _pos_full(d, dpos=d[:1])),             # first image only
        ("grad_mean_not_sum", lambda a, d, rc, rg: _pos_full(d, dpos=d.mean(axis=0, keepdims=True))),
        ("param_grad_shape", lambda a, d, rc, rg: _pos_full(d, dpos=d.sum(axis=0))),
        ("pos_grad_summed_over_tokens", lambda a, d, rc, rg: _pos_full(d, dpos=d.sum(axis=(0, 1), keepdims=True))),
    ),
    explain=_explain_tokens("dpos", lambda d: d.sum(axis=0, keepdims=True)),
)


def checks():
    """This topic's checks, in the order they run."""
    return CLS.checks() + POS.checks()
