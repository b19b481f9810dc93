"""The fused GPU kernels without a GPU: they compile (NVRTC through ctypes, no CuPy), the switch
and the table choose them as documented, the verification harness works, and the fused ops
functions keep the plain caches and random draws (kernels replaced by NumPy stand-ins).
On a GPU (marked ``gpu``): every kernel against its plain twin, for real."""
import json
import re

import numpy as np
import pytest

import fused_standins
import nvrtc
from minivit import fast, ops
from minivit.fast import fused
from minivit.fast.fused import kernels as fused_kernels
from minivit.fast.fused import ops as fused_ops
from minivit.fast.fused import verification as fused_verify
from minivit.backend import gpu_available
from minivit.model import ViT, ViTConfig

NVRTC = nvrtc.load()
needs_nvrtc = pytest.mark.skipif(NVRTC is None, reason="the NVRTC library of the nvidia-cuda-nvrtc-cu12 wheel "
                                                       "(a dev dependency) was not found: pip install -e '.[dev]'")


# ------------------------------------------------------------------ compiling, without CuPy
@needs_nvrtc
@pytest.mark.parametrize("arch, extra", [("compute_90", []), ("compute_80", ["-std=c++11"])])
def test_every_kernel_compiles_to_ptx(arch, extra):
    log = []
    ptx = nvrtc.compile_ptx(NVRTC, fused_kernels.source(), [f"-arch={arch}", *extra], "fused_kernels.cu", log)
    assert "warning" not in log[0].lower(), log[0]
    assert f".target sm_{arch.split('_')[1]}" in ptx
    entries = set(re.findall(r"\.entry\s+(\w+)", ptx))
    assert entries == set(fused_kernels.kernel_names())        # every one, by its extern "C" name
    assert len(entries) == 2 * len(fused_kernels.KERNELS) == 22


@needs_nvrtc
def test_a_compile_error_comes_with_the_log():
    with pytest.raises(nvrtc.NvrtcError, match=r"NVRTC_ERROR_COMPILATION[\s\S]*undefined_thing"):
        nvrtc.compile_ptx(NVRTC, 'extern "C" __global__ void k(float* x) { x[0] = undefined_thing; }')


def test_every_kernel_has_a_launcher_a_case_and_a_user():
    names = set(fused_kernels.KERNELS)
    assert set(fused_kernels.LAUNCHERS) == names == set(fused_verify.CASES) == set(fused_standins.LAUNCHERS)
    assert {k for needs in fused_ops.NEEDS.values() for k in needs} == names
    assert set(fused_ops.NEEDS) <= set(ops.FUNCTION_NAMES)


# ------------------------------------------------------------------------ switch and table
def test_default_is_verified_and_the_empty_table_chooses_nothing(monkeypatch):
    monkeypatch.delenv(fused.ENV_VAR, raising=False)
    monkeypatch.delenv(fused.TABLE_ENV_VAR, raising=False)
    assert fused.mode() == "verified"
    assert fused.chosen() == frozenset() and fused.functions() == {}
    assert fast.functions().keys() == fast.FUNCTIONS.keys()      # --impl fast: the CPU paths only


def test_committed_table_entries_are_gpu_checks():
    table = fused.load_table(fused.TABLE_PATH)                  # empty until a GPU has checked a kernel
    for name, entry in table.items():
        assert entry["cupy"] and entry["device"] and entry["date"]
        assert entry["max_rel_error"] <= fused_verify.TOLERANCE["float32"], name


def test_all_none_and_a_table(monkeypatch, tmp_path):
    monkeypatch.setenv(fused.ENV_VAR, "all")
    assert fused.chosen() == set(fused_kernels.KERNELS)
    assert set(fused.functions()) == set(fused_ops.NEEDS)
    assert set(fast.functions()) == set(fast.FUNCTIONS) | set(fused_ops.NEEDS)
    monkeypatch.setenv(fused.ENV_VAR, "None ")                  # case and spaces do not matter
    assert fused.functions() == {}
    table = tmp_path / "t.json"
    table.write_text(json.dumps({"verified": {"softmax_forward": {}, "layernorm_backward": {}}}))
    monkeypatch.setenv(fused.ENV_VAR, "verified")
    monkeypatch.setenv(fused.TABLE_ENV_VAR, str(table))
    assert fused.chosen() == {"softmax_forward", "layernorm_backward"}
    assert set(fused.functions()) == {"softmax_forward"}        # layernorm_backward also needs param_grads


def test_bad_switch_and_bad_tables(monkeypatch, tmp_path):
    monkeypatch.setenv(fused.ENV_VAR, "sometimes")
    with pytest.raises(ValueError, match="MINIVIT_FUSED must be one of none, verified, all, got 'sometimes'"):
        fused.functions()
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"verified": {"warp_drive": {}}}))
    with pytest.raises(ValueError, match="unknown kernels"):
        fused.load_table(bad)
    bad.write_text("{")
    with pytest.raises(ValueError, match="not valid JSON"):
        fused.load_table(bad)
    with pytest.raises(FileNotFoundError):
        fused.load_table(tmp_path / "missing.json")


def test_cli_lists_kernels_and_reports_a_bad_switch(monkeypatch, capsys):
    from minivit.cli.main import main

    monkeypatch.setenv(fused.ENV_VAR, "all")
    assert main(["fused"]) == 0
    out = capsys.readouterr().out
    assert "11 of 11 kernels may run" in out and "on   softmax_forward" in out
    monkeypatch.setenv(fused.ENV_VAR, "bogus")
    assert main(["fused"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: MINIVIT_FUSED must be one of")


def test_cpu_training_step_is_unchanged_with_all_kernels_on(monkeypatch):
    """On NumPy arrays the fused functions hand over to the fast paths: the same numbers, exactly."""
    def step(impl):
        model = ViT(ViTConfig.preset("tiny", dropout=0.1, drop_path=0.2), seed=0).train()
        x = np.random.default_rng(1).standard_normal((4, 32, 32, 3)).astype(np.float32)
        from minivit.backend import make_rng
        from minivit.optim import AdamW
        with ops.use(impl):
            logits = model.forward(x, make_rng(0, 1))
            model.backward(logits - 1.0)
            AdamW(model.named_parameters(), lr=1e-3).step()
        return logits, [p.value.copy() for p in model.parameters()]

    l0, p0 = step(fast.FUNCTIONS)
    monkeypatch.setenv(fused.ENV_VAR, "all")
    impl = fast.functions()
    assert impl["encoder_block_forward"] is fused_ops.encoder_block_forward
    l1, p1 = step(impl)
    assert np.array_equal(l0, l1) and all(np.array_equal(a, b) for a, b in zip(p0, p1))


# --------------------------------------------------------------- the verification harness
def test_verify_harness_with_numpy_standins():
    for name in fused_kernels.KERNELS:
        r = fused.verify(name, xp=np, launchers=fused_standins.LAUNCHERS)
        assert r["ok"], (name, r.get("error"), r["max_rel_error"])
        assert set(r["max_rel_error"]) == {"float32", "float64"} and r["cupy"] is None
        assert max(r["max_rel_error"].values()) < 1e-12          # the stand-ins are the plain code


def test_verify_catches_a_wrong_kernel_and_a_crash():
    wrong = dict(fused_standins.LAUNCHERS)
    wrong["softmax_forward"] = lambda x: fused_standins.softmax_forward(x * 1.001)   # a planted mistake
    r = fused.verify("softmax_forward", xp=np, launchers=wrong)
    assert not r["ok"] and r["max_rel_error"]["float32"] > 1e-5

    def crash(*args, **kwargs):
        raise RuntimeError("CUDA_ERROR_LAUNCH_FAILED")
    r = fused.verify("adamw_update", xp=np, launchers={"adamw_update": crash})
    assert not r["ok"] and "CUDA_ERROR_LAUNCH_FAILED" in r["error"]
    with pytest.raises(ValueError, match="unknown fused kernel"):
        fused.verify("flash_attention", xp=np)


@pytest.mark.skipif(gpu_available(), reason="checks the message given without a GPU")
def test_verify_without_a_gpu_says_so():
    with pytest.raises(RuntimeError, match="CuPy"):
        fused.verify("softmax_forward")


def test_record_only_gpu_results(tmp_path):
    table = tmp_path / "verified.json"
    cpu = fused.verify("gelu_backward", xp=np, launchers=fused_standins.LAUNCHERS)
    with pytest.raises(ValueError, match="only a check on a GPU"):
        fused.record([cpu], table)
    gpu_like = {**cpu, "device": "NVIDIA H200", "cupy": "14.0.0"}          # as a GPU run reports it
    failed = {**gpu_like, "kernel": "softmax_forward", "ok": False}
    assert fused.record([gpu_like, failed], table) == ["gelu_backward"]
    entry = fused.load_table(table)["gelu_backward"]
    assert entry["device"] == "NVIDIA H200" and entry["max_rel_error"] == cpu["max_rel_error"]["float32"]
    assert fused.chosen("verified", fused.load_table(table)) == {"gelu_backward"}


# ----------------------------------------- the fused ops functions, kernels replaced by stand-ins
@pytest.fixture
def standin_kernels(monkeypatch):
    """Pretend NumPy arrays are on the GPU and the kernels are the stand-ins."""
    monkeypatch.setattr(fused_ops, "on_gpu", lambda *arrays: True)
    for name, fn in fused_standins.LAUNCHERS.items():
        monkeypatch.setattr(fused_kernels, f"launch_{name}", fn)


@pytest.mark.parametrize("dropout, drop_path", [(0.0, 0.0), (0.1, 0.0), (0.0, 0.3), (0.1, 0.3)])
def test_fused_ops_keep_plain_caches_and_draws(standin_kernels, dropout, drop_path):
    """A training step of the fused functions (with stand-in kernels) equals the plain step: same
    random draws in the same order (dropout, drop-path), caches the plain backward can read."""
    from minivit.backend import make_rng
    from minivit.optim import AdamW

    def step(impl):
        model = ViT(ViTConfig.preset("tiny", dropout=dropout, drop_path=drop_path), seed=0).to(dtype=np.float64)
        model.train()
        x = np.random.default_rng(1).standard_normal((4, 32, 32, 3))
        with ops.use(impl):
            logits = model.forward(x, make_rng(0, 1))
            dx = model.backward(np.random.default_rng(2).standard_normal(logits.shape))
            AdamW(model.named_parameters(), lr=1e-3, weight_decay=0.05).step()
        return [logits, dx] + [p.value for p in model.parameters()]

    plain = step({})
    fused_run = step(fused.functions("all"))
    for a, b in zip(plain, fused_run):
        np.testing.assert_allclose(b, a, rtol=1e-12, atol=1e-14)


def test_fused_backward_reads_a_plain_cache_and_vice_versa(standin_kernels):
    rng = np.random.default_rng(0)
    x, gamma, beta, dy = rng.standard_normal((3, 5, 8)), rng.standard_normal(8), rng.standard_normal(8), \
        rng.standard_normal((3, 5, 8))
    from minivit import layers

    for fwd, bwd in ((layers.layernorm_forward, fused_ops.layernorm_backward),
                     (fused_ops.layernorm_forward, layers.layernorm_backward)):
        y, cache = fwd(x, gamma, beta)
        for a, b in zip(bwd(dy, cache), layers.layernorm_backward(dy, layers.layernorm_forward(x, gamma, beta)[1])):
            np.testing.assert_allclose(a, b, rtol=1e-12)
    s, cache = fused_ops.softmax_forward(x)
    np.testing.assert_allclose(layers.softmax_backward(dy, cache), fused_ops.softmax_backward(dy, cache), rtol=1e-12)


# ------------------------------------------------------------------------- on a real GPU
@pytest.mark.gpu
@pytest.mark.skipif(not gpu_available(), reason="needs CuPy and a CUDA GPU")
@pytest.mark.parametrize("name", list(fused_kernels.KERNELS))
def test_kernel_matches_its_plain_twin_on_the_gpu(name):
    r = fused.verify(name)
    assert r["ok"], (r.get("error"), r["checks"])


@pytest.mark.gpu
@pytest.mark.skipif(not gpu_available(), reason="needs CuPy and a CUDA GPU")
@pytest.mark.parametrize("dtype, rtol", [(np.float64, 1e-9), (np.float32, 1e-4)])
def test_fused_training_step_matches_the_plain_one_on_the_gpu(dtype, rtol):
    """Every fused kernel at once (MINIVIT_FUSED=all) in a training step with dropout and drop-path:
    the same logits, input gradient and updated parameters as the plain CuPy step."""
    import cupy

    from minivit.backend import make_rng, to_numpy
    from minivit.optim import AdamW

    def step(impl):
        model = ViT(ViTConfig.preset("tiny", dropout=0.1, drop_path=0.3), seed=0).to(xp=cupy, dtype=dtype)
        model.train()
        x = cupy.asarray(np.random.default_rng(1).standard_normal((4, 32, 32, 3)).astype(dtype))
        with ops.use(impl):
            logits = model.forward(x, make_rng(0, 1, xp=cupy))
            dx = model.backward(cupy.asarray(np.random.default_rng(2).standard_normal(logits.shape).astype(dtype)))
            AdamW(model.named_parameters(), lr=1e-3, weight_decay=0.05).step()
        return [to_numpy(a) for a in [logits, dx] + [p.value for p in model.parameters()]]

    for a, b in zip(step({}), step(fused.functions("all"))):
        np.testing.assert_allclose(b, a, rtol=rtol, atol=rtol * np.abs(a).max())
