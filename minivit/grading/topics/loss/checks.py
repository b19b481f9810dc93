"""Grading topic `loss`: Softmax cross-entropy with label smoothing: its checks and mistake messages
(the wrong variants are in ``variants.py``). Each check grades all its inputs first, then names
a wrong variant only when it matches the learner on every input (``detect.sure_mistake``); dlogits
is also read by its parts (softmax, target, uniform smoothing term)."""

import math

import numpy as np

from minivit import gradcheck
from minivit.grading.common import (MISTAKES, Check, FD_TOL, Fail, REF, TOL32, TOL64, _call_backward, _call_forward,
    _copy, _describe_args, _fail_with, _grads_tuple, _kind, _mismatch, _rng, pointer)
from minivit.grading.pair import forward_first
from minivit.grading.detect import sure_mistake
from minivit.grading.topics.diagnosis import describe_terms
from minivit.grading.topics.loss.variants import LOSS_FWD_MISTAKES, dlogits_terms, dlogits_variants

MISTAKES.update({
    "loss_not_averaged": "The loss is summed over the batch; it is the mean over the batch (see the docstring).",
    "loss_mean_over_classes": "The loss is averaged over the classes too; sum over the classes, average over the "
                              "batch only.",
    "loss_sign": "The sign is flipped: the loss is minus the mean log-probability of the targets.",
    "missing_log": "The log is missing: cross-entropy uses the log-probabilities of the targets.",
    "label_smoothing_missing": "The label-smoothing term is missing: with label_smoothing > 0 the target mixes the "
                               "one-hot with the uniform distribution (see the docstring), in the loss and in its "
                               "gradient.",
    "label_smoothing_k_minus_1": "Label smoothing spreads its mass over the K - 1 wrong classes here. minivit (like "
                                 "Szegedy et al. and PyTorch) spreads it uniformly over all K classes, the true one "
                                 "included.",
    "label_smoothing_no_uniform": "Label smoothing is half done: the one-hot part is scaled down but the uniform part "
                                  "is missing.",
    "label_smoothing_soft_targets": "Label smoothing is skipped for soft (B, K) targets. It applies to every target "
                                    "distribution, whether it came from integer labels (one-hot) or was given as soft "
                                    "targets.",
    "soft_targets_ignored": "(B, K) float labels are soft targets (mixup, cutmix): use them as the target "
                            "distribution t directly (not their argmax).",
    "int_labels_dtype": "Integer class labels come in any integer dtype (int32 from some loaders, int64 by "
                        "default): tell them from soft targets by their shape (labels.ndim == 1: class indices; "
                        "(B, K): soft targets), not by comparing the dtype with np.int64.",
    "log_of_softmax": "log(softmax(s)) underflows: for a score far below the maximum, softmax gives exactly 0 and "
                      "log(0) = -inf. Compute the log-probabilities directly from the shifted scores, never the log of"
                      " a probability.",
    "dlogits_not_averaged": "dlogits is missing the 1/B of the batch mean.",
    "dlogits_sign": "The sign of dlogits is flipped.",
    "dloss_ignored": "dloss is ignored: the upstream gradient scales dlogits.",
    "dlogits_no_softmax": "dlogits needs the probabilities, not the logits or the log-probabilities.",
})

NEXT_STEP = {
    "cross_entropy_forward": "Next step: print your target t for one row (it should sum to 1) and work out the "
                             "loss of a 2 x 3 example by hand.",
    "cross_entropy_backward": "Next step: on a 2 x 3 example, check that each row of dlogits sums to 0 (the "
                              "probabilities and the target both sum to 1), then compare it entry by entry with your "
                              "derivation.",
}


def _ce_cases(kind):
    rng = _rng("ce-" + kind)
    r = rng.standard_normal
    if kind == "int":
        return [(2 * r((4, 6)), rng.integers(0, 6, 4), 0.0), (2 * r((1, 3)), rng.integers(0, 3, 1), 0.0),
                (2 * r((8, 10)), rng.integers(0, 10, 8))]
    if kind == "smooth":
        return [(2 * r((4, 6)), rng.integers(0, 6, 4), 0.1), (2 * r((3, 5)), rng.dirichlet(np.ones(5), 3), 0.2),
                (2 * r((2, 10)), rng.integers(0, 10, 2), 0.3)]
    if kind == "soft":
        return [(2 * r((3, 5)), rng.dirichlet(np.ones(5), 3), 0.0),
                (2 * r((4, 4)), np.eye(4)[rng.integers(0, 4, 4)] * 0.7 + np.eye(4)[rng.integers(0, 4, 4)] * 0.3)]
    raise ValueError(kind)


def _ce_forward(ns, args):
    res = _call_forward(ns, "cross_entropy_forward", args)
    loss = res[0]
    try:
        value = float(np.asarray(loss, dtype=np.float64).reshape(()))
    except Exception:
        raise Fail(f"cross_entropy_forward must return (loss, cache) with loss a scalar; the loss was {_kind(loss)}")
    return value, res[1]


def _ce_backward(ns, cache, dloss, after):
    """The learner's dlogits for ``cache`` (dloss None: the default); ``after`` names the forward call
    in the message when the result is not one array."""
    b = "cross_entropy_backward"
    res = _call_backward(ns, b, cache) if dloss is None else _call_backward(ns, b, cache, dloss)
    try:
        return _grads_tuple("cross_entropy_backward", res, ("dlogits",))[0]
    except Fail as e:
        raise Fail(f"cross_entropy_backward after {after}: {e}", e.mistake) from None


def _describe_ce(args):
    return (f"cross_entropy_forward({_describe_args('cross_entropy_forward', args)}, "
            f"labels {'soft (B, K)' if args[1].ndim == 2 else 'int (B,)'})")


def _ce_loss_check(kind):
    def run(ns):
        cases = _ce_cases(kind)
        got = [_ce_forward(ns, args)[0] for args in cases]
        want = [REF.cross_entropy_forward(*_copy(args))[0] for args in cases]
        bad = [i for i, (g, w) in enumerate(zip(got, want)) if not abs(g - w) <= TOL64 * max(abs(w), 1e-12)]
        if not bad:
            if kind == "int":
                _int32_labels_check(ns)
            return
        i = bad[0]
        where = f"{_describe_ce(cases[i])}: loss {got[i]:.6g}, expected {want[i]:.6g}."
        key = sure_mistake(dict(enumerate(got)), dict(enumerate(want)),
                           [(k, dict(enumerate(v(*_copy(a)) for a in cases))) for k, v in LOSS_FWD_MISTAKES], TOL64)
        if key:
            _fail_with(where, key, at=F)
        raise Fail(f"{where} ({len(bad)} of {len(cases)} inputs differ.) {NEXT_STEP['cross_entropy_forward']}"
                   f"\n{pointer(F)}")
    return run


def _int32_labels_check(ns):
    """Class indices as int32 (as some loaders give them) must work as int64 ones do: run once the
    int64 labels passed, so a failure here is about the dtype alone."""
    rng = _rng("ce-int32")
    logits, labels = 2 * rng.standard_normal((5, 7)), rng.integers(0, 7, 5)
    want = REF.cross_entropy_forward(logits.copy(), labels)[0]
    call = "cross_entropy_forward(logits (5, 7), labels (5,) of dtype int32, label_smoothing=0.0)"
    try:
        loss, _ = _ce_forward(ns, (logits, labels.astype(np.int32), 0.0))
    except Fail:
        raise
    except Exception as e:
        _fail_with(f"{call} raised {type(e).__name__}: {e} (the same labels as int64 work).", "int_labels_dtype")
    if not abs(loss - want) <= TOL64 * abs(want):
        _fail_with(f"{call}: loss {loss:.6g}, expected {want:.6g} (the same labels as int64 give the right loss).",
                   "int_labels_dtype")


def _ce_backward_check(ns):
    cases = _ce_cases("int")[:2] + _ce_cases("smooth")[:2] + _ce_cases("soft")[:1]
    runs = [(args, dloss) for i, args in enumerate(cases) for dloss in ((None, 2.5) if i in (0, 3) else (None,))]
    got, want = [], []
    for args, dloss in runs:
        _, cache = _ce_forward(ns, args)
        _, ref_cache = REF.cross_entropy_forward(*_copy(args))
        got.append(_ce_backward(ns, cache, dloss, _describe_ce(args)))
        want.append(REF.cross_entropy_backward(ref_cache, 1.0 if dloss is None else dloss))
    problems = [_mismatch("dlogits", g, w) for g, w in zip(got, want)]
    bad = [i for i, p in enumerate(problems) if p]
    if not bad:
        return
    i = bad[0]
    args, dloss = runs[i]
    where = (f"cross_entropy_backward after {_describe_ce(args)}{'' if dloss is None else f', dloss={dloss}'}: "
             f"{problems[i]}.")
    if not _forward_right(ns, args):
        raise Fail(f"{where}\nNext step: {forward_first(F)}\n{pointer(F)}")
    variants = [dlogits_variants(a, 1.0 if d is None else d) for a, d in runs]   # same keys, same order
    candidates = [(key, {r: v[j][1] for r, v in enumerate(variants)}) for j, (key, _) in enumerate(variants[0])]
    key = sure_mistake(dict(enumerate(got)), dict(enumerate(want)), candidates, TOL64)
    if key:
        _fail_with(where, key, at=B)
    terms, coefs = dlogits_terms(args, 1.0 if dloss is None else dloss)
    parts = describe_terms("dlogits", got[i], terms, coefs)
    raise Fail(f"{where} {parts + ' ' if parts else ''}{NEXT_STEP['cross_entropy_backward']}\n{pointer(B)}")


F, B = "cross_entropy_forward", "cross_entropy_backward"


def _forward_right(ns, args):
    """The learner's loss for ``args`` matches the reference (else a backward failure is the forward's)."""
    try:
        loss = _ce_forward(ns, _copy(args))[0]
    except Exception:
        return False
    want = REF.cross_entropy_forward(*_copy(args))[0]
    return abs(loss - want) <= TOL64 * max(abs(want), 1e-12)


def _ce_fd_check(ns):
    rng = _rng("ce-fd")
    for args in [(rng.standard_normal((3, 5)), rng.integers(0, 5, 3), 0.1),
                 (rng.standard_normal((2, 4)), rng.dirichlet(np.ones(4), 2), 0.0)]:
        logits = args[0].copy()
        _, cache = _ce_forward(ns, (logits,) + args[1:])
        d = _ce_backward(ns, cache, None, _describe_ce(args))
        num = gradcheck.numerical_gradient(lambda: _ce_forward(ns, (logits,) + args[1:])[0], logits)
        if d.shape != num.shape:
            raise Fail(f"dlogits has shape {tuple(d.shape)}, the logits have {tuple(num.shape)}")
        err = gradcheck.rel_error(d, num)
        if not err < FD_TOL:
            text = (f"cross_entropy_backward disagrees with finite differences of your cross_entropy_forward "
                    f"(label_smoothing={args[2]}, {'soft' if args[1].ndim == 2 else 'integer'} labels): "
                    f"relative error {err:.2e} (limit {FD_TOL:.0e}).")
            at = F if not _forward_right(ns, args) else B
            step = forward_first(F) if at == F else ("compare dlogits with finite differences of your forward "
                                                       "entry by entry on a 2 x 3 example.")
            raise Fail(f"{text}\nNext step: {step}\n{pointer(at)}")


def _ce_float32_check(ns):
    rng = _rng("ce-32")
    args = (rng.standard_normal((4, 6)).astype(np.float32), rng.integers(0, 6, 4), 0.1)
    loss, cache = _ce_forward(ns, args)
    want, ref_cache = REF.cross_entropy_forward(args[0].astype(np.float64), args[1], 0.1)
    if not abs(loss - want) <= TOL32 * abs(want):
        raise Fail(f"cross_entropy_forward in float32: loss {loss:.6g}, expected {want:.6g} (see the float64 checks)."
                   f"\n{pointer(F)}")
    d = _ce_backward(ns, cache, None, "cross_entropy_forward in float32")
    if d.dtype != np.float32:
        _fail_with(f"cross_entropy_backward returned dlogits as {d.dtype} for float32 logits.", "float64_promotion",
                   at=B)
    problem = _mismatch("dlogits", d, REF.cross_entropy_backward(ref_cache), TOL32)
    if problem:
        raise Fail(f"cross_entropy_backward in float32: {problem} (see the float64 checks).\n{pointer(B)}")


def _ce_large_check(ns):
    """Huge logits: a shifted batch (1e3 + noise: exp overflows without the max subtraction), then
    scores spread over +-1e4 with the target the lowest (log(softmax) underflows to log(0))."""
    rng = _rng("ce-large")
    logits = rng.uniform(-1e4, 1e4, (4, 6))
    labels = np.argmin(logits, axis=1)                        # the worst case: the target has the lowest score
    shifted = (1e3 + rng.standard_normal((3, 5)), rng.integers(0, 5, 3), 0.0)
    for n, args in enumerate((shifted, (logits, labels, 0.0), (logits, labels, 0.1))):
        loss, cache = _ce_forward(ns, args)
        want, ref_cache = REF.cross_entropy_forward(*_copy(args))
        where = f"cross_entropy_forward with logits up to {np.abs(args[0]).max():.0f} (label_smoothing={args[2]}): "
        if not math.isfinite(loss):
            _fail_with(where + f"the loss is {loss}.", "no_max_subtraction" if n == 0 else "log_of_softmax", at=F)
        if not abs(loss - want) <= TOL64 * abs(want):
            raise Fail(where + f"loss {loss:.6g}, expected {want:.6g}.\n{pointer(F)}")
        d = _ce_backward(ns, cache, None, f"cross_entropy_forward with logits up to {np.abs(args[0]).max():.0f}")
        problem = _mismatch("dlogits", d, REF.cross_entropy_backward(ref_cache))
        if problem:
            if not np.all(np.isfinite(np.asarray(d, dtype=np.float64))):
                _fail_with(f"cross_entropy_backward with large logits: {problem}.",
                           "no_max_subtraction" if n == 0 else "log_of_softmax", at=B)
            raise Fail(f"cross_entropy_backward with large logits: {problem}.\n{pointer(B)}")


def checks():
    """This topic's checks, in the order they run."""
    f, b = "cross_entropy_forward", "cross_entropy_backward"
    return [
        Check(f"{f}: integer labels (3 inputs, incl. batch size 1)", (f,), 2, _ce_loss_check("int")),
        Check(f"{f}: label smoothing (integer and soft targets)", (f,), 2, _ce_loss_check("smooth")),
        Check(f"{f}: soft (B, K) targets", (f,), 1, _ce_loss_check("soft")),
        Check(f"{b}: dlogits match the reference (incl. smoothing, soft targets, dloss)", (f, b), 2,
              _ce_backward_check),
        Check(f"{b}: agrees with finite differences of your {f}", (f, b), 1, _ce_fd_check),
        Check(f"{f} / {b}: float32 in, float32 out", (f, b), 1, _ce_float32_check),
        # graded as the forward's check (`grade --only` takes the last function): it is about a stable forward
        Check("cross-entropy: logits up to 1e4 stay finite and correct", (b, f), 1, _ce_large_check),
    ]
