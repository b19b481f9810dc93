"""Tests for the command line (``python -m minivit ...``) and for gradcheck catching wrong gradients."""
import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

from minivit.cli import main as cli
from minivit import layers, ops
from minivit.gradcheck import COMPONENT_TOL, component_checks

ROOT = Path(__file__).resolve().parents[1]


def minivit(*args, timeout=120):
    return subprocess.run([sys.executable, "-m", "minivit", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout)


def test_info():
    r = minivit("info")
    assert r.returncode == 0, r.stderr
    assert "backend" in r.stdout and "numpy" in r.stdout


def test_gradcheck_passes():
    r = minivit("gradcheck")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "passed" in r.stdout and " 0 failed" in r.stdout
    assert "FAIL" not in r.stdout


def test_bench_json():
    r = minivit("bench", "--preset", "tiny", "--batch-size", "8", "--steps", "2", "--warmup", "1", "--json",
                "--device", "cpu")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.strip().splitlines()
    assert len(lines) == 1
    result = json.loads(lines[0])
    assert {"train_images_per_s", "preset", "batch_size", "device"} <= set(result)
    assert result["preset"] == "tiny" and result["batch_size"] == 8 and result["device"] == "cpu"
    assert result["train_images_per_s"] > 0 and math.isfinite(result["train_images_per_s"])


def test_bench_threads_json():
    r = minivit("bench", "--preset", "tiny", "--batch-size", "8", "--steps", "2", "--warmup", "1", "--json",
                "--device", "cpu", "--threads", "2", "--no-stages")
    assert r.returncode == 0, r.stderr
    result = json.loads(r.stdout.strip().splitlines()[-1])
    assert result["threads"] == 2 and result["train_images_per_s"] > 0


def test_bench_rejects_zero_threads():
    from minivit.fast.bench import bench

    with pytest.raises(ValueError, match="threads"):
        bench(preset="tiny", batch_size=4, device="cpu", steps=1, warmup=0, stages=False, threads=0)


def test_bench_unknown_preset():
    r = minivit("bench", "--preset", "nope", "--steps", "1")
    assert r.returncode != 0
    assert "nope" in r.stderr and "invalid choice" in r.stderr


def test_no_command():
    r = minivit()
    assert r.returncode != 0 and "usage" in r.stderr.lower()


# ============================================================== gradcheck catches wrong gradients
def _namespace(**overrides):
    ns = ops.reference()
    for name, fn in overrides.items():
        setattr(ns, name, fn)
    return ns


def layernorm_backward_unbiased(dy, cache):
    """A classic mistake: the variance's gradient with D - 1 instead of D."""
    xhat, rstd, gamma = cache
    D = xhat.shape[-1]
    dx, dgamma, dbeta = layers.layernorm_backward(dy, cache)
    g = dy * gamma
    dx = rstd * (g - g.mean(axis=-1, keepdims=True) - xhat * (g * xhat).sum(axis=-1, keepdims=True) / (D - 1))
    return dx, dgamma, dbeta


def attention_backward_unscaled(dout, cache):
    """Another: forgetting the 1/sqrt(d) scale on the way back."""
    q, k, v, A, scale = cache
    return layers.attention_backward(dout, (q, k, v, A, 1.0))


def _worst(results, component):
    return max(results[component].values())


def test_component_checks_pass_for_reference():
    results = dict(component_checks())
    assert {"layernorm", "attention", "mhsa", "encoder_block"} <= set(results)
    for comp, errs in results.items():
        for name, err in errs.items():
            assert err < (1e-9 if "|value|" in name else COMPONENT_TOL), (comp, name, err)


def test_component_checks_catch_unbiased_variance_in_layernorm():
    results = dict(component_checks(F=_namespace(layernorm_backward=layernorm_backward_unbiased)))
    assert results["layernorm"]["dx"] > 1e-3
    assert results["layernorm"]["dgamma"] < COMPONENT_TOL                # only dx is wrong
    assert _worst(results, "linear") < COMPONENT_TOL


def test_component_checks_catch_missing_attention_scale():
    results = dict(component_checks(F=_namespace(attention_backward=attention_backward_unscaled)))
    errs = results["attention"]
    assert errs["dq"] > 1e-2 and errs["dk"] > 1e-2
    assert errs["dv"] < COMPONENT_TOL                                    # dv does not involve the scale
    assert _worst(results, "softmax") < COMPONENT_TOL


def test_gradcheck_command_fails_on_wrong_gradient(capsys):
    """`python -m minivit gradcheck` exits 1 when a gradient is wrong: the whole-model check runs
    through ops.F, so a broken backward swapped in there fails it."""
    with ops.use({"layernorm_backward": layernorm_backward_unbiased}):
        code = cli.main(["gradcheck"])
    out = capsys.readouterr().out
    assert code == 1
    assert "FAIL" in out and not out.rstrip().endswith(" 0 failed")
    assert ops.F.layernorm_backward is layers.layernorm_backward


def test_gradcheck_command_exit_code_follows_run_all(monkeypatch, capsys):
    import minivit.gradcheck as gc

    monkeypatch.setattr(gc, "run_all", lambda verbose=True, seed=0, device=None: False)
    assert cli.main(["gradcheck"]) == 1
    monkeypatch.setattr(gc, "run_all", lambda verbose=True, seed=0, device=None: True)
    assert cli.main(["gradcheck"]) == 0
    monkeypatch.setattr(gc, "run_all", lambda verbose=True, seed=0, device=None: device == "gpu")
    assert cli.main(["gradcheck", "--device", "gpu"]) == 0         # --device reaches run_all

