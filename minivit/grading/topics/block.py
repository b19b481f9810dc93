"""Grading topic `block`: The pre-norm encoder block: its checks, wrong variants and
mistake messages."""

import math

import numpy as np

from minivit.backend import make_rng
from minivit.layers.block import BLOCK_PARAM_NAMES
from minivit.grading.common import (MISTAKES, Check, Fail, REF, _as_array, _bias_variants, _call_forward, _copy,
    _kind, _mismatch, _rng)
from minivit.grading.pair import Pair

MISTAKES.update({
    "post_norm": "That is a post-norm block (LayerNorm after the residual add, as in the original Transformer). "
                 "ViT is pre-norm: z' = z + MSA(LN(z)), out = z' + MLP(LN(z')).",
    "missing_residual": "A residual connection is missing: z' = z + MSA(LN(z)) and out = z' + MLP(LN(z')).",
    "mlp_reads_input": "The MLP branch must read z' = x + MSA(LN(x)), the attention sub-block's output, not x.",
    "layernorm_params_shared": "The second LayerNorm must use its own parameters ln2_gamma, ln2_beta.",
    "args_not_passed": "Pass eps on to F.layernorm_forward and approximate on to F.mlp_forward: the block was "
                       "called with other values than the defaults.",
    "missing_residual_grad": "A residual's gradient is missing in the backward: a residual z' = z + f(z) sends "
                             "the upstream gradient both through f and straight to z, so add it (dz1 += dout, "
                             "dx += dz1).",
})


# -- the encoder block --------------------------------------------------------------------------------
def _block_params(r, D, M):
    return {
        "ln1_gamma": 1 + 0.2 * r(D), "ln1_beta": 0.2 * r(D),
        "w_qkv": r((D, 3 * D)) / math.sqrt(D), "b_qkv": 0.3 * r(3 * D),
        "w_out": r((D, D)) / math.sqrt(D), "b_out": 0.3 * r(D),
        "ln2_gamma": 1 + 0.2 * r(D), "ln2_beta": 0.2 * r(D),
        "w1": r((D, M)) / math.sqrt(D), "b1": 0.3 * r(M),
        "w2": r((M, D)) / math.sqrt(M), "b2": 0.3 * r(D),
    }


def _block_variant(kind):
    L = REF

    def f(x, p, h, eps=1e-6, approx="tanh", dropout=0.0, drop_path=0.0, rng=None, train=False):
        if kind == "defaults":
            eps2, approx2 = 1e-6, "tanh"
            if (eps2, approx2) == (eps, approx):
                return None
            eps, approx = eps2, approx2

        def ln(z, i):
            j = 1 if kind == "ln1_twice" else i
            return L.layernorm_forward(z, p[f"ln{j}_gamma"], p[f"ln{j}_beta"], eps)[0]

        def msa(z):
            return L.mhsa_forward(z, p["w_qkv"], p["b_qkv"], p["w_out"], p["b_out"], h)[0]

        def mlp(z):
            return L.mlp_forward(z, p["w1"], p["b1"], p["w2"], p["b2"], approx)[0]

        if kind == "post_norm":
            z1 = L.layernorm_forward(x + msa(x), p["ln1_gamma"], p["ln1_beta"], eps)[0]
            return L.layernorm_forward(z1 + mlp(z1), p["ln2_gamma"], p["ln2_beta"], eps)[0]
        a = msa(ln(x, 1))
        z1 = a if kind == "no_res1" else x + a
        m = mlp(ln(x if kind == "parallel" else z1, 2))
        return m if kind == "no_res2" else z1 + m
    return f


def _block_bwd_variant(kind):
    def f(a, dout, rc, rg):
        L = REF
        ln1, attn, drop1, path1, ln2, mlp, drop2, path2 = rc
        dh, *_ = L.mlp_backward(L.dropout_backward(L.drop_path_backward(dout, path2), drop2), mlp)
        dz1 = L.layernorm_backward(dh, ln2)[0]
        if kind != "no_res2":
            dz1 = dz1 + dout
        dh, *_ = L.mhsa_backward(L.dropout_backward(L.drop_path_backward(dz1, path1), drop1), attn)
        dx = L.layernorm_backward(dh, ln1)[0]
        if kind != "no_res1":
            dx = dx + dz1
        return {"dx": dx}
    return f


def _block_unpack(fname, res, names):
    if not (isinstance(res, (tuple, list)) and len(res) == 2 and isinstance(res[1], dict)):
        raise Fail(f"{fname} must return (dx, grads) with grads a dict keyed like the parameters; "
                   f"it returned {_kind(res)}")
    dx, g = res
    missing = [n for n in BLOCK_PARAM_NAMES if n not in g]
    if missing:
        raise Fail(f"{fname}: the grads dict has no {', '.join(missing)}")
    return [_as_array("dx", dx)] + [_as_array(n, g[n]) for n in BLOCK_PARAM_NAMES]


def _block_cases():
    r = _rng("block").standard_normal
    return [(r((2, 5, 8)), _block_params(r, 8, 12), 2, 1e-6, "tanh", 0.0, 0.0, None, False),
            (r((1, 3, 4)), _block_params(r, 4, 8), 1, 1e-5, "none", 0.0, 0.0, None, False),
            (r((2, 4, 6)), _block_params(r, 6, 12), 3, 1e-6, "tanh", 0.3, 0.3, None, False)]


BLOCK = Pair(
    "encoder_block_forward", "encoder_block_backward", ("dx",) + BLOCK_PARAM_NAMES,
    cases=_block_cases,
    fd_cases=lambda: (lambda r: [(r((2, 3, 4)), _block_params(r, 4, 8), 2, 1e-6, "tanh", 0.0, 0.0, None, False)])(
        _rng("block-fd").standard_normal),
    wrt=lambda a: [a[0]] + [a[1][n] for n in BLOCK_PARAM_NAMES],
    unpack=_block_unpack,
    fwd_mistakes=(
        ("post_norm", _block_variant("post_norm")),
        ("missing_residual", _block_variant("no_res1")),
        ("missing_residual", _block_variant("no_res2")),
        ("mlp_reads_input", _block_variant("parallel")),
        ("layernorm_params_shared", _block_variant("ln1_twice")),
        ("args_not_passed", _block_variant("defaults")),
    ),
    bwd_mistakes=(
        ("missing_residual_grad", _block_bwd_variant("no_res1")),
        ("missing_residual_grad", _block_bwd_variant("no_res2")),
        ("missing_residual_grad", _block_bwd_variant("no_res12")),
    ) + tuple((key, (lambda name, k: lambda a, d, rc, rg: _bias_variants(name, d, (0, 1))[k][1])(name, k))
              for name in ("b2",)
              for k, key in enumerate(("bias_grad_not_summed", "bias_grad_not_summed", "grad_mean_not_sum"))),
    derive=("dx",),
    known_zero=lambda a: {"b_qkv": slice(a[0].shape[-1], 2 * a[0].shape[-1])},
)


def _block_dropout_check(ns):
    r = _rng("block-dropout").standard_normal
    x, p = r((4, 3, 8)), _block_params(r, 8, 12)

    def args():
        return (x.copy(), _copy(p), 2, 1e-6, "tanh", 0.2, 0.3, make_rng(5, 3), True)
    out, cache = _call_forward(ns, "encoder_block_forward", args())
    want, ref_cache = REF.encoder_block_forward(*args())
    hint = ("Apply F.dropout_forward and then F.drop_path_forward (in this order, with the rng and train flag you "
            "were given) to each branch's output, MSA's and the MLP's, before adding it to the residual; in the "
            "backward undo them in reverse order (F.drop_path_backward, then F.dropout_backward).")
    problem = _mismatch("the output", out, want)
    if problem:
        raise Fail(f"encoder_block_forward with dropout=0.2, drop_path=0.3, train=True: {problem}.\n{hint}")
    dout = np.random.default_rng(2).standard_normal(want.shape)
    grads = _block_unpack("encoder_block_backward", ns["encoder_block_backward"](dout.copy(), cache), None)
    ref = _block_unpack("encoder_block_backward", REF.encoder_block_backward(dout, ref_cache), None)
    for name, g, rr in zip(("dx",) + BLOCK_PARAM_NAMES, grads, ref):
        problem = _mismatch(name, g, rr)
        if problem:
            raise Fail(f"encoder_block_backward with dropout and drop-path in training mode: {problem}.\n{hint}")


def checks():
    """This topic's checks, in the order they run."""
    return BLOCK.checks() + [
        Check("encoder block: dropout and drop-path in training mode", ("encoder_block_forward",
                                                                         "encoder_block_backward"), 1,
              _block_dropout_check)]
