"""Feedback that teaches and never tells (issue 23): the grader's words never print an answer, its
advice appears only where its premise holds, and no argument may be changed in place.

* every case of both mistake catalogues (tests/grading_catalogue, tests/grading_heldout) is graded
  whole; no failed check's message contains a derived expression of tests/test_stubs_contract.py's
  DERIVED list, and none points at a function other than the one holding the mistake
  (``score.misleading``: hint pointers, "fix X first", "Next step" lines and diagnoses by parts);
* every MISTAKES message is free of derived expressions (also those no catalogue case reaches);
* the learner's walk of the issue: what the grader says now, quoted in part.
"""
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / "grading_catalogue"))
import score  # noqa: E402

CATALOGUE = HERE / "grading_catalogue"
HELDOUT = HERE / "grading_heldout"
CASES = score.cases(CATALOGUE) + score.cases(HELDOUT)


def _details(report, topic):
    return "\n".join(f"  {c['status']} {c['name']} [{c['points']}/{c['max']}] {c.get('mistake')}:\n"
                     f"    {(c.get('feedback') or '')[:600]}" for c in report["topics"][topic]["checks"])


@pytest.mark.parametrize("case", CASES, ids=[f"{c['path'].parent.name}/{c['path'].stem}" for c in CASES])
def test_no_answer_and_no_false_advice(case):
    report = score.grade_case(case, restrict=False)
    m = score.measure(case, report)
    assert not m["leak"], f"printed an answer: {m['leak']}\n{_details(report, case['TOPIC'])}"
    assert not m["misleading"], (f"advice about a function that is right: {m['misleading']}\n"
                                 f"{_details(report, case['TOPIC'])}")


def test_no_mistake_message_holds_an_answer():
    from minivit.grading import MISTAKES
    found = [(k, score.leaks(v)) for k, v in MISTAKES.items() if score.leaks(v)]
    assert not found, found


def test_the_leak_check_sees_the_old_messages():
    """The messages the issue quotes would be caught."""
    assert score.leaks("dx = rstd * (g - mean(g) - xhat * mean(g * xhat))")
    assert score.leaks("dS = A * (dA - sum(dA * A, axis=-1, keepdims=True))")
    assert score.leaks("dlogits = dloss * (softmax(s) - t) / B")
    assert not score.leaks("dx is missing the term through the mean: every feature of a token moves its mean.")


def _grade(case_file):
    case = score.read_case(CATALOGUE / case_file)
    report = score.grade_case(case, restrict=False)
    return case, report, report["topics"][case["TOPIC"]]["checks"]


def _failed(checks, function=None):
    return [c for c in checks if c["points"] < c["max"] and (function is None or c["function"] == function)]


def test_walk_layernorm_without_the_mean_term():
    _, _, checks = _grade("layernorm__dx_no_mean_path.py")
    c = _failed(checks, "layernorm_backward")[0]
    assert c["mistake"] == "layernorm_dx_no_mean_term"
    assert "dx is missing the term through the mean" in c["feedback"]
    assert "mean(g" not in c["feedback"] and "rstd * (" not in c["feedback"]


def test_walk_scores_as_k_q_T():
    case, report, checks = _grade("attention__scores_k_q.py")
    fb = "\n".join(c["feedback"] for c in _failed(checks))
    assert "subtract each row's maximum" not in fb            # the learner's forward does subtract it
    assert "A * (dA" not in fb and "dS =" not in fb
    for c in _failed(checks):
        assert c["feedback"].endswith("stuck? `python -m minivit hint attention_forward`"), c
    large = next(c for c in checks if c["name"].startswith("attention: large"))
    assert "differs on ordinary inputs too" in large["feedback"]


def test_walk_softmax_backward_over_the_wrong_axis(tmp_path):
    """Summed over the first axis whatever the softmax's axis: the large-input check too fails, and
    must not advise what the code already does (it works from s, never exp of the raw scores)."""
    text = (CATALOGUE / "attention__softmax_bwd_last_axis.py").read_text()
    planted = tmp_path / "attention__softmax_bwd_first_axis.py"
    planted.write_text(text.replace("(dout * s).sum(axis=-1, keepdims=True)", "(dout * s).sum(axis=0, keepdims=True)"))
    case = score.read_case(planted)
    checks = score.grade_case(case, restrict=False)["topics"]["attention"]["checks"]
    assert any(c["name"].startswith("softmax: large") for c in _failed(checks))
    fb = "\n".join(c["feedback"] for c in _failed(checks))
    assert "never exp of the raw scores" not in fb and "compute the backward from the softmax output" not in fb
    for c in _failed(checks):
        assert "hint softmax_backward" in c["feedback"], c
        assert "hint softmax_forward" not in c["feedback"], c


@pytest.mark.parametrize("case_file, function, argument", [
    ("attention__softmax_bwd_dout_in_place.py", "softmax_backward", "dout"),
    ("layernorm__bwd_dy_in_place.py", "layernorm_backward", "dy"),
    ("tokens__cls_bwd_clears_dout.py", "cls_token_backward", "dout"),
    ("mlp__gelu_bwd_dout_in_place.py", "gelu_backward", "dout"),
    ("block__residual_grad_aliases_dout.py", "encoder_block_backward", "dout"),
    ("optim__squares_g_in_place.py", "adamw_update", "g"),
])
def test_an_argument_changed_in_place_is_named(case_file, function, argument):
    _, _, checks = _grade(case_file)
    bad = _failed(checks, function)
    assert bad and all(c["mistake"] == "input_modified" for c in bad), bad
    assert f"{function} changed its input `{argument}` in place" in bad[0]["feedback"]


def test_walk_batched_k_T():
    _, _, checks = _grade("attention__batched_k_T.py")
    c = _failed(checks, "attention_forward")[0]
    assert "`.T` reverses ALL of them" in c["feedback"] or "reverses ALL of them" in c["feedback"]
    for c in _failed(checks):
        assert c["feedback"].rstrip().endswith("hint attention_forward`"), c
