"""Diagnosing a gradient by its parts (minivit/grading/topics/parts.py) for the patch, tokens and
attention topics: the least-squares fit onto the reference's terms says which term is missing, of
the wrong sign or scaled, and the feedback of an unnamed failure carries that sentence."""
import numpy as np

from minivit.grading import grade
from minivit.grading.topics.parts import describe_fit, fit_terms
from reference_solutions import render_solution



def _terms():
    r = np.random.default_rng(0).standard_normal
    return {"a": r((3, 4)), "b": r((3, 4))}


def test_fit_names_the_missing_the_flipped_and_the_scaled_term():
    t = _terms()
    want = {"a": 1.0, "b": -1.0}
    cases = {"is missing": t["a"], "has the wrong sign": t["a"] + t["b"], "is scaled by 0.5": t["a"] - 0.5 * t["b"]}
    for phrase, got in cases.items():
        coefs, resid = fit_terms(got, t)
        text = describe_fit("dx", coefs, want, resid)
        assert f"the term [b] {phrase}" in text, text
        assert "[a]" not in text.split(":")[-1], text        # the right term is not blamed


def test_fit_says_nothing_when_it_does_not_explain_the_result():
    t = _terms()
    coefs, resid = fit_terms(t["a"] - t["b"], t)
    assert describe_fit("dx", coefs, {"a": 1.0, "b": -1.0}, resid) == ""          # the reference itself
    other = np.random.default_rng(1).standard_normal((3, 4))
    coefs, resid = fit_terms(other, t)
    assert resid > 1e-6 and describe_fit("dx", coefs, {"a": 1.0, "b": -1.0}, resid) == ""


def _grade(tmp_path, topic, file, names, code):
    """Grade ``topic``'s file: minivit's reference code typed in (``render_solution``; ``names``: the
    functions kept from it), then ``code``, which replaces the others."""
    (tmp_path / file).write_text(render_solution(topic) + "\n\n" + code)
    return grade([topic], path=tmp_path)["topics"][topic]


def test_attention_backward_feedback_names_the_scaled_row_sum_term(tmp_path):
    code = '''
def attention_backward(dout, cache):
    q, k, v, A, scale = cache
    dv = A.swapaxes(-1, -2) @ dout
    dA = dout @ v.swapaxes(-1, -2)
    dS = A * (dA - 0.5 * (dA * A).sum(axis=-1, keepdims=True))
    return scale * dS @ k, scale * dS.swapaxes(-1, -2) @ q, dv
'''
    t = _grade(tmp_path, "attention", "ex03_attention.py", "softmax_forward, softmax_backward, attention_forward",
               code)
    check = next(c for c in t["checks"] if c["name"].startswith("attention_backward: gradients"))
    assert check["points"] == 0 and check["mistake"] is None
    fb = check["feedback"]
    assert "dv is right" in fb and "[dS's term through the normalization, carried to dq] is scaled by 0.5" in fb, fb
    assert fb.index("scaled by 0.5") < fb.index("Next step:"), fb


def test_linear_backward_feedback_names_a_flipped_dw(tmp_path):
    code = '''
def linear_backward(dy, cache):
    x, w = cache
    x2, dy2 = x.reshape(-1, x.shape[-1]), dy.reshape(-1, dy.shape[-1])
    return (dy2 @ w.T).reshape(x.shape), -(x2.T @ dy2), dy2.sum(axis=0)
'''
    t = _grade(tmp_path, "patch", "ex01_patch_embedding.py",
               "patchify_forward, patchify_backward, linear_forward", code)
    check = next(c for c in t["checks"] if c["name"].startswith("linear_backward: gradients"))
    assert check["mistake"] is None and "the term [the right dw] has the wrong sign" in check["feedback"], check


def test_a_variant_is_named_only_within_the_checks_tolerance(tmp_path):
    """db averaged but also off by 3e-6 relative: within 1e-5 of the "averaged" variant (the old
    detectors' tolerance), not within the checks' 1e-6: points lost, no name."""
    code = '''
def linear_backward(dy, cache):
    x, w = cache
    x2, dy2 = x.reshape(-1, x.shape[-1]), dy.reshape(-1, dy.shape[-1])
    return (dy2 @ w.T).reshape(x.shape), x2.T @ dy2, dy2.mean(axis=0) * (1 + 3e-6)
'''
    t = _grade(tmp_path, "patch", "ex01_patch_embedding.py",
               "patchify_forward, patchify_backward, linear_forward", code)
    check = next(c for c in t["checks"] if c["name"].startswith("linear_backward: gradients"))
    assert check["points"] == 0 and check["mistake"] is None, check
    assert "db differs from the reference" in check["feedback"] and "Next step:" in check["feedback"]
