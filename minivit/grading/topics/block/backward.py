"""The encoder block's backward, by its parts (topic `block`): the reference backward with a switch
for each known mistake, the gradients stored under the wrong keys, and the "where" diagnosis (which
link of the chain breaks first; dx as a combination of its four paths).

Shapes: dout, dx (B, T, D); the cache is minivit's (ln1, attn, drop1, path1, ln2, mlp, drop2, path2).
"""
from __future__ import annotations

import numpy as np

from minivit.grading.common import REF, TOL64, _bias_variants
from minivit.grading.topics.diagnosis import describe_terms
from minivit.layers.block import BLOCK_PARAM_NAMES

GRAD_NAMES = ("dx",) + BLOCK_PARAM_NAMES

# the backward's order: each link's gradients, from the output back to the input
CHAIN = (("the MLP (w1, b1, w2, b2)", ("w1", "b1", "w2", "b2")),
         ("the second LayerNorm (ln2_gamma, ln2_beta)", ("ln2_gamma", "ln2_beta")),
         ("the attention (w_qkv, b_qkv, w_out, b_out)", ("w_qkv", "b_qkv", "w_out", "b_out")),
         ("the first LayerNorm (ln1_gamma, ln1_beta)", ("ln1_gamma", "ln1_beta")),
         ("dx", ("dx",)))


def _unmask(d, *caches, skip=False):
    """d through drop_path_backward then dropout_backward (identity when ``skip``: the mistake)."""
    if skip:
        return d
    for c in caches:
        d = REF.dropout_backward(d, c)
    return d


def mlp_path(d, rc, skip_masks=False):
    """The gradient (B, T, D) reaching z' from d (B, T, D) at the block's output through MLP and LN2
    (without the residual). returns: (that gradient, {w1, b1, w2, b2, ln2_gamma, ln2_beta}, dm)."""
    ln1, attn, drop1, path1, ln2, mlp, drop2, path2 = rc
    dm = _unmask(d, path2, drop2, skip=skip_masks)
    dh, w1, b1, w2, b2 = REF.mlp_backward(dm, mlp)
    dz, g2, be2 = REF.layernorm_backward(dh, ln2)
    return dz, dict(w1=w1, b1=b1, w2=w2, b2=b2, ln2_gamma=g2, ln2_beta=be2), dm


def attention_path(d, rc, skip_masks=False):
    """The gradient (B, T, D) reaching x from d (B, T, D) at z' through MSA and LN1 (without the
    residual). returns: (that gradient, {w_qkv, b_qkv, w_out, b_out, ln1_gamma, ln1_beta}, da)."""
    ln1, attn, drop1, path1, ln2, mlp, drop2, path2 = rc
    da = _unmask(d, path1, drop1, skip=skip_masks)
    dh, wq, bq, wo, bo = REF.mhsa_backward(da, attn)
    dx, g1, be1 = REF.layernorm_backward(dh, ln1)
    return dx, dict(w_qkv=wq, b_qkv=bq, w_out=wo, b_out=bo, ln1_gamma=g1, ln1_beta=be1), da


def block_backward(dout, rc, kind="ok"):
    """{dx and every parameter's gradient} of the block, the right way (kind "ok") or with one
    mistake: "no_res1" / "no_res2" / "no_res12" (a residual's gradient missing), "no_masks"
    (dropout/drop-path not undone), "ln_swapped" (the two LayerNorms' gradients swapped), "attn_dout"
    (the attention's backward fed dout instead of dz1)."""
    dz_mlp, g, _ = mlp_path(dout, rc, kind == "no_masks")
    dz1 = dz_mlp if kind in ("no_res2", "no_res12") else dz_mlp + dout
    dx_attn, g_attn, _ = attention_path(dout if kind == "attn_dout" else dz1, rc, kind == "no_masks")
    g.update(g_attn)
    g["dx"] = dx_attn if kind in ("no_res1", "no_res12") else dx_attn + dz1
    if kind == "ln_swapped":
        for p in ("gamma", "beta"):
            g[f"ln1_{p}"], g[f"ln2_{p}"] = g[f"ln2_{p}"], g[f"ln1_{p}"]
    return g


def residual_variant(kind):
    """A bwd_mistakes variant (args, dout, ref_cache, ref_grads) -> {grad name: array}."""
    return lambda a, dout, rc, rg: block_backward(dout, rc, kind)


def bias_variant(name, k):
    """The k-th wrong form of the b2 / b_out gradient: not summed (dy itself, or summed over the batch
    only), or averaged. The dy of b2 is the MLP's upstream gradient, of b_out the attention's."""
    def f(a, dout, rc, rg):
        dy = mlp_path(dout, rc)[2] if name == "b2" else attention_path(mlp_path(dout, rc)[0] + dout, rc)[2]
        return _bias_variants(name, dy, (0, 1))[k][1]
    return f


def misassigned(grads, ref, tol=TOL64):
    """[(key, {name: array})]: gradients stored under another parameter's key (same values as the
    reference's gradient of that other parameter). The key is "layernorm_grads_swapped" when only the
    two LayerNorms' gradients are mixed up, else "grads_misassigned". grads, ref: {name: array}."""
    moved = {}
    for n, g in grads.items():
        if _close(g, ref[n], tol):
            continue
        others = [m for m in ref if m != n and _close(g, ref[m], tol)]
        if len(others) != 1:
            return []
        moved[n] = others[0]
    if not moved:
        return []
    ln = all(n.startswith("ln") and m.startswith("ln") and n[2] != m[2] for n, m in moved.items())
    return [("layernorm_grads_swapped" if ln else "grads_misassigned", {n: ref[m] for n, m in moved.items()})]


def _close(a, b, tol):
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape or not np.all(np.isfinite(a)):
        return False
    return float(np.abs(a - b).max(initial=0.0)) <= tol * max(float(np.abs(b).max(initial=0.0)), 1e-30)


def dx_terms(dout, rc):
    """The four paths of dx [(name, (B, T, D))], each with coefficient 1 in the right dx."""
    m = mlp_path(dout, rc)[0]
    return [("dout (straight through both residuals)", dout),
            ("through the MLP, then the first residual", m),
            ("through the attention, from the second residual", attention_path(dout, rc)[0]),
            ("through the MLP, then the attention", attention_path(m, rc)[0])]


def diagnose(grads, ref, dout, rc, tol=TOL64):
    """The "where" diagnosis: which link of the backward breaks first, and dx by its paths.
    grads, ref: {name: array} (the learner's and minivit's)."""
    lines = []
    for what, names in CHAIN:
        bad = [n for n in names if not _close(grads[n], ref[n], tol)]
        if bad:
            ok = [w for w, _ in CHAIN[:CHAIN.index((what, names))]]
            right = f"{' and '.join(ok)} {'is' if len(ok) == 1 else 'are'} right; " if ok else ""
            lines.append(f"Following the backward from the output: {right}the first wrong link is {what} "
                         f"({', '.join(bad)} differ).")
            break
    parts = describe_terms("dx", grads["dx"], dx_terms(dout, rc), [1.0] * 4)
    if parts:
        lines.append(parts)
    return " ".join(lines)
