"""minivit.yourturn.checks: the notebooks' inline checks (check, your_turn) and the scaffold steps' references."""
import numpy as np
import pytest

from minivit import layers as L
from minivit.grading import stubs
from minivit.grading import default_path
from minivit.yourturn.checks import check, inputs, your_turn
from minivit.yourturn.steps import INPUTS, STEPS
from test_grading import write_reference


def test_check_says_not_yet_right_wrong(capsys):
    want = STEPS["xhat"]()
    assert not check("xhat", None)
    assert check("xhat", want.copy())
    assert not check("xhat", want[0])
    assert not check("xhat", 2 * want)
    assert not check("xhat", want + 1e-3)
    assert not check("xhat", np.full_like(want, np.nan))
    assert not check("nosuchstep", want)
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "xhat: not yet - replace None with your computation"
    assert out[1].startswith("xhat: right (relative error")
    assert out[2] == "xhat: wrong shape - got (3, 5), expected (2, 3, 5)"
    assert out[3].startswith("xhat: wrong - relative error 0.33") and "it is 2 x the right value" in out[3]
    assert out[4].startswith("xhat: wrong - relative error") and "largest difference 0.001" in out[4]
    assert "not finite" in out[5] and out[6].startswith("nosuchstep: unknown step")


def test_inputs_are_fixed_and_fresh():
    a, b = inputs("layernorm"), inputs("layernorm")
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    a[0][...] = 0                                        # a learner's in-place slip does not move the reference
    assert np.array_equal(inputs("layernorm")[0], b[0])
    with pytest.raises(KeyError):
        inputs("nosuch")
    assert set(INPUTS) >= {"patch", "layernorm", "attention", "loss"}


def test_intermediate_steps_add_up_to_minivit():
    """The written-out intermediates agree with minivit's own functions."""
    r = {n: f() for n, f in STEPS.items()}
    assert np.allclose(r["dx_direct"] + r["dx_mean"] + r["dx_var"], r["dx"])
    x, gamma, beta, dy = inputs("layernorm")
    _, cache = L.layernorm_forward(x, gamma, beta)
    assert np.allclose(r["xhat"], cache[0])
    assert np.allclose(L.layernorm_backward(dy, cache)[1], r["dgamma"].reshape(L.layernorm_backward(dy, cache)[1].shape))
    xs, g = inputs("softmax")
    assert np.allclose(r["s"] * (g - r["gs"]), r["softmax_dx"])
    q, k, v, G = inputs("attention")
    assert np.allclose(r["A"], L.attention_forward(q, k, v)[1][3])
    assert np.allclose(r["dS"] @ k / np.sqrt(3), r["dq"])
    assert np.allclose(r["gelu_local"] * inputs("gelu")[1], r["gelu_dx"])
    assert np.allclose(r["mlp_dh"] @ inputs("mlp")[1].T, r["mlp_dx"])
    assert np.allclose(r["mhsa_dqkv"] @ inputs("mhsa")[1].T, r["mhsa_dx"])
    assert np.allclose(np.exp(r["ce_logp"]) - r["ce_target"], 4 * r["ce_dlogits"])
    assert np.isclose(-(r["ce_target"] * r["ce_logp"]).sum() / 4, r["ce_loss"])


def test_your_turn_stubs_reference_and_a_mistake(tmp_path, capsys, monkeypatch):
    stub_dir, ref_dir = tmp_path / "stubs", tmp_path / "ref"
    stubs.write_stubs(stub_dir)
    monkeypatch.setenv("MINIVIT_EXERCISES", str(stub_dir))
    your_turn("layernorm_forward", "layernorm_backward")
    out = capsys.readouterr().out
    assert "layernorm_forward: 0/" in out and "points - not yet" in out and "layernorm_backward: 0/" in out

    write_reference(ref_dir)
    monkeypatch.setenv("MINIVIT_EXERCISES", str(ref_dir))
    your_turn("layernorm_backward")
    assert "layernorm_backward: 5/5 points - all 4 checks pass" in capsys.readouterr().out

    write_reference(ref_dir, "layernorm", """
        def layernorm_forward(x, gamma, beta, eps=1e-6):
            mu = x.mean(-1, keepdims=True)
            xhat = (x - mu) / np.sqrt(x.var(-1, ddof=1, keepdims=True) + eps)
            return gamma * xhat + beta, None
    """)
    your_turn("layernorm_forward")
    out = capsys.readouterr().out
    assert out.startswith("layernorm_forward: 0/") and "FAIL" in out and "mistake: " in out


def test_your_turn_never_raises(tmp_path, capsys, monkeypatch):
    import minivit.yourturn.checks as yt

    (tmp_path / "ex05_layernorm.py").write_text("def layernorm_forward(:\n")
    monkeypatch.setattr(yt, "_folder", lambda: tmp_path)
    your_turn("layernorm_backward")
    your_turn("no_such_function")
    monkeypatch.setattr(yt, "_folder", lambda: 1 / 0)
    your_turn("layernorm_backward")
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("layernorm_backward: 0 points - ex05_layernorm.py could not be graded")
    assert out[1].startswith("no_such_function: not an exercise function")
    assert out[2].startswith("your_turn could not grade layernorm_backward: ZeroDivisionError")


def test_minivit_exercises_selects_the_default_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("MINIVIT_EXERCISES", str(tmp_path))
    assert default_path() == tmp_path
    monkeypatch.delenv("MINIVIT_EXERCISES")
    assert default_path() != tmp_path
