"""Grading topics layernorm, mlp and multihead: the untested regimes and the fairness rules of issue 12
that the catalogue (tests/grading_catalogue/) does not show on its own."""
from pathlib import Path

import numpy as np

from minivit import layers
from minivit.grading import TOL32, TOPIC_BY_NAME, grade
from minivit.grading.topics.layernorm import checks as ln_topic


def _rel(got, want):
    return float(np.abs(np.asarray(got, np.float64) - want).max() / np.abs(want).max())


def _cancelling_layernorm(x, gamma, beta, eps):
    mu = x.mean(axis=-1, keepdims=True)
    var = (x * x).mean(axis=-1, keepdims=True) - mu * mu          # E[x^2] - E[x]^2
    return (x - mu) / np.sqrt(var + eps) * gamma + beta


def test_large_mean_input_separates_two_pass_from_cancelling_variance_by_10x_each_way():
    x, g, b, eps = ln_topic.large_mean_input()
    assert x.dtype == np.float32 and abs(float(x.mean()) - ln_topic.LARGE_MEAN) < 1
    want = layers.layernorm_forward(x.astype(np.float64), g.astype(np.float64), b.astype(np.float64), eps)[0]
    ref_err = _rel(layers.layernorm_forward(x, g, b, eps)[0], want)
    cancel_err = _rel(_cancelling_layernorm(x, g, b, eps), want)
    assert ref_err * 10 <= TOL32, ref_err                 # the reference passes with >= 10x margin
    assert cancel_err >= 10 * TOL32, cancel_err           # the cancelling form fails by >= 10x


def _check(t, start):
    return next(c for c in t["checks"] if c["name"].startswith(start))


CATALOGUE = Path(__file__).resolve().parent / "grading_catalogue"


def _grade_edited(tmp_path, topic, case, edits):
    """Grade catalogue case ``case`` (a learner's file) with the (old, new) text ``edits`` applied."""
    src = (CATALOGUE / case).read_text()
    for old, new in edits:
        assert old in src, old
        src = src.replace(old, new)
    (tmp_path / TOPIC_BY_NAME[topic].file).write_text(src)
    return grade([topic], tmp_path)["topics"][topic]


def test_mhsa_fd_check_accepts_a_consistent_pair_whose_key_bias_matters(tmp_path):
    """q/k/v read as (B, T, h, 3, d) in the forward and written back the same way in the backward:
    the key bias is no longer the key's, its gradient is not zero, and the backward is still the
    exact gradient of this forward. The finite-difference check passes (the old check said "the forward
    and the backward do not describe the same function"), but counts only once the forward is right
    (issue 22: no points without the maths), and says so."""
    t = _grade_edited(tmp_path, "multihead", "multihead__qkv_heads_first.py",
                      [(".transpose(1, 3, 0, 2, 4).reshape(B, T, 3 * D)", ".transpose(1, 3, 2, 0, 4).reshape(B, T, 3 * D)")])
    assert _check(t, "mhsa_forward: matches")["mistake"] == "qkv_layout"
    fd = _check(t, "mhsa_backward: agrees with finite differences")
    assert fd["feedback"].startswith("not scored yet: this check compares mhsa_backward with your own "
                                     "mhsa_forward"), fd["feedback"]
    assert "do not describe the same function" not in fd["feedback"] and fd["points"] == 0


def test_a_gelu_bug_is_charged_to_gelu_only(tmp_path):
    """The MLP calls the learner's own (wrong) gelu_backward: GELU's check names the mistake, the MLP
    checks keep their points (they pass with the reference GELU) and name nothing."""
    t = _grade_edited(tmp_path, "mlp", "mlp__gelu_bwd_missing_3.py", [])
    assert _check(t, "gelu_backward: gradients")["mistake"] == "gelu_inner_derivative"
    for c in t["checks"]:
        if c["name"].startswith("mlp"):
            assert c["points"] == c["max"] and not c["mistake"], c
    assert any("gelu_backward" in (c.get("caused_by") or "") for c in t["checks"] if c["name"].startswith("mlp"))


def test_layernorm_dx_off_by_an_odd_factor_is_not_named_but_its_term_is_pointed_at(tmp_path):
    t = _grade_edited(tmp_path, "layernorm", "layernorm__dx_var_term_plus.py",
                      [("+ xhat * (g * xhat)", "- 0.7 * xhat * (g * xhat)")])
    c = _check(t, "layernorm_backward: gradients")
    assert c["status"] == "fail" and c["mistake"] is None
    assert "the term through the variance is scaled by 0.7" in c["feedback"]


def test_mhsa_backward_feedback_names_the_first_broken_link(tmp_path):
    t = _grade_edited(tmp_path, "multihead", "multihead__dqkv_k_before_q.py",
                      [("np.stack([dk, dq, dv])", "np.stack([dq, dk, 0.5 * dv])")])
    c = _check(t, "mhsa_backward: gradients")
    assert c["mistake"] is None and "the columns of dv are wrong" in c["feedback"], c["feedback"]


def test_hard_coded_eps_is_not_told_eps_belongs_inside_the_sqrt(tmp_path):
    t = _grade_edited(tmp_path, "layernorm", "layernorm__eps_hardcoded_1e5.py", [])
    named = {c["mistake"] for c in t["checks"] if c["mistake"]}
    assert named == {"eps_argument_ignored"}, named


def test_a_wrong_layernorm_backward_costs_the_forward_nothing(tmp_path):
    """The large-mean float32 check is graded under the forward: a backward that is wrong anyway
    (here: no variance term) is charged by the backward's checks, not again under the forward."""
    case = Path(__file__).resolve().parent / "grading_catalogue" / "layernorm__dx_no_var_path.py"
    (tmp_path / TOPIC_BY_NAME["layernorm"].file).write_text(case.read_text())
    checks = grade(["layernorm"], path=tmp_path)["topics"]["layernorm"]["checks"]
    forward = [c for c in checks if c["function"] == "layernorm_forward"]
    assert forward and all(c["points"] == c["max"] for c in forward), forward
    assert any(c["points"] < c["max"] for c in checks if c["function"] == "layernorm_backward")


def test_a_raising_layernorm_backward_costs_the_forward_nothing(tmp_path):
    case = Path(__file__).resolve().parent / "grading_catalogue" / "layernorm__dx_no_var_path.py"
    text = case.read_text().replace("def layernorm_backward(dout, cache):", "def layernorm_backward(dout, cache):\n    undefined_name")
    text = text.replace("def layernorm_backward(dy, cache):", "def layernorm_backward(dy, cache):\n    undefined_name")
    assert "undefined_name" in text
    (tmp_path / TOPIC_BY_NAME["layernorm"].file).write_text(text)
    checks = grade(["layernorm"], path=tmp_path)["topics"]["layernorm"]["checks"]
    assert all(c["points"] == c["max"] for c in checks if c["function"] == "layernorm_forward"), checks
