"""Grading topic `attention`, the backward passes: the wrong variants of softmax_backward and
attention_backward, and the diagnosis of a gradient by its parts (the links dv, dA, dS, dq, dk).

Every variant returns all the gradients of its backward (the reference's where the mistake does
not change them), so a variant is named only when the learner's other gradients are right too.
"""
import numpy as np

from minivit.grading.common import MISTAKES
from minivit.grading.topics.parts import describe_fit, fit_terms

MISTAKES.update({
    "softmax_backward_no_sum_term": "The softmax backward is missing the term through the normalization: the direct "
                                    "term alone ignores that raising one score lowers every other probability of its "
                                    "slice (the off-diagonal entries of the Jacobian).",
    "softmax_backward_sum_without_s": "The sum in the softmax backward leaves out the weighting by the probabilities "
                                      "s: the term through the normalization sums the upstream gradient weighted by s,"
                                      " not the bare upstream gradient.",
    "softmax_backward_wrong_axis": "The softmax backward sums over the wrong axis: its sum runs along the axis the "
                                   "softmax normalized (the `axis` kept in the cache; for attention the last axis, "
                                   "over the keys), with keepdims=True.",
    "softmax_backward_sum_all": "The sum in the softmax backward runs over every element of the array: it needs one "
                                "sum per slice along `axis` (keepdims=True).",
    "attention_skips_softmax": "The attention backward skips the softmax: it treats the gradient at A as the gradient "
                               "at the scores S. Between them lies the softmax's backward (what your softmax_backward "
                               "computes, over the last axis).",
    "missing_scale_dk": "dk is missing the 1/sqrt(d) factor (dq has it): the scale multiplies the scores, so it "
                        "reaches the gradients of both q and k.",
    "missing_scale_dq": "dq is missing the 1/sqrt(d) factor (dk has it): the scale multiplies the scores, so it "
                        "reaches the gradients of both q and k.",
    "softmax_backward_sign_flipped": "The softmax backward has its sign flipped: the term through the normalization is"
                                     " subtracted from the direct term, not the other way round.",
    "dA_transposed": "dA is transposed: dA has A's layout, dA[i, j] belongs to query i and key j.",
    "scale_twice_backward": "The scale is applied twice in the backward (to dA or dS, and again to dq and dk): the "
                            "forward multiplies the scores by it once.",
    "qk_operand_swapped": "dq or dk multiplies dS by the wrong operand: the queries' gradient is built from the keys, "
                          "the keys' gradient from the queries.",
    "dq_transposed": "dq uses dS transposed: query i collects from every key j along row i of dS, as it is.",
})


def _T(a):
    """Swap the last two axes (the "^T" of the formulas)."""
    return a.swapaxes(-1, -2)


# ------------------------------------------------------------------------- softmax backward
def _jvp_variants(s, d, axis):
    """Wrong softmax backwards of upstream gradient d (same shape as the softmax output s):
    [(key, dx)], each dx of s's shape. (A sum without keepdims raises on the checks' non-square
    inputs: the engine names that one, broadcast_keepdims.)"""
    ax = axis % s.ndim
    out = [("softmax_diagonal_jacobian", s * (1 - s) * d),
           ("softmax_backward_no_sum_term", s * d),
           ("softmax_backward_sum_without_s", s * (d - d.sum(axis=ax, keepdims=True))),
           ("softmax_backward_sum_all", s * (d - (d * s).sum())),
           ("softmax_backward_sign_flipped", s * ((d * s).sum(axis=ax, keepdims=True) - d))]
    out += [("softmax_backward_wrong_axis", s * (d - (d * s).sum(axis=k, keepdims=True)))
            for k in range(s.ndim) if k != ax and s.shape[k] > 1]
    return [(k, v) for k, v in out if v.shape == s.shape]


def softmax_backward_variants():
    """bwd_mistakes of the softmax pair: variant(args, dout, ref_cache, ref) -> {"dx": array}."""
    def make(i):
        def variant(args, dout, rc, ref):
            s, axis = rc
            found = [v for v in _jvp_variants(s, dout, axis) if v[0] == keys[i]]
            return {"dx": found[0][1]} if found else None
        return variant
    keys = ["softmax_diagonal_jacobian", "softmax_backward_no_sum_term", "softmax_backward_sum_without_s",
            "softmax_backward_sum_all", "softmax_backward_sign_flipped"]
    return tuple((k, make(i)) for i, k in enumerate(keys)) + tuple(
        ("softmax_backward_wrong_axis", _wrong_axis(j)) for j in range(4))


def _wrong_axis(j):
    def variant(args, dout, rc, ref):
        s, axis = rc
        if j >= s.ndim or j == axis % s.ndim:
            return None
        return {"dx": s * (dout - (dout * s).sum(axis=j, keepdims=True))}
    return variant


def explain_softmax(args, dout, rc, ref, mine):
    """The learner's dx fitted onto the terms s*dout, s*sum(s*dout), s*sum(dout) (shapes of s)."""
    s, axis = rc
    if np.shape(mine["dx"]) != s.shape:
        return ""
    terms = {"the direct term": s * dout,
             "the term through the normalization": s * (s * dout).sum(axis=axis, keepdims=True),
             "a normalization term without the weighting by s": s * dout.sum(axis=axis, keepdims=True)}
    coefs, resid = fit_terms(mine["dx"], terms)
    return describe_fit("dx", coefs, {"the direct term": 1.0, "the term through the normalization": -1.0}, resid)


# ----------------------------------------------------------------------- attention backward
def attention_links(q, k, v, A, scale, dout):
    """The reference backward's links in order. q, k, v, dout: (..., T, d); A: (..., T, T).

    returns: {"dv": A^T dout, "dA": dout v^T, "dS": the softmax backward of dA, "dq", "dk"}.
    """
    dA = dout @ _T(v)
    dS = A * (dA - (dA * A).sum(axis=-1, keepdims=True))
    return {"dv": _T(A) @ dout, "dA": dA, "dS": dS, "dq": scale * dS @ k, "dk": scale * _T(dS) @ q}


def _from_dS(q, k, dS, scale, dv):
    return {"dq": scale * dS @ k, "dk": scale * _T(dS) @ q, "dv": dv}


def _attention_variants(args, dout, rc, ref):
    """[(key, {"dq", "dk", "dv"})]: every wrong attention backward (rc: the reference cache)."""
    q, k, v, A, scale = rc
    L = attention_links(q, k, v, A, scale, dout)
    out = [(key, _from_dS(q, k, dS, scale, L["dv"])) for key, dS in _jvp_variants(A, L["dA"], -1)]
    out.append(("attention_skips_softmax", _from_dS(q, k, L["dA"], scale, L["dv"])))
    dAt = _T(L["dA"])
    out.append(("dA_transposed", _from_dS(q, k, A * (dAt - (dAt * A).sum(axis=-1, keepdims=True)), scale, L["dv"])))
    full = {"dq": L["dq"], "dk": L["dk"], "dv": L["dv"]}
    out += [("missing_scale_backward", {**full, "dq": L["dq"] / scale, "dk": L["dk"] / scale}),
            ("missing_scale_dq", {**full, "dq": L["dq"] / scale}),
            ("missing_scale_dk", {**full, "dk": L["dk"] / scale}),
            ("dk_not_transposed", {**full, "dk": scale * L["dS"] @ q}),
            ("dq_transposed", {**full, "dq": scale * _T(L["dS"]) @ k}),
            ("dv_not_transposed", {**full, "dv": A @ dout}),
            ("scale_twice_backward", {**full, "dq": L["dq"] * scale, "dk": L["dk"] * scale}),
            ("qk_operand_swapped", {**full, "dk": scale * _T(L["dS"]) @ k}),
            ("qk_operand_swapped", {**full, "dq": scale * L["dS"] @ q}),
            ("qk_operand_swapped", {**full, "dq": scale * L["dS"] @ q, "dk": scale * _T(L["dS"]) @ k})]
    return out


def wrong_forward_grads(q, k, v, dout, scale, axis=-1, transpose=False, scores_t=False):
    """The exact gradients {dq, dk, dv} of a wrong attention forward (what a backward consistent
    with that forward returns): scores S = scale q k^T (scale k q^T when scores_t), A = softmax of S
    over ``axis``, out = A v (A^T v when transpose). q, k, v, dout: (..., T, d)."""
    S = scale * (k @ _T(q) if scores_t else q @ _T(k))
    e = np.exp(S - S.max(axis=axis, keepdims=True))
    A = e / e.sum(axis=axis, keepdims=True)
    W = _T(A) if transpose else A                      # out = W v
    dv = _T(W) @ dout
    dW = dout @ _T(v)
    dA = _T(dW) if transpose else dW
    dS = scale * A * (dA - (dA * A).sum(axis=axis, keepdims=True))
    if scores_t:
        return {"dq": _T(dS) @ k, "dk": dS @ q, "dv": dv}
    return {"dq": dS @ k, "dk": _T(dS) @ q, "dv": dv}


ATTENTION_BACKWARD_KEYS = ("softmax_diagonal_jacobian", "softmax_backward_no_sum_term",
                           "softmax_backward_sum_without_s", "softmax_backward_sum_all",
                           "softmax_backward_sign_flipped", "dA_transposed", "scale_twice_backward",
                           "softmax_backward_wrong_axis", "attention_skips_softmax", "missing_scale_backward",
                           "missing_scale_dq", "missing_scale_dk", "dk_not_transposed", "dq_transposed",
                           "dv_not_transposed", "qk_operand_swapped")


def attention_backward_variants():
    """bwd_mistakes of the attention pair: (key, variant) with variant returning the n-th wrong
    backward of that key (the wrong-axis sums: one per axis) or None."""
    def make(key, n):
        def variant(args, dout, rc, ref):
            found = [v for k, v in _attention_variants(args, dout, rc, ref) if k == key]
            return found[n] if n < len(found) else None
        return variant
    return tuple((key, make(key, n)) for key in ATTENTION_BACKWARD_KEYS
                 for n in range({"softmax_backward_wrong_axis": 3, "qk_operand_swapped": 3}.get(key, 1)))


def _dS_terms(A, dA):
    """The pieces a learner's dS is built of (each (..., T, T)), with the reference's coefficients."""
    terms = {"dS's direct term": A * dA, "dS's term through the normalization": A * (A * dA).sum(axis=-1, keepdims=True),
             "dA itself (no softmax)": dA, "a normalization term without the weighting by A":
             A * dA.sum(axis=-1, keepdims=True)}
    return terms, {"dS's direct term": 1.0, "dS's term through the normalization": -1.0}


def explain_attention(args, dout, rc, ref, mine):
    """Which link of dv = A^T dout, dA = dout v^T, dS = softmax backward, dq = scale dS k,
    dk = scale dS^T q breaks first, and which term of dq / dk is missing or off."""
    q, k, v, A, scale = rc
    L = attention_links(q, k, v, A, scale, dout)
    bad = [n for n in ("dv", "dq", "dk") if np.shape(mine[n]) != np.shape(L[n])
           or not np.allclose(mine[n], L[n], rtol=0, atol=1e-6 * np.abs(L[n]).max())]
    if not bad:
        return ""
    text = [f" The links that break: {', '.join(bad)} ({'dv is right' if 'dv' not in bad else 'start with dv'})."]
    if "dv" in bad and np.shape(mine["dv"]) == L["dv"].shape:
        coefs, resid = fit_terms(mine["dv"], {"the right dv": L["dv"], "A dout (A not transposed)": A @ dout})
        text.append(describe_fit("dv", coefs, {"the right dv": 1.0}, resid))
    terms, want = _dS_terms(A, L["dA"])
    for n, side in (("dq", lambda P: scale * P @ k), ("dk", lambda P: scale * _T(P) @ q)):
        if n in bad and np.shape(mine[n]) == L[n].shape:
            named = {f"{t}, carried to {n}": side(P) for t, P in terms.items()}
            coefs, resid = fit_terms(mine[n], named)
            exp = {f"{t}, carried to {n}": c for t, c in want.items()}
            if np.linalg.matrix_rank(np.stack([a.ravel() for a in named.values()], 1)) == len(named):
                text.append(describe_fit(n, coefs, exp, resid) or (
                    f" Your {n} is no combination of the softmax backward's terms: check the links before {n} "
                    f"(dA, then dS) one at a time on a small input."
                    if resid > 1e-6 else ""))
    return "".join(text)

