"""Grading topic `patch`: Patchify and the linear layer (patch embedding): its checks, wrong variants and
mistake messages."""
from minivit.grading.common import MISTAKES, _bias_variants, _rng
from minivit.grading.pair import Pair

MISTAKES.update({
    "patch_channel_first": "Each patch is flattened channel-first, in (C, P, P) order (the PyTorch (B, C, H, W) habit). "
                           "minivit's images are channels-last and a patch is flattened in (row, col, channel) order: "
                           "reshape to (B, H/P, P, W/P, P, C), transpose to (B, H/P, W/P, P, P, C), then reshape.",
    "patch_grid_column_major": "The patches are ordered column by column over the grid. Order them row-major, like "
                               "reading text: patch n sits at grid row n // (W/P), grid column n % (W/P) - the two grid "
                               "axes go in the order (H/P, W/P).",
    "patch_pixels_column_major": "Inside each patch the pixels are flattened column by column, (col, row, channel). "
                                 "Flatten them row by row: (row, col, channel).",
    "patch_no_transpose": "Patches flattened in the wrong order: a single reshape of (B, H, W, C) to (B, N, P*P*C) "
                          "does not cut the image into patches (it mixes pixels of different patches). Split H and W "
                          "into (H/P, P) and (W/P, P), bring the two grid axes together with a transpose "
                          "-> (B, H/P, W/P, P, P, C), then reshape.",
    "missing_bias": "The bias is missing from the output: y = x W + b.",
    "dw_transposed": "dw has the shape of W transposed: dw = x^T dy, shape (D_in, D_out) like W.",
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


PATCH = Pair(
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
)


def _linear_bwd_mistakes():
    keys = ("bias_grad_not_summed", "bias_grad_not_summed", "grad_mean_not_sum", "bias_grad_not_summed")

    def make(k):
        def v(args, dout, rc, rg):
            cands = _bias_variants("db", dout, tuple(range(dout.ndim - 1)))
            return cands[k][1] if k < len(cands) else None
        return v
    return tuple((key, make(k)) for k, key in enumerate(keys)) + (
        ("dw_transposed", lambda args, dout, rc, rg: {"dw": rg["dw"].T}),)


LINEAR = Pair(
    "linear_forward", "linear_backward", ("dx", "dw", "db"),
    cases=lambda: (lambda r: [(r((2, 5, 6)), r((6, 4)) / 2, r(4)), (r((7, 3)), r((3, 5)), r(5)),
                              (r((1, 1, 4)), r((4, 4)), r(4)), (r((2, 3, 2, 6)), r((6, 3)), r(3))])(
        _rng("linear").standard_normal),
    fd_cases=lambda: (lambda r: [(r((2, 3, 4)), r((4, 5)), r(5))])(_rng("linear-fd").standard_normal),
    wrt=lambda a: [a[0], a[1], a[2]],
    fwd_mistakes=(("missing_bias", lambda x, w, b: x @ w),),
    bwd_mistakes=_linear_bwd_mistakes(),
)


def checks():
    """This topic's checks, in the order they run."""
    return PATCH.checks() + LINEAR.checks()
