"""Grading topic `block`: The pre-norm encoder block: its checks, wrong variants and
mistake messages. The backward's variants and its diagnosis by parts are in ``backward.py``;
dropout in training mode is graded whatever order each branch draws its two masks in."""

import math

import numpy as np

from minivit.backend import make_rng
from minivit.layers.block import BLOCK_PARAM_NAMES
from minivit.grading.common import (MISTAKES, TOL64, Check, Fail, REF, _as_array, _call_backward, _call_forward, _copy,
    _fail_with, _kind, _mismatch, _rng, pointer)
from minivit.grading.detect import is_sure, sure_mistake
from minivit.grading.topics.parts import FORWARD_BLAMED, insert_diagnosis
from minivit.grading.pair import Pair
from minivit.grading.topics.block.backward import (GRAD_NAMES, bias_variant, block_backward, diagnose,
    misassigned, residual_variant)

MISTAKES.update({
    "post_norm": "That is a post-norm block (LayerNorm after the residual add, as in the original Transformer). ViT is"
                 " pre-norm: each branch normalizes its own input, and the residual adds the un-normalized input (see "
                 "the docstring's equations).",
    "missing_residual": "A residual connection is missing (see the docstring's equations).",
    "mlp_reads_input": "The MLP branch must read z', the attention sub-block's output, not x.",
    "layernorm_params_shared": "The second LayerNorm must use its own parameters ln2_gamma, ln2_beta.",
    "args_not_passed": "Pass eps on to F.layernorm_forward and approximate on to F.mlp_forward: the block was "
                       "called with other values than the defaults.",
    "missing_residual_grad": "A residual's gradient is missing in the backward: a residual sends the upstream gradient"
                             " both through its branch and straight to its input, and the two add up.",
    "layernorm_grads_swapped": "The two LayerNorms' gradients are swapped: ln2_gamma / ln2_beta come from the backward"
                               " of the second LayerNorm (with its own cache), ln1_gamma / ln1_beta from the first "
                               "one's.",
    "attention_gets_dout": "The attention sub-block's backward must start from the whole gradient at z' (through LN2 "
                           "and the MLP, plus the residual's), not from dout alone.",
    "grads_misassigned": "Some gradients are stored under another parameter's key. Unpack each backward in its "
                         "return order: F.mlp_backward -> (dx, dw1, db1, dw2, db2), F.mhsa_backward -> (dx, "
                         "dw_qkv, db_qkv, dw_out, db_out), F.layernorm_backward -> (dx, dgamma, dbeta).",
    "dropout_not_applied": "In training mode the output is the block without dropout: pass dropout / drop_path, "
                           "rng and train on to F.dropout_forward and F.drop_path_forward on each branch's output "
                           "(MSA's and the MLP's) before the residual add.",
    "dropout_backward_missing": "The backward does not undo dropout and drop-path: pass each branch's gradient "
                                "through F.drop_path_backward and F.dropout_backward with their caches (the same "
                                "masks as the forward) before the sub-block's backward.",
})

DROPOUT_HINT = ("Apply F.dropout_forward and F.drop_path_forward (with the rng and train flag you were given) to "
                "each branch's output, MSA's and the MLP's, before adding it to the residual; in the backward undo "
                "them in reverse order (F.drop_path_backward, then F.dropout_backward).")


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
        if kind.startswith("default"):          # eps, approximate or both left at their defaults
            eps2 = 1e-6 if kind in ("defaults", "default_eps") else eps
            approx2 = "tanh" if kind in ("defaults", "default_approx") else approx
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


class BlockPair(Pair):
    """The block's pair: its backward is also searched for gradients stored under the wrong keys, and
    a failure nothing names gets the diagnosis by parts (``backward.diagnose``)."""

    def backward_mistakes(self, args, dout, ref_cache, ref_grads, grads, tol=TOL64):
        keys = list(super().backward_mistakes(args, dout, ref_cache, ref_grads, grads, tol))
        if self._forward_right(args):       # a right forward: the wrong forwards' gradients explain nothing
            keys = [k for k in keys if k not in {key for key, _ in self.fwd_mistakes}]
        mine, ref = dict(zip(self.grads, grads)), dict(zip(self.grads, ref_grads))
        keys += [k for k, v in misassigned(mine, ref, tol) if k not in keys and is_sure(mine, ref, v, tol)]
        return keys

    def _forward_right(self, args):
        try:
            out, _ = _call_forward(self._ns, self.fwd, args)
            return not _mismatch("the output", out, REF.encoder_block_forward(*_copy(args))[0])
        except Exception:
            return False

    def check_backward(self, ns):
        self._ns = ns
        try:
            super().check_backward(ns)
        except Fail as e:
            where = self.where(ns) if e.mistake is None and FORWARD_BLAMED not in str(e) else ""
            if not where:
                raise
            raise Fail(insert_diagnosis(str(e), f"\n{where}")) from None

    def where(self, ns):
        """The diagnosis of the first input whose gradients differ ("" when there is none)."""
        try:
            for i, args in enumerate(self.cases()):
                _, cache = _call_forward(ns, self.fwd, args)
                _, rc = REF.encoder_block_forward(*_copy(args))
                dout = np.random.default_rng(i).standard_normal(args[0].shape)
                mine = dict(zip(self.grads, self.learner_grads(ns[self.bwd](dout.copy(), cache))))
                ref = block_backward(dout, rc)
                if any(_mismatch(n, mine[n], ref[n]) for n in self.grads):
                    return diagnose(mine, ref, dout, rc)
        except Exception:
            pass
        return ""


BLOCK = BlockPair(
    "encoder_block_forward", "encoder_block_backward", GRAD_NAMES,
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
        ("args_not_passed", _block_variant("default_eps")),
        ("args_not_passed", _block_variant("default_approx")),
    ),
    bwd_mistakes=(
        ("missing_residual_grad", residual_variant("no_res1")),
        ("missing_residual_grad", residual_variant("no_res2")),
        ("missing_residual_grad", residual_variant("no_res12")),
        ("layernorm_grads_swapped", residual_variant("ln_swapped")),
        ("attention_gets_dout", residual_variant("attn_dout")),
    ) + tuple((key, bias_variant(name, k)) for name in ("b2", "b_out")
              for k, key in enumerate(("bias_grad_not_summed", "bias_grad_not_summed", "grad_mean_not_sum"))),
    derive=("dx",),
    known_zero=lambda a: {"b_qkv": slice(a[0].shape[-1], 2 * a[0].shape[-1])},
)


def _train_reference(args, orders):
    """minivit's block in training mode with each branch drawing its masks in the given order
    (orders: two of "dp" = dropout then drop-path, the reference's, or "pd"). returns: out, cache."""
    x, p, h, eps, approx, pd, pp, rng, train = args
    L = REF

    def branch(a, order):
        masks = {}
        for which in order:
            if which == "d":
                a, masks["d"] = L.dropout_forward(a, pd, rng, train)
            else:
                a, masks["p"] = L.drop_path_forward(a, pp, rng, train)
        return a, masks["d"], masks["p"]
    hh, ln1 = L.layernorm_forward(x, p["ln1_gamma"], p["ln1_beta"], eps)
    a, attn = L.mhsa_forward(hh, p["w_qkv"], p["b_qkv"], p["w_out"], p["b_out"], h)
    a, drop1, path1 = branch(a, orders[0])
    z1 = x + a
    hh, ln2 = L.layernorm_forward(z1, p["ln2_gamma"], p["ln2_beta"], eps)
    m, mlp = L.mlp_forward(hh, p["w1"], p["b1"], p["w2"], p["b2"], approx)
    m, drop2, path2 = branch(m, orders[1])
    return z1 + m, (ln1, attn, drop1, path1, ln2, mlp, drop2, path2)


def _learner_block(ns, args, dout):
    """The learner's (out, {grad name: array}) for ``args`` and upstream gradient dout."""
    out, cache = _call_forward(ns, "encoder_block_forward", args)
    grads = _block_unpack("encoder_block_backward", _call_backward(ns, "encoder_block_backward", dout, cache), None)
    return _as_array("the output", out), dict(zip(GRAD_NAMES, grads))


def _dropout_run(ns):
    """The learner's block with dropout 0.2 and drop-path 0.3 in training mode, beside the reference
    drawn in each order. returns: (args(train), dout, out, cache, reference outputs, the matching
    reference's cache or None)."""
    r = _rng("block-dropout").standard_normal
    x, p = r((4, 3, 8)), _block_params(r, 8, 12)

    def args(train=True):
        return (x.copy(), _copy(p), 2, 1e-6, "tanh", 0.2, 0.3, make_rng(5, 3), train)
    dout = np.random.default_rng(2).standard_normal(x.shape)
    out, cache = _call_forward(ns, "encoder_block_forward", args())
    out = _as_array("the output", out)
    refs = [_train_reference(args(), (o1, o2)) for o1 in ("dp", "pd") for o2 in ("dp", "pd")]
    match = [rc for want, rc in refs if not _mismatch("the output", out, want)]
    return args, dout, out, cache, [want for want, _ in refs], (match[0] if match else None)


DROPOUT_CALL = "encoder_block_forward with dropout=0.2, drop_path=0.3, train=True"
FWD, BWD = "encoder_block_forward", "encoder_block_backward"


def _block_dropout_forward_check(ns):
    """Each branch may draw its two masks in either order (the same distribution): the output is
    compared with the reference drawn both ways. The same input with train=False tells whether a
    failure is about dropout at all: only then does the feedback talk about it."""
    args, dout, out, cache, wants, match = _dropout_run(ns)
    if match is not None:
        return
    problem = _mismatch("the output", out, wants[0])
    eval_out, _ = _call_forward(ns, "encoder_block_forward", args(False))
    if _mismatch("the output", eval_out, REF.encoder_block_forward(*args(False))[0]):
        raise Fail(f"{DROPOUT_CALL}: {problem}. It differs with train=False too: fix the float64 checks first."
                   f"\n{pointer(FWD)}")
    if sure_mistake(out, wants[0], [("dropout_not_applied", eval_out)], TOL64):
        _fail_with(f"{DROPOUT_CALL}: {problem}.", "dropout_not_applied", at=FWD)
    raise Fail(f"{DROPOUT_CALL}: {problem} (with train=False it is right).\n{DROPOUT_HINT}\n{pointer(FWD)}")


def _block_dropout_backward_check(ns):
    """The gradients in training mode, against the reference drawn in the learner's order."""
    args, dout, out, cache, wants, match = _dropout_run(ns)
    if match is None:
        raise Fail(f"{DROPOUT_CALL}: the output differs from the reference (see the forward's dropout check), "
                   f"so its backward cannot be checked: fix {FWD} first.\n{pointer(FWD)}")
    grads = dict(zip(GRAD_NAMES, _block_unpack("encoder_block_backward",
                                               _call_backward(ns, "encoder_block_backward", dout, cache), None)))
    ref = block_backward(dout, match)
    bad = [(n, _mismatch(n, grads[n], ref[n])) for n in GRAD_NAMES if _mismatch(n, grads[n], ref[n])]
    if not bad:
        return
    where = f"encoder_block_backward with dropout and drop-path in training mode: {bad[0][1]}."
    eval_out, eval_grads = _learner_block(ns, args(False), dout)
    eval_want, eval_cache = REF.encoder_block_forward(*args(False))
    eval_ref = block_backward(dout, eval_cache)
    if any(_mismatch(n, eval_grads[n], eval_ref[n]) for n in GRAD_NAMES):
        at = FWD if _mismatch("the output", eval_out, eval_want) else BWD
        raise Fail(f"{where} It differs with train=False too: fix the float64 checks first.\n{pointer(at)}")
    if sure_mistake(grads, ref, [("dropout_backward_missing", block_backward(dout, match, "no_masks"))], TOL64):
        _fail_with(where, "dropout_backward_missing", at=BWD)
    raise Fail(f"{where} (With train=False it is right.)\n{DROPOUT_HINT}\n{pointer(BWD)}")


def checks():
    """This topic's checks, in the order they run."""
    f, b = "encoder_block_forward", "encoder_block_backward"
    return BLOCK.checks() + [
        Check("encoder block: dropout and drop-path in training mode (forward)", (b, f), 1,
              _block_dropout_forward_check),          # (b, f): graded as the forward's check (`grade --only`)
        Check("encoder block: dropout and drop-path in training mode (backward)", (f, b), 1,
              _block_dropout_backward_check)]
