"""benchmarks/torch_vs_minivit.py runs end to end (tiny model, CPU) and refuses bad options clearly."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch")
SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "torch_vs_minivit.py"


def run(*args):
    return subprocess.run([sys.executable, str(SCRIPT), "--preset", "tiny", "--batch-size", "8", "--threads", "2",
                           *args], capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("minivit_threads", ["1", "2"])
def test_side_by_side_json(minivit_threads):
    r = run("--steps", "1", "--warmup", "0", "--json", "--minivit-threads", minivit_threads)
    assert r.returncode == 0, r.stderr
    report = json.loads(r.stdout)
    assert report["device"] == "cpu" and report["minivit_threads"] == int(minivit_threads)
    assert set(report["results"]) == {"minivit", "minivit fast", "PyTorch"}
    # the two models really are the same: same first loss, same gradients
    assert report["check_first_loss"]["minivit"] == pytest.approx(report["check_first_loss"]["PyTorch"], rel=1e-5)
    assert report["check_first_step_grad_max_rel_diff"] < 1e-4
    for r_ in report["results"].values():
        assert r_["images_per_s"] > 0 and r_["tflop_per_s"] > 0 and r_["first_step_s"] > 0
    assert set(report["first_use_s"]) == {"minivit forward+backward", "PyTorch forward+backward"}   # timed apart


def test_peak_tflops_gives_mfu():
    r = run("--steps", "1", "--warmup", "0", "--json", "--impl", "reference", "--peak-tflops", "1.0")
    assert r.returncode == 0, r.stderr
    res = json.loads(r.stdout)["results"]
    assert set(res) == {"minivit", "PyTorch"}
    assert all(0 < v["mfu"] == pytest.approx(v["tflop_per_s"]) for v in res.values())


def test_tf32_needs_a_gpu():
    r = run("--tf32", "--steps", "1")
    assert r.returncode != 0 and "--tf32 is for --device gpu" in r.stderr


def test_gpu_without_cupy_says_so():
    from minivit.backend import gpu_available

    if gpu_available():
        pytest.skip("a GPU is available here")
    r = run("--device", "gpu", "--steps", "1")
    assert r.returncode != 0 and "CuPy" in r.stderr


# ------------------------------------------------------------------ budget_levers.py (issue 15)
def test_budget_levers_settings_and_report(tmp_path):
    import json as _json

    sys_path = str(Path(__file__).resolve().parents[1] / "benchmarks")
    import sys as _sys

    _sys.path.insert(0, sys_path)
    try:
        import budget_levers as bl
    finally:
        _sys.path.remove(sys_path)
    from minivit.recipes import recipe

    assert bl.parse_set(["lr=3e-3", "model.dim=192", "optimizer=muon", "resize=[[0.0,24],[0.5,32]]"]) == {
        "lr": 3e-3, "model.dim": 192, "optimizer": "muon", "resize": [[0.0, 24], [0.5, 32]]}
    cfg = bl.apply_overrides(recipe("cpu"), {"lr": 3e-3, "model.token_drop": 0.5, "augment.flip": False})
    assert cfg.lr == 3e-3 and cfg.model["token_drop"] == 0.5 and cfg.augment["flip"] is False
    with pytest.raises(SystemExit, match="not a TrainConfig field"):
        bl.apply_overrides(recipe("cpu"), {"model.nope": 1})
    with pytest.raises(SystemExit, match="FIELD=VALUE"):
        bl.parse_set(["lr"])
    row = dict(name="a", set={"lr": 0.003}, impl="reference", seed=0, budget_s=480.0, wall_s=470.0, steps=900,
               epochs=2.5, val_acc=0.5, train_images_per_s=300.0, gemm_gflops=280.0, commit="abc")
    log = tmp_path / "levers.jsonl"
    log.write_text("\n".join(_json.dumps({**row, "seed": s, "val_acc": a}) for s, a in ((0, 0.5), (1, 0.46))))
    table = bl.report(log, tmp_path / "levers.md").read_text().splitlines()
    assert len(table) == 3 and "| a | `lr=0.003` | abc | 8 min | 0, 1 | 900 (2.50) | 50.00, 46.00 | 48.00 | 4.00 |" \
        in table[2]
