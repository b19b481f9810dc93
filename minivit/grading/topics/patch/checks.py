"""Grading topic `patch`: Patchify and the linear layer (patch embedding): its checks, wrong variants and
mistake messages."""
from dataclasses import dataclass

import numpy as np

from minivit.grading.common import REF, MISTAKES, _bias_mistakes, _call_backward, _call_forward, _fail_with, _grads_tuple, _rng
from minivit.grading.detect import sure_mistakes
from minivit.grading.topics.parts import PartsPair, describe_fit, fit_terms

MISTAKES.update({
    "patch_channel_first": "Each patch is flattened channel-first, in (C, P, P) order (the PyTorch (B, C, H, W) "
                           "habit). minivit's images are channels-last, and a patch's vector lists its pixels row by "
                           "row with each pixel's channels together: (row, col, channel) order.",
    "patch_grid_column_major": "The patches are ordered column by column over the grid. Order them row-major, like "
                               "reading text: patch n sits at grid row n // (W/P), grid column n % (W/P).",
    "patch_pixels_column_major": "Inside each patch the pixels are flattened column by column, (col, row, channel). "
                                 "Flatten them row by row: (row, col, channel).",
    "patch_no_transpose": "Patches flattened in the wrong order: a single reshape of (B, H, W, C) to (B, N, P*P*C) "
                          "does not cut the image into patches - a reshape only relabels the memory order, so it mixes"
                          " pixels of different patches. The grid axes and the within-patch axes have to be separated "
                          "and regrouped first.",
    "missing_bias": "The bias is missing from the output (see the equation in the docstring).",
    "dw_transposed": "dw has the shape of w transposed: a parameter's gradient has the parameter's own shape, (D_in, "
                     "D_out).",
    "patch_backward_wrong_order": "patchify_backward puts the gradient's numbers back into the wrong pixels (dx holds "
                                  "exactly the numbers of dout, rearranged wrongly). Each number must go back to the "
                                  "pixel the forward took it from: undo the forward's steps in reverse order. If "
                                  "patchify_forward is flagged too, fix it first: the backward undoes its order.",
    "patch_wrong_order": "The patches hold exactly the pixels of x, but in the wrong order. Compare the order of your "
                         "axes, step by step, with the docstring's: patch n is grid row n // (W/P), column n % (W/P), "
                         "and inside a patch the pixels go row by row, channels last.",
    "bias_grad_wrong_axis": "db is summed over the wrong axis: over D_out (one number per position) instead of over "
                            "the positions. db has the bias's shape (D_out,).",
    "bias_grad_summed_all": "db is a single number: it was summed over every axis, D_out included. db has the bias's "
                            "shape (D_out,): one sum per output feature.",
    "dx_w_not_transposed": "dx uses w where it needs w transposed (dy is (..., D_out), w is (D_in, D_out), dx must be "
                           "(..., D_in)). With a square w it runs but gives the wrong numbers; otherwise the shapes do"
                           " not line up.",
    "linear_w_transposed": "The forward multiplies by w transposed: w has shape (D_in, D_out) (see the docstring).",
    "dx_not_reshaped": "dx has the flattened shape (B*N, D_in): it must have x's shape.",
})


# -- patch ------------------------------------------------------------------------------------
def _patch_variant(order):
    def f(x, P):
        B, H, W, C = x.shape
        gh, gw = H // P, W // P
        if order == "no_transpose":
            return x.reshape(B, gh * gw, P * P * C)
        y = x.reshape(B, gh, P, gw, P, C).transpose(*order)
        return y.reshape(B, gh * gw, P * P * C)
    return f


def _rearranged(values, like):
    """The numbers of ``values`` placed in the order of ``like`` (same size): equal to ``like``
    exactly when ``like`` only rearranges ``values``."""
    like = np.asarray(like, dtype=np.float64)
    v = np.empty(like.size)
    v[np.argsort(like.ravel(), kind="stable")] = np.sort(np.asarray(values, dtype=np.float64).ravel())
    return v.reshape(like.shape)


def _rearranged_dout(args, dout, ref, mine):
    """[("patch_backward_wrong_order", {"dx": dout's numbers in the order of the learner's dx})]."""
    if np.shape(mine["dx"]) != ref["dx"].shape:
        return []
    return [("patch_backward_wrong_order", {"dx": _rearranged(dout, mine["dx"])})]


def _rearranged_x(args, out, want):
    """[("patch_wrong_order", x's pixels in the order of the learner's patches)]."""
    if np.shape(out) != want.shape:
        return []
    return [("patch_wrong_order", _rearranged(args[0], out))]


def _explain_patch(args, dout, rc, ref, mine):
    """dx that is no rearrangement of dout: some numbers lost, doubled or changed."""
    dx = np.asarray(mine["dx"], dtype=np.float64)
    if dx.size != dout.size:
        return f" dx has {dx.size} numbers, dout {dout.size}: patchify_backward only moves numbers back."
    return (" dx is no rearrangement of dout (its numbers differ, not only their places): patchify only moves "
            "numbers, so its backward puts each number of dout into exactly one pixel - none lost, added or scaled.")


PATCH = PartsPair(
    "patchify_forward", "patchify_backward", ("dx",),
    cases=lambda: (lambda r: [(r((2, 8, 8, 3)), 4), (r((1, 6, 6, 1)), 2), (r((2, 12, 8, 2)), 4),
                              (r((1, 4, 4, 3)), 4), (r((2, 3, 3, 2)), 1)])(_rng("patch").standard_normal),
    fd_cases=lambda: [(_rng("patch-fd").standard_normal((1, 4, 6, 2)), 2)],
    fwd_mistakes=(
        ("patch_channel_first", _patch_variant((0, 1, 3, 5, 2, 4))),
        ("patch_grid_column_major", _patch_variant((0, 3, 1, 2, 4, 5))),
        ("patch_pixels_column_major", _patch_variant((0, 1, 3, 4, 2, 5))),
        ("patch_grid_column_major", _patch_variant((0, 3, 1, 4, 2, 5))),
        ("patch_no_transpose", _patch_variant("no_transpose")),
    ),
    derive=(),                           # a wrong rearrangement in the backward has its own name
    learner_variants=_rearranged_dout,
    learner_fwd=_rearranged_x,
    explain=_explain_patch,
)


def _linear_bwd_mistakes():
    """bwd_mistakes of the linear layer: db not summed / averaged, dw averaged or transposed, dx flat."""
    rows = lambda dout: int(np.prod(dout.shape[:-1]))          # noqa: E731  (B*N: the positions using W)
    return tuple(_bias_mistakes("db")) + (
        ("dw_transposed", lambda args, dout, rc, rg: {"dw": rg["dw"].T}),
        ("grad_mean_not_sum", lambda args, dout, rc, rg: {"dw": rg["dw"] / rows(dout), "db": rg["db"] / rows(dout)}),
        ("grad_mean_not_sum", lambda args, dout, rc, rg: {"dw": rg["dw"] / rows(dout)}),
        ("grad_mean_not_sum", lambda args, dout, rc, rg: {"dw": rg["dw"] / dout.shape[0]}),
        ("dx_not_reshaped", lambda args, dout, rc, rg: {"dx": rg["dx"].reshape(-1, rg["dx"].shape[-1])}),
        ("bias_grad_wrong_axis", lambda args, dout, rc, rg: {"db": dout.reshape(-1, dout.shape[-1]).sum(axis=1)}),
        ("bias_grad_wrong_axis", lambda args, dout, rc, rg: {"db": dout.sum(axis=-1)}),
        ("bias_grad_not_summed", lambda args, dout, rc, rg: None if dout.ndim < 3 else {     # the first image only
            "dw": rc[0][0].reshape(-1, rc[1].shape[0]).T @ dout[0].reshape(-1, dout.shape[-1])}))


def _linear_grads(fname, res, names):
    """The backward's (dx, dw, db); a db that is one number is named (summed over every axis)."""
    if isinstance(res, (tuple, list)) and len(res) == 3 and np.ndim(res[2]) == 0 and \
            isinstance(res[2], (float, int, np.number, np.ndarray)):
        _fail_with(f"{fname} returned db as a single number ({type(res[2]).__name__}), not an array of shape "
                   "(D_out,).", "bias_grad_summed_all", at=fname)
    return _grads_tuple(fname, res, names)


def _explain_linear(args, dout, rc, ref, mine):
    """Each wrong gradient fitted onto its one reference term: scaled, or of the wrong sign."""
    x, w = rc
    x2, dy2 = x.reshape(-1, x.shape[-1]), dout.reshape(-1, dout.shape[-1])
    terms = {"dx": ("the right dx", (dy2 @ w.T).reshape(x.shape)), "dw": ("the right dw", x2.T @ dy2),
             "db": ("the right db", dy2.sum(axis=0))}
    text = []
    for name, (label, term) in terms.items():
        if np.shape(mine[name]) == term.shape and np.any(term):
            coefs, resid = fit_terms(mine[name], {label: term})
            text.append(describe_fit(name, coefs, {label: 1.0}, resid))
    return "".join(text)


def _square_probe():
    """A linear-layer input with a square w, where a w / w.T mix-up runs instead of raising."""
    r = _rng("linear-square").standard_normal
    return r((2, 3, 4)), r((4, 4)), r(4)


@dataclass
class _LinearPair(PartsPair):
    """The linear layer's pair: a matmul shape error is retried on a square w, where mixing up w
    and w.T runs; when the result there is surely that mix-up, it is named."""

    def _probe(self, ns, key, fwd_only, err):
        x, w, b = _square_probe()
        out, cache = _call_forward(ns, self.fwd, (x, w, b))
        want, ref_cache = REF.linear_forward(x, w, b)
        if fwd_only:
            got, ref, variant = {"out": out}, {"out": want}, {"out": x @ w.T + b}
        else:
            dy = _rng("linear-square-dy").standard_normal(want.shape)
            got = dict(zip(self.grads, self.learner_grads(_call_backward(ns, self.bwd, dy, cache))))
            ref = dict(zip(self.grads, REF.linear_backward(dy, ref_cache)))
            variant = {**ref, "dx": dy @ w}
        if sure_mistakes(got, ref, [(key, variant)]) == [key]:
            _fail_with(f"{getattr(err, 'learner_description', err)} With a square w (4, 4) it runs, and "
                       f"gives {'x times w transposed' if fwd_only else 'dx as dy times w, not transposed'}.", key,
                       at=self.fwd if fwd_only else self.bwd)
        raise err

    def check_forward(self, ns):
        try:
            super().check_forward(ns)
        except ValueError as e:
            self._probe(ns, "linear_w_transposed", True, e)

    def check_backward(self, ns):
        try:
            super().check_backward(ns)
        except ValueError as e:
            self._probe(ns, "dx_w_not_transposed", False, e)


LINEAR = _LinearPair(
    "linear_forward", "linear_backward", ("dx", "dw", "db"),
    cases=lambda: (lambda r: [(r((2, 5, 6)), r((6, 4)) / 2, r(4)), (r((7, 3)), r((3, 5)), r(5)),
                              (r((1, 1, 4)), r((4, 4)), r(4)), (r((2, 3, 2, 6)), r((6, 3)), r(3))])(
        _rng("linear").standard_normal),
    fd_cases=lambda: (lambda r: [(r((2, 3, 4)), r((4, 5)), r(5))])(_rng("linear-fd").standard_normal),
    wrt=lambda a: [a[0], a[1], a[2]],
    fwd_mistakes=(("missing_bias", lambda x, w, b: x @ w),),
    bwd_mistakes=_linear_bwd_mistakes(),
    unpack=_linear_grads,
    explain=_explain_linear,
)


def checks():
    """This topic's checks, in the order they run."""
    return PATCH.checks() + LINEAR.checks()
