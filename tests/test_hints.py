"""The hints (``minivit.grading.hints``, ``python -m minivit hint``): three levels for every exercise function,
and every level-3 formula is runnable NumPy code that gives minivit's own result on random float64 inputs."""
import re

import numpy as np
import pytest

from minivit.cli import main as cli
from minivit import layers, optim
from minivit.grading import hints
from minivit.grading import EXERCISE_FUNCTIONS
from minivit.layers import BLOCK_PARAM_NAMES

r = np.random.default_rng(0).standard_normal


def _block_params(D=8, M=12):
    shapes = dict(ln1_gamma=(D,), ln1_beta=(D,), w_qkv=(D, 3 * D), b_qkv=(3 * D,), w_out=(D, D), b_out=(D,),
                  ln2_gamma=(D,), ln2_beta=(D,), w1=(D, M), b1=(M,), w2=(M, D), b2=(D,))
    return {k: r(shapes[k]) * 0.5 + (1.0 if k.endswith("gamma") else 0.0) for k in BLOCK_PARAM_NAMES}


# Per function: a list of (forward inputs, extra inputs of the backward). A backward is compared with
# minivit's backward of minivit's forward on the same inputs; a forward-only function with itself.
FORWARD_INPUTS = {
    "patchify": [dict(x=r((2, 4, 6, 3)), patch_size=2)],
    "linear": [dict(x=r((2, 3, 4)), w=r((4, 5)), b=r(5))],
    "cls_token": [dict(x=r((2, 3, 4)), cls=r((1, 1, 4)))],
    "pos_embed": [dict(x=r((2, 3, 4)), pos=r((1, 3, 4)))],
    "softmax": [dict(x=3 * r((2, 3, 5)), axis=-1), dict(x=3 * r((4, 5)), axis=0)],
    "attention": [dict(q=r((2, 2, 5, 4)), k=r((2, 2, 5, 4)), v=r((2, 2, 5, 4)))],
    "mhsa": [dict(x=r((2, 5, 8)), w_qkv=r((8, 24)), b_qkv=r(24), w_out=r((8, 8)), b_out=r(8), num_heads=2)],
    "layernorm": [dict(x=r((2, 3, 6)) + 2, gamma=1 + r(6), beta=r(6), eps=1e-6),
                  dict(x=r((4, 5)), gamma=r(5), beta=r(5), eps=1e-3)],
    "gelu": [dict(x=3 * r((3, 7)), approximate="tanh"), dict(x=3 * r((3, 7)), approximate="none")],
    "mlp": [dict(x=r((2, 3, 4)), w1=r((4, 6)), b1=r(6), w2=r((6, 4)), b2=r(4), approximate=a)
            for a in ("tanh", "none")],
    "cross_entropy": [dict(logits=3 * r((4, 5)), labels=np.array([0, 4, 2, 2]), label_smoothing=0.0),
                      dict(logits=3 * r((4, 5)), labels=np.array([1, 3, 0, 2]), label_smoothing=0.1),
                      dict(logits=r((3, 5)), labels=np.random.default_rng(1).dirichlet(np.ones(5), 3),
                           label_smoothing=0.2)],
    "encoder_block": [dict(x=r((2, 5, 8)), p=_block_params(), num_heads=2, eps=1e-6, approximate="tanh",
                           dropout=0.0, drop_path=0.0, rng=None, train=False)],
}


def _call(fn, inputs):
    return fn(**inputs)


def _as_tuple(out):
    return out if isinstance(out, tuple) else (out,)


def _close(got, want, where):
    if isinstance(want, dict):
        assert isinstance(got, dict) and set(got) == set(want), where
        for k in want:
            _close(got[k], want[k], f"{where}[{k}]")
        return
    got, want = np.asarray(got, dtype=np.float64), np.asarray(want, dtype=np.float64)
    assert got.shape == want.shape, (where, got.shape, want.shape)
    assert np.allclose(got, want, rtol=1e-9, atol=1e-12), (where, float(np.abs(got - want).max()))


def _cases(function):
    """(inputs of the hint's code, minivit's results) for one exercise function."""
    if function in ("split_heads", "merge_heads", "split_heads_backward", "merge_heads_backward"):
        x4, x3 = r((2, 3, 5, 4)), r((2, 5, 12))
        return {"split_heads": [(dict(x=x3, num_heads=3), (layers.split_heads(x3, 3),))],
                "merge_heads": [(dict(x=x4), (layers.merge_heads(x4),))],
                "split_heads_backward": [(dict(dout=x4), (layers.split_heads_backward(x4),))],
                "merge_heads_backward": [(dict(dout=x3, num_heads=3), (layers.merge_heads_backward(x3, 3),))],
                }[function]
    if function == "adamw_update":
        out = []
        for t, wd in ((1, 0.0), (3, 0.1)):
            w, g, m, v = r(6), r(6), 0.1 * r(6), np.abs(r(6))
            args = dict(w=w.copy(), g=g, m=m.copy(), v=v.copy(), t=t, lr=1e-2, b1=0.9, b2=0.99, eps=1e-8,
                        weight_decay=wd)
            optim.adamw_update(**args)
            out.append((dict(args, w=w, m=m, v=v), (args["w"], args["m"], args["v"])))
        return out
    if function == "warmup_cosine":
        out = []
        for step, total, warm in ((0, 10, 3), (2, 10, 3), (3, 10, 3), (7, 10, 3), (15, 10, 3), (4, 10, 0), (5, 5, 5)):
            args = dict(step=step, total_steps=total, base_lr=1e-3, warmup_steps=warm, min_lr=1e-5)
            out.append((args, (optim.warmup_cosine(**args),)))
        return out
    op, kind = function.rsplit("_", 1)
    fwd, bwd = getattr(layers, f"{op}_forward"), getattr(layers, f"{op}_backward")
    out = []
    for inputs in FORWARD_INPUTS[op]:
        y, cache = _call(fwd, inputs)
        if kind == "forward":
            out.append((inputs, (y,)))
        elif op == "cross_entropy":
            out.append((dict(inputs, dloss=0.7), _as_tuple(bwd(cache, 0.7))))
        else:
            g = r(np.shape(y))
            name = {"linear": "dy", "layernorm": "dy"}.get(op, "dout")
            out.append((dict(inputs, **{name: g}), _as_tuple(bwd(g, cache))))
    return out


@pytest.mark.parametrize("function", EXERCISE_FUNCTIONS)
def test_every_exercise_function_has_three_levels_and_a_formula_that_is_right(function):
    e = hints.entry(function)
    for level in (1, 2, 3):
        text = hints.hint_text(function, level)
        assert text.startswith(f"{function}, hint {level} of 3") and len(text.split()) > 20, (function, level)
    assert len({e["approach"], e["steps"], e["formula"]}) == 3
    for inputs, want in _cases(function):
        got = hints.run_formula(function, **inputs)
        assert len(got) == len(want), function
        for i, (a, b) in enumerate(zip(got, want)):
            _close(a, b, f"{function} result {i} ({e['returns'][i]})")


def test_a_wrong_formula_is_caught():
    """The comparison above can fail: a formula with the LayerNorm mean path dropped differs."""
    e = hints.entry("layernorm_backward")
    saved = e["code"]
    try:
        e["code"] = saved.replace("g - g.mean(axis=-1, keepdims=True) - ", "g - ")
        inputs, want = _cases("layernorm_backward")[0]
        got = hints.run_formula("layernorm_backward", **inputs)
        with pytest.raises(AssertionError):
            _close(got[0], want[0], "dx")
    finally:
        e["code"] = saved


def test_hint_prints_and_returns(capsys):
    text = hints.hint("layernorm_backward", 2)
    assert capsys.readouterr().out.strip() == text.strip()
    assert "dxhat" in text and "--level 3" in text
    assert "mean(g * xhat)" in hints.hint_text("layernorm_backward", 3)
    assert "mean(g * xhat)" not in hints.hint_text("layernorm_backward", 1) + text
    shown = []                                   # a notebook cell ending in hint(...) shows the text once
    text._repr_pretty_(type("Printer", (), {"text": lambda self, t: shown.append(t)})(), False)
    assert shown == [] and isinstance(text, str)


def test_cli_hint(capsys):
    assert cli.main(["hint", "softmax_backward"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("softmax_backward, hint 1 of 3: the approach") and "--level 2" in out
    assert cli.main(["hint", "softmax_backward", "--level", "3"]) == 0
    assert "dx = s * (dout - (dout * s).sum(axis=axis, keepdims=True))" in capsys.readouterr().out


@pytest.mark.parametrize("argv, words", [
    (["hint", "layer_norm_backward"], ["error:", "layer_norm_backward", "layernorm_backward", "warmup_cosine"]),
    (["hint", "softmax_backward", "--level", "4"], ["error:", "level must be 1, 2 or 3, got 4"]),
    (["hint", "softmax_backward", "--level", "0"], ["error:", "level must be 1, 2 or 3, got 0"]),
    (["hint", "softmax_backward", "--level", "two"], ["error:", "--level"]),
    (["hint"], ["error:", "FUNCTION"]),
])
def test_cli_hint_errors(argv, words, capsys):
    assert cli.main(argv) == 2
    captured = capsys.readouterr()
    err = captured.err
    assert err.startswith("error:") and len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    assert all(w.lower() in err.lower() for w in words), err
    assert captured.out == ""


def test_level_is_checked_in_python():
    for bad in (0, 4, "2", True, 2.0):
        with pytest.raises(ValueError, match="level must be 1, 2 or 3"):
            hints.hint_text("gelu_backward", bad)
    with pytest.raises(ValueError, match="choose from"):
        hints.hint("gelu_backwards")


def test_a_failed_check_ends_with_the_hint_command(tmp_path):
    from minivit.grading import grade
    from reference_solutions import write_reference

    f = write_reference(tmp_path, ["layernorm"]) / "ex05_layernorm.py"     # the typed-in reference forward
    f.write_text(f.read_text() + "\n\n"
        "def layernorm_backward(dy, cache):\n"
        "    xhat, rstd, gamma = cache\n"
        "    return dy * gamma * rstd, (dy * xhat).sum(axis=(0, 1)), dy.sum(axis=(0, 1))\n")
    t = grade(["layernorm"], tmp_path)["topics"]["layernorm"]
    for c in t["checks"]:
        if c["status"] in ("fail", "error"):
            assert c["feedback"].endswith(f"stuck? `python -m minivit hint {c['function']}`"), c
        else:
            assert "stuck?" not in c["feedback"], c
    assert [c for c in t["checks"] if c["status"] == "fail"] and t["checks"][0]["status"] == "ok"
    assert "hint layernorm_backward`" in grading_text(t)


def grading_text(t):
    from minivit.grading import format_topic

    return format_topic("layernorm", t)


def _norm(text):
    return re.sub(r"\b[nx]p\.", "", re.sub(r"\s+", "", text).lower()).replace("**", "^")


def _level3_expressions(function):
    """The right-hand sides of level 3's assignments to what the function returns (formula and code)."""
    e = hints.entry(function)
    out = []
    parts = [x for line in (e["formula"] + "\n" + e["code"]).splitlines() for x in re.split(r",\s{2,}|;\s*", line)]
    for line in parts:
        line = line.rstrip(" .,")
        m = re.match(r"\s*(?:'\w+':\s*)?([\w, \[\]\"]+?)\s*=(?!=)\s*(.+)", line)
        if m and any(n.strip() in e["returns"] for n in re.split(r"[, ]+", m.group(1))):
            out.append(m.group(2))
    return [x for x in out if len(_norm(x)) >= 6]


@pytest.mark.parametrize("name", EXERCISE_FUNCTIONS)
def test_hint_levels_climb(name):
    """Level 1 names the idea, level 2 the pieces, level 3 the formula: no level-3 expression in levels 1
    or 2, and (for a backward, whose formula is the exercise) levels 1 and 2 never assemble a returned
    gradient (no `dx = ...` for a gradient the function returns)."""
    e = hints.entry(name)
    low = _norm(e["approach"] + "\n" + e["steps"])
    leaked = [x for x in _level3_expressions(name) if _norm(x) in low]
    assert not leaked, (name, leaked)
    if name.endswith("_backward"):
        text = e["approach"] + "\n" + e["steps"]
        assembled = [n for n in e["returns"] if re.search(rf"(?:^|[\s;,(]){re.escape(n)}\s*=(?!=)", text, re.M)]
        assert not assembled, (name, assembled)


def test_the_climb_check_sees_an_assembly():
    e = hints.entry("layernorm_backward")
    assert _level3_expressions("layernorm_backward")
    assert re.search(r"(?:^|[\s;,(])dx\s*=(?!=)", "dx = dxhat * rstd + dvar", re.M)
    assert any(_norm(x) in _norm(e["formula"] + e["code"]) for x in _level3_expressions("layernorm_backward"))
