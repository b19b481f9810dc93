"""Grading topic `tokens`: The class token and position embeddings: its checks, wrong variants and
mistake messages."""

import numpy as np

from minivit.grading.common import MISTAKES, _rng
from minivit.grading.pair import Pair

MISTAKES.update({
    "cls_appended": "The class token goes first (position 0 of every sequence), not last.",
    "cls_overwrites": "The class token must be prepended as an extra token (the output has N+1 tokens), not "
                      "written over the first patch.",
    "cls_dx_keeps_token": "dx must drop position 0, the class token's slot: dx = dout[:, 1:] (the input x had N "
                          "tokens, not N+1).",
    "cls_dx_wrong_slice": "dx takes the wrong N positions: the patches sit at positions 1..N, so dx = dout[:, 1:].",
    "param_grad_shape": "The parameter's gradient must have the parameter's own shape (keepdims=True keeps the "
                        "leading axis of size 1).",
})


# -- tokens -----------------------------------------------------------------------------------
def _cls_overwrite(x, cls):
    y = x.copy()
    y[:, 0] = cls[0, 0]
    return y


CLS = Pair(
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
        ("bias_grad_not_summed", lambda a, d, rc, rg: {"dcls": d[:, :1]}),
        ("grad_mean_not_sum", lambda a, d, rc, rg: {"dcls": d[:, :1].mean(axis=0, keepdims=True)}),
        ("param_grad_shape", lambda a, d, rc, rg: {"dcls": d[:, 0].sum(axis=0)}),
        ("param_grad_shape", lambda a, d, rc, rg: {"dcls": d[:, :1].sum(axis=0)}),
        ("cls_dx_keeps_token", lambda a, d, rc, rg: {"dx": d}),
        ("cls_dx_wrong_slice", lambda a, d, rc, rg: {"dx": d[:, :-1]}),
    ),
)

POS = Pair(
    "pos_embed_forward", "pos_embed_backward", ("dx", "dpos"),
    cases=lambda: (lambda r: [(r((2, 5, 6)), r((1, 5, 6))), (r((1, 1, 3)), r((1, 1, 3))), (r((4, 3, 2)), r((1, 3, 2)))])(
        _rng("pos").standard_normal),
    fd_cases=lambda: (lambda r: [(r((2, 3, 4)), r((1, 3, 4)))])(_rng("pos-fd").standard_normal),
    wrt=lambda a: [a[0], a[1]],
    bwd_mistakes=(
        ("bias_grad_not_summed", lambda a, d, rc, rg: {"dpos": d}),
        ("grad_mean_not_sum", lambda a, d, rc, rg: {"dpos": d.mean(axis=0, keepdims=True)}),
        ("param_grad_shape", lambda a, d, rc, rg: {"dpos": d.sum(axis=0)}),
    ),
)


def checks():
    """This topic's checks, in the order they run."""
    return CLS.checks() + POS.checks()
