"""Check the held-out catalogue without the grader: every case differs from minivit exactly where it says.

For each case file (``<topic>__<slug>.py``) this imports it, runs each of its topic's functions next to
minivit's reference (minivit.layers, minivit.optim) on small random inputs, and asserts that the set of
functions that differ is exactly ``{FUNCTION}`` from the file's header (empty for ``MISTAKE: none``).

How a function is judged (each on its own: the case's other functions of the topic are swapped for the
reference ones while it runs, so a bug is charged once):
  * forward: same output (shape, dtype, values within the regime's tolerance), inputs left unchanged;
  * backward: forward(A), then forward(B), then backward(dout, cache_A) -- so state kept outside the
    cache shows -- compared with the reference's gradients; judged only in the regimes where the
    case's forward matched (a forward bug is not charged to the backward);
  * optimizer: the in-place results w, m, v (g unchanged); the schedule at every step of a few setups.
Regimes: float64, float32, plus edge inputs (huge scores, very negative logits, a large mean in float32,
tiny variance, eps / approximate / smoothing / soft targets / dropout in train and eval).

    python tests/grading_heldout/_validate.py          # exit status 1 if any case is off
"""
import copy
import importlib.util
import re
import sys
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from minivit import layers, optim

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from _regimes import F32, F64, pair_regimes, randn, single_regimes  # noqa: E402

TOPIC_FUNCTIONS = {
    "patch": ["patchify_forward", "patchify_backward", "linear_forward", "linear_backward"],
    "tokens": ["cls_token_forward", "cls_token_backward", "pos_embed_forward", "pos_embed_backward"],
    "attention": ["softmax_forward", "softmax_backward", "attention_forward", "attention_backward"],
    "multihead": ["split_heads", "merge_heads", "split_heads_backward", "merge_heads_backward",
                  "mhsa_forward", "mhsa_backward"],
    "layernorm": ["layernorm_forward", "layernorm_backward"],
    "mlp": ["gelu_forward", "gelu_backward", "mlp_forward", "mlp_backward"],
    "loss": ["cross_entropy_forward", "cross_entropy_backward"],
    "block": ["encoder_block_forward", "encoder_block_backward"],
    "optim": ["adamw_update", "warmup_cosine"],
}
REF = {name: getattr(optim if name in ("adamw_update", "warmup_cosine") else layers, name)
       for names in TOPIC_FUNCTIONS.values() for name in names}
# ------------------------------------------------------------------------------------ comparing
def flat(x):
    """Outputs as a list of leaves: arrays, numbers, and (for dicts) their sorted keys."""
    if isinstance(x, dict):
        return [("keys", tuple(sorted(x)))] + [leaf for k in sorted(x) for leaf in flat(x[k])]
    if isinstance(x, (tuple, list)):
        return [leaf for item in x for leaf in flat(item)]
    return [x]


def differ(got, want, tol):
    """None when ``got`` matches ``want`` (leaf by leaf), else why not."""
    got, want = flat(got), flat(want)
    if len(got) != len(want):
        return f"{len(got)} outputs, expected {len(want)}"
    for i, (g, w) in enumerate(zip(got, want)):
        if isinstance(w, tuple):
            if g != w:
                return f"dict keys {g} != {w}"
        elif isinstance(w, np.ndarray):
            if not isinstance(g, np.ndarray):
                return f"output {i} is a {type(g).__name__}, not an array"
            if g.shape != w.shape or g.dtype != w.dtype:
                return f"output {i}: {g.dtype}{g.shape}, expected {w.dtype}{w.shape}"
            if not np.allclose(g, w, rtol=tol[0], atol=tol[1]):
                return f"output {i}: max error {np.nanmax(np.abs(g - w)) if np.isfinite(g).all() else 'non-finite'}"
        elif not isinstance(g, (float, int, np.floating)) or not np.isclose(g, w, rtol=tol[0], atol=tol[1]):
            return f"output {i}: {g!r}, expected {w!r}"
    return None


def changed(args, originals):
    leaves = [x for x in flat(list(args)) if isinstance(x, np.ndarray)]
    ref = [x for x in flat(list(originals)) if isinstance(x, np.ndarray)]
    return any(not np.array_equal(a, b) for a, b in zip(leaves, ref))


def attempt(fn, *args, **kwargs):
    try:
        with np.errstate(all="ignore"):             # overflow in a learner's softmax is the point, not noise
            return fn(*args, **kwargs), None
    except Exception as e:                          # a crash is a difference, not a validator error
        return None, f"raised {type(e).__name__}: {e}"


# --------------------------------------------------------------------------------------- judging
@contextmanager
def reference_helpers(mod, topic, keep):
    """Run with the case's other functions of ``topic`` (all but ``keep``) swapped for the reference."""
    saved = {n: getattr(mod, n) for n in TOPIC_FUNCTIONS[topic] if n not in keep and hasattr(mod, n)}
    for n in saved:
        setattr(mod, n, REF[n])
    try:
        yield
    finally:
        for n, f in saved.items():
            setattr(mod, n, f)


def call_backward(name, fn, dout, cache):
    return fn(cache, dout) if name == "cross_entropy_backward" else fn(dout, cache)


def judge_pair(mod, topic, fwd, bwd, regimes, why):
    """Record in ``why`` where the case's forward/backward differ; return the number of backward verdicts."""
    judged = 0
    for label, make, tol in regimes:
        args_a, kw = make(1)
        args_b, _ = make(2)
        ref_out, ref_cache = REF[fwd](*copy.deepcopy(args_a), **kw)
        mine = copy.deepcopy(args_a)
        with reference_helpers(mod, topic, keep={fwd}):
            res, err = attempt(getattr(mod, fwd), *mine, **kw)
        if err is None and not (isinstance(res, (tuple, list)) and len(res) == 2):
            err = "did not return (out, cache)"
        if err is None:
            out, cache = res
            err = differ(out, ref_out, tol) or ("modified its input in place" if changed(mine, args_a) else None)
        if err:
            why[fwd].append(f"{label}: {err}")
            continue
        judged += 1
        dout = 0.7 if bwd == "cross_entropy_backward" else randn(np.random.default_rng(3), *ref_out.shape,
                                                                    dtype=ref_out.dtype)
        ref_grads = call_backward(bwd, REF[bwd], copy.deepcopy(dout), ref_cache)
        d = copy.deepcopy(dout)
        with reference_helpers(mod, topic, keep={fwd, bwd}):
            attempt(getattr(mod, fwd), *copy.deepcopy(args_b), **kw)     # a second forward before the backward
            res, err = attempt(call_backward, bwd, getattr(mod, bwd), d, cache)
        err = err or differ(res, ref_grads, tol) or ("modified dout in place" if changed([d], [dout]) else None)
        if err:
            why[bwd].append(f"{label}: {err}")
    return judged


def judge_single(mod, topic, name, make, why):
    args = make(np.random.default_rng(1))
    mine = copy.deepcopy(args)
    with reference_helpers(mod, topic, keep={name}):
        res, err = attempt(getattr(mod, name), *mine)
    err = err or differ(res, REF[name](*copy.deepcopy(args)), F64) or ("modified its input" if changed(mine, args) else None)
    if err:
        why[name].append(f"float64: {err}")


def judge_optim(mod, why):
    g = np.random.default_rng(5)
    for t, lr, wd, eps, betas, dt, tol in [(1, 1e-2, 0.0, 1e-8, (0.9, 0.999), np.float64, F64),
                                           (7, 3e-3, 0.05, 1e-8, (0.9, 0.999), np.float64, F64),
                                           (3, 1e-2, 0.1, 1e-3, (0.8, 0.99), np.float64, F64),
                                           (4, 1e-2, 0.05, 1e-8, (0.9, 0.999), np.float32, F32)]:
        w, grad = randn(g, 3, 4, dtype=dt), randn(g, 3, 4, dtype=dt)
        m = np.zeros_like(w) if t == 1 else randn(g, 3, 4, dtype=dt, scale=0.1)
        v = np.zeros_like(w) if t == 1 else (randn(g, 3, 4, dtype=dt, scale=0.1) ** 2)
        ref = [w.copy(), grad.copy(), m.copy(), v.copy()]
        REF["adamw_update"](ref[0], ref[1], ref[2], ref[3], t, lr, *betas, eps, wd)
        mine = [w.copy(), grad.copy(), m.copy(), v.copy()]
        _, err = attempt(mod.adamw_update, mine[0], mine[1], mine[2], mine[3], t, lr, *betas, eps=eps, weight_decay=wd)
        err = err or differ([mine[0], mine[2], mine[3]], [ref[0], ref[2], ref[3]], tol)
        err = err or ("modified g" if not np.array_equal(mine[1], grad) else None)
        if err:
            why["adamw_update"].append(f"t={t} wd={wd} eps={eps} {dt.__name__}: {err} (outputs: w, m, v)")
    for total, base, warm, low in [(20, 0.1, 0, 0.0), (20, 0.1, 5, 0.0), (30, 0.5, 4, 0.05)]:
        for step in range(total + 5):
            want = REF["warmup_cosine"](step, total, base, warm, low)
            got, err = attempt(mod.warmup_cosine, step, total, base, warmup_steps=warm, min_lr=low)
            err = err or differ(got, want, (1e-12, 1e-15))
            if err:
                why["warmup_cosine"].append(f"step {step} of (total={total}, warmup={warm}, min_lr={low}): {err}")
                break


# ------------------------------------------------------------------------------------------ main
def header(path):
    text = path.read_text()
    fields = dict(re.findall(r"^(TOPIC|FUNCTION|MISTAKE|KIND): (.+)$", text, re.M))
    assert set(fields) == {"TOPIC", "FUNCTION", "MISTAKE", "KIND"}, f"{path.name}: header incomplete"
    assert path.name.startswith(fields["TOPIC"] + "__"), f"{path.name}: file name and TOPIC disagree"
    assert fields["KIND"] in ("forward", "backward", "optimizer"), f"{path.name}: bad KIND"
    assert fields["FUNCTION"] in TOPIC_FUNCTIONS[fields["TOPIC"]] + ["none"], f"{path.name}: bad FUNCTION"
    assert (fields["FUNCTION"] == "none") == (fields["MISTAKE"] == "none"), f"{path.name}: FUNCTION/MISTAKE"
    for name in TOPIC_FUNCTIONS[fields["TOPIC"]]:     # the case implements its topic itself
        assert re.search(rf"^def {name}\(", text, re.M), f"{path.name}: no def {name}"
        assert f"F.{name}(" not in text, f"{path.name}: calls minivit's {name}"
    assert "grading" not in text and "minivit.layers import" not in text.replace(
        "from minivit.layers.activation import _erf as erf", ""), f"{path.name}: imports the grader or layers"
    return fields


def load(path):
    spec = importlib.util.spec_from_file_location(f"heldout_{path.stem}", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def validate(path):
    """(header, set of differing functions, {function: reasons}, backward functions never judged)."""
    h = header(path)
    topic, mod = h["TOPIC"], load(path)
    why = {name: [] for name in TOPIC_FUNCTIONS[topic]}
    unjudged = []
    if topic == "optim":
        judge_optim(mod, why)
    for fwd, bwd, regimes in pair_regimes(topic):
        if not judge_pair(mod, topic, fwd, bwd, regimes, why):
            unjudged.append(bwd)
    if topic == "multihead":
        for name, make in single_regimes().items():
            judge_single(mod, topic, name, make, why)
    return h, {n for n, w in why.items() if w}, why, unjudged


def main():
    cases = sorted(HERE.glob("*__*.py"))
    bad = 0
    per_topic, per_kind = {}, {}
    for path in cases:
        h, differs, why, unjudged = validate(path)
        expected = set() if h["FUNCTION"] == "none" else {h["FUNCTION"]}
        ok = differs == expected
        bad += not ok
        per_topic[h["TOPIC"]] = per_topic.get(h["TOPIC"], 0) + 1
        kind = "none" if h["FUNCTION"] == "none" else h["KIND"]
        per_kind[kind] = per_kind.get(kind, 0) + 1
        first = next((f"{n}: {w[0]}" for n, w in why.items() if w), "")
        note = f"  [not judged: {', '.join(unjudged)}]" if unjudged else ""
        print(f"{'ok ' if ok else 'BAD'} {path.stem:45s} differs: {','.join(sorted(differs)) or '-':24s} {first}{note}")
        if not ok:
            print(f"      expected {sorted(expected) or 'nothing'} to differ; reasons: {why}")
    print(f"\n{len(cases) - bad}/{len(cases)} cases differ exactly where their header says")
    print("per topic:", ", ".join(f"{t} {per_topic.get(t, 0)}" for t in TOPIC_FUNCTIONS))
    print("per kind: ", ", ".join(f"{k} {n}" for k, n in sorted(per_kind.items())))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
