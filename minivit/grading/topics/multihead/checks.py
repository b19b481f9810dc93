"""Grading topic `multihead`: Splitting/merging heads and multi-head self-attention: its checks, wrong variants and
mistake messages. mhsa_backward is read link by link (``_mhsa_links``): the output projection, the
heads merged back, attention, dq/dk/dv laid back into the qkv columns, the qkv projection."""

import dataclasses
import math

import numpy as np

from minivit import gradcheck
from minivit.grading.common import (MISTAKES, Check, FD_TOL, KEY_ZERO_TOL, Fail, REF, _as_array, _bias_mistakes,
    _check_inputs_unchanged, _copy, _describe_args, _fail_with, _fd, _mismatch, _rng, _softmax, pointer)
from minivit.grading.detect import next_step_forward, sure_mistakes, where_feedback
from minivit.grading.topics.explained import ExplainedPair

MISTAKES.update({
    "heads_reshape_only": "Reshaping (B, T, D) straight to (B, h, T, d) mixes features of different tokens in one head"
                          " (a reshape only relabels the memory order). Split each token's features into heads first, "
                          "then move the head axis in front of the tokens (and the reverse to merge).",
    "heads_interleaved": "Head j must take the contiguous block of features [j*d, (j+1)*d), not every h-th feature.",
    "qkv_layout": "The qkv columns are [q | k | v], each D wide and each split into heads the way split_heads does; "
                  "yours reads them in another layout.",
    "no_heads": "The heads are not split: you ran one attention over all D features. Split q, k, v into "
                "num_heads heads of width d = D / num_heads, attend in each, merge the heads.",
    "missing_out_proj": "The output projection is missing: the merged heads go through w_out and b_out (see the "
                        "docstring's equation).",
    "dqkv_layout": "dq, dk, dv go back into the (B, T, 3D) columns in the forward's layout, [q | k | v], each split "
                   "into heads the way the forward split them: undo the forward's steps in reverse order.",
    "dqkv_no_transpose": "dq, dk, dv (each (B, h, T, d)) were reshaped to (B, T, ...) without moving the head axis "
                         "back first: a reshape only relabels the memory order, so tokens and heads get mixed.",
})


# -- heads ----------------------------------------------------------------------------------------
def _split_variant(kind):
    def f(x, h):
        B, T, D = x.shape
        d = D // h
        if kind == "reshape":
            return x.reshape(B, h, T, d)
        return x.reshape(B, T, d, h).transpose(0, 3, 1, 2)
    return f


def _merge_variant(kind):
    def f(x, *_):
        B, h, T, d = x.shape
        if kind == "reshape":
            return x.reshape(B, T, h * d)
        return x.transpose(0, 2, 3, 1).reshape(B, T, h * d)
    return f


HEAD_MISTAKES_SPLIT = (("heads_reshape_only", _split_variant("reshape")), ("heads_interleaved", _split_variant("inter")))
HEAD_MISTAKES_MERGE = (("heads_reshape_only", _merge_variant("reshape")), ("heads_interleaved", _merge_variant("inter")))


def _heads_cases(kind):
    r = _rng("heads-" + kind).standard_normal
    if kind in ("split", "merge_backward"):
        return [(r((2, 5, 8)), 2), (r((1, 3, 6)), 3), (r((2, 4, 6)), 1), (r((1, 1, 4)), 2)]
    if kind == "merge":
        return [(r((2, 2, 5, 4)),), (r((1, 3, 3, 2)),), (r((2, 1, 4, 6)),)]
    return [(r((2, 2, 5, 4)),), (r((1, 3, 3, 2)),), (r((2, 1, 4, 6)),)]   # split_backward(dout)


def _plain_check(fname, kind, mistakes, reference):
    def run(ns):
        for args in _heads_cases(kind):
            mine = _copy(args)
            out = _as_array("the output", ns[fname](*mine))
            _check_inputs_unchanged(fname, args, mine)
            want = reference(*_copy(args))
            problem = _mismatch("the output", out, want)
            if problem:
                call = f"{fname}({_describe_args(fname, args)})"
                keys = sure_mistakes(out, want, [(k, lambda v=v: v(*_copy(args))) for k, v in mistakes])
                if len(keys) == 1:
                    _fail_with(f"{call}: {problem}.", keys[0])
                raise Fail(where_feedback(call, problem, next_step_forward(fname), keys))
    return run


def _plain_right(ns, fname):
    """The learner's split_heads / merge_heads match the reference on their check's inputs."""
    ref = {"split_heads": REF.split_heads, "merge_heads": REF.merge_heads}[fname]
    try:
        return all(_mismatch("out", ns[fname](*_copy(a)), ref(*_copy(a))) is None
                   for a in _heads_cases("split" if fname == "split_heads" else "merge"))
    except Exception:
        return False


def _heads_fd_check(ns):
    r = _rng("heads-fd").standard_normal
    bad = []
    for fname, bname, fwd, bwd, x in (
            ("split_heads", "split_heads_backward", lambda x: (ns["split_heads"](x, 2), None),
             lambda d, c: ns["split_heads_backward"](d), r((2, 3, 4))),
            ("merge_heads", "merge_heads_backward", lambda x: (ns["merge_heads"](x), None),
             lambda d, c: ns["merge_heads_backward"](d, 2), r((2, 2, 3, 2)))):
        err = gradcheck.check_pair(fwd, bwd, [x], [0], ["dx"], seed=3)["dx"]
        if not err < FD_TOL:
            bad.append(f"{bname} is not the gradient of {fname}: relative error {err:.2e} against finite differences")
            if not _plain_right(ns, fname):
                raise Fail(f"{bad[-1]}. Your {fname} differs from the reference (its own check fails): fix {fname} "
                           f"first - the backward must undo what the forward does.\n" + pointer(fname))
    if bad:
        raise Fail("; ".join(bad) + ". split_heads and merge_heads only move numbers around, so each backward only "
                   "moves the gradient's numbers back to where its forward took them from.\n"
                   + pointer(bad[0].split()[0]))


# -- multi-head self-attention ------------------------------------------------------------------
def _mhsa_variant(layout="3hd", scale="d", heads="split", proj=True):
    def f(x, wq, bq, wo, bo, h):
        B, T, D = x.shape
        d = D // h
        qkv = x @ wq + bq
        if heads == "none":
            q, k, v = qkv[..., :D][:, None], qkv[..., D:2 * D][:, None], qkv[..., 2 * D:][:, None]
            dd = D
        elif layout == "h3d":
            q, k, v = qkv.reshape(B, T, h, 3, d).transpose(3, 0, 2, 1, 4)
            dd = d
        elif layout == "reshape":
            q, k, v = (qkv[..., i * D:(i + 1) * D].reshape(B, h, T, d) for i in range(3))
            dd = d
        else:
            q, k, v = qkv.reshape(B, T, 3, h, d).transpose(2, 0, 3, 1, 4)
            dd = d
        s = {"d": 1 / math.sqrt(dd), "D": 1 / math.sqrt(D), "none": 1.0}[scale]
        o = _softmax(q @ k.swapaxes(-1, -2) * s) @ v
        if layout == "reshape" and heads != "none":
            merged = o.reshape(B, T, D)
        else:
            merged = o.transpose(0, 2, 1, 3).reshape(B, T, D)
        return merged @ wo + bo if proj else merged
    return f


def _mhsa_links(rc, dout, merge="ok", layout="ok", scale=1.0):
    """The reference's backward, link by link, with one link optionally done wrong.

    merge: how dmerged (B, T, D) becomes dheads (B, h, T, d): "ok", "reshape" (no transpose),
    "inter" (every h-th feature). layout: how dq, dk, dv become dqkv (B, T, 3D): "ok", "reshape"
    (no transpose back), "parts" (each part reshaped on its own), "h3d" ((B, T, h, 3, d) columns),
    "kqv" (q and k swapped). scale: a factor on dq and dk (a wrong attention scale).
    returns: {grad name: array} for dx, dw_qkv, db_qkv, dw_out, db_out."""
    qkv_cache, attn_cache, out_cache, h = rc
    dmerged, dw_out, db_out = REF.linear_backward(dout, out_cache)
    B, T, D = dmerged.shape
    d = D // h
    dheads = {"ok": lambda m: REF.merge_heads_backward(m, h), "reshape": lambda m: m.reshape(B, h, T, d),
              "inter": lambda m: m.reshape(B, T, d, h).transpose(0, 3, 1, 2)}[merge](dmerged)
    dq, dk, dv = REF.attention_backward(dheads, attn_cache)
    dq, dk = dq * scale, dk * scale
    parts = [dk, dq, dv] if layout == "kqv" else [dq, dk, dv]
    stacked = np.stack(parts)                                               # (3, B, h, T, d)
    dqkv = {"ok": lambda: stacked.transpose(1, 3, 0, 2, 4), "kqv": lambda: stacked.transpose(1, 3, 0, 2, 4),
            "reshape": lambda: stacked, "parts": lambda: np.concatenate([p.reshape(B, T, D) for p in parts], -1),
            "h3d": lambda: stacked.transpose(1, 3, 2, 0, 4)}[layout]().reshape(B, T, 3 * D)
    dx, dw_qkv, db_qkv = REF.linear_backward(dqkv, qkv_cache)
    return {"dx": dx, "dw_qkv": dw_qkv, "db_qkv": db_qkv, "dw_out": dw_out, "db_out": db_out, "dqkv": dqkv}


def _links_variant(names=("dx", "dw_qkv", "db_qkv"), scale_of=None, **wrong):
    """A bwd_mistakes entry: the gradients ``names`` of ``_mhsa_links`` with one link done wrong
    (``wrong``; scale_of(args): the factor on dq and dk)."""
    def v(a, d, rc, rg):
        got = _mhsa_links(rc, d, **wrong, **({"scale": scale_of(a)} if scale_of else {}))
        return {n: got[n] for n in names}
    return v


def _mhsa_dqkv(rc, dout):
    return _mhsa_links(rc, dout)["dqkv"]


def _explain_mhsa(args, dout, ref_cache, mine, ref):
    """Which link of the chain breaks first: the output projection (dw_out, db_out), then the q, k
    and v columns of dw_qkv (what reached dq, dk, dv), then dx alone (the qkv projection)."""
    bad = [n for n in ("dw_out", "db_out") if _mismatch(n, mine[n], ref[n]) is not None]
    if bad:
        return (f"Going back from the output, the first wrong link is the output projection "
                f"({', '.join(bad)} wrong).")
    D = args[0].shape[-1]
    try:
        parts = [n for i, n in enumerate("qkv") if _mismatch(n, mine["dw_qkv"][:, i * D:(i + 1) * D],
                                                           ref["dw_qkv"][:, i * D:(i + 1) * D]) is not None]
    except Exception:          # dw_qkv of the wrong shape: the shape message says it already
        return ""
    if parts:
        return (f"dw_out and db_out are right; in dw_qkv the columns of {', '.join('d' + p for p in parts)} are "
                "wrong: check the links between them - the heads merged back, the attention's backward, and how "
                "dq, dk, dv go back to (B, T, 3D).")
    if _mismatch("dx", mine["dx"], ref["dx"]) is not None:
        return "dw_qkv is right but dx is not: the last link, back through the qkv projection to x."
    return ""


def _mhsa_cases():
    r = _rng("mhsa").standard_normal

    def case(B, T, D, h):
        return (r((B, T, D)), r((D, 3 * D)) / math.sqrt(D), 0.5 * r(3 * D), r((D, D)) / math.sqrt(D), 0.5 * r(D), h)
    return [case(2, 5, 8, 2), case(1, 4, 6, 3), case(2, 3, 4, 1), case(1, 1, 4, 2)]


def _mhsa_bwd_mistakes():
    """Bias gradients not summed; the layout errors of each link; a wrong scale on dq and dk; a
    transposed weight gradient."""
    out = []
    out += _bias_mistakes("db_out", lead=(0, 1))
    out += _bias_mistakes("db_qkv", lambda a, d, rc: _mhsa_dqkv(rc, d), lead=(0, 1))
    out += [("heads_reshape_only", _links_variant(merge="reshape")),
            ("heads_interleaved", _links_variant(merge="inter")),
            ("dqkv_no_transpose", _links_variant(layout="reshape")),
            ("dqkv_no_transpose", _links_variant(layout="parts")),
            ("dqkv_layout", _links_variant(layout="h3d")),
            ("dqkv_layout", _links_variant(layout="kqv")),
            ("missing_scale_backward", _links_variant(scale_of=lambda a: math.sqrt(a[0].shape[-1] // a[5]))),
            ("scale_model_width", _links_variant(scale_of=lambda a: math.sqrt((a[0].shape[-1] // a[5]) /
                                                                               a[0].shape[-1]))),
            ("dw_transposed", lambda a, d, rc, rg: {"dw_out": rg["dw_out"].T}),
            ("dw_transposed", lambda a, d, rc, rg: {"dw_qkv": rg["dw_qkv"].T})]
    return tuple(out)


class _MhsaPair(ExplainedPair):
    """The finite-difference check treats as zero the db_qkv entries that are zero for the learner's
    own forward (the key bias for the correct one; other columns for a forward with another qkv
    layout): those are compared absolutely, the rest relatively."""

    def check_fd(self, ns):
        def zero_in_yours(args):
            a = _copy(args)
            dout = np.random.default_rng(11).standard_normal(np.shape(ns[self.fwd](*_copy(args))[0]))
            num = _fd(lambda *v: ns[self.fwd](*v)[0], a, dout, [a[2]], ["db_qkv"])["db_qkv"]
            return {"db_qkv": np.abs(num) <= KEY_ZERO_TOL}
        return ExplainedPair.check_fd(dataclasses.replace(self, known_zero=zero_in_yours), ns)


MHSA = _MhsaPair(
    "mhsa_forward", "mhsa_backward", ("dx", "dw_qkv", "db_qkv", "dw_out", "db_out"),
    cases=_mhsa_cases,
    fd_cases=lambda: (lambda r: [(r((2, 3, 4)), r((4, 12)) / 2, 0.5 * r(12), r((4, 4)) / 2, 0.5 * r(4), 2)])(
        _rng("mhsa-fd").standard_normal),
    wrt=lambda a: [a[0], a[1], a[2], a[3], a[4]],
    fwd_mistakes=(
        ("qkv_layout", _mhsa_variant(layout="h3d")),
        ("missing_scale", _mhsa_variant(scale="none")),
        ("scale_model_width", _mhsa_variant(scale="D")),
        ("no_heads", _mhsa_variant(heads="none")),
        ("heads_reshape_only", _mhsa_variant(layout="reshape")),
        ("missing_out_proj", _mhsa_variant(proj=False)),
    ),
    bwd_mistakes=_mhsa_bwd_mistakes(),
    derive=("dx",),
    explain=_explain_mhsa,
)


def checks():
    """This topic's checks, in the order they run."""
    return [
        Check("split_heads: matches the reference (incl. one head, batch 1)", ("split_heads",), 1,
              _plain_check("split_heads", "split", HEAD_MISTAKES_SPLIT, REF.split_heads)),
        Check("merge_heads: matches the reference", ("merge_heads",), 1,
              _plain_check("merge_heads", "merge", HEAD_MISTAKES_MERGE, REF.merge_heads)),
        Check("split_heads_backward: matches the reference", ("split_heads_backward",), 1,
              _plain_check("split_heads_backward", "split_backward", HEAD_MISTAKES_MERGE, REF.split_heads_backward)),
        Check("merge_heads_backward: matches the reference", ("merge_heads_backward",), 1,
              _plain_check("merge_heads_backward", "merge_backward", HEAD_MISTAKES_SPLIT, REF.merge_heads_backward)),
        Check("split/merge backward agree with finite differences",
              ("split_heads", "merge_heads", "split_heads_backward", "merge_heads_backward"), 1, _heads_fd_check),
    ] + MHSA.checks()
