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


def test_several_presets_a_recipe_and_the_machine():
    """One run, two presets (a model preset and a recipe's model without its patch dropout); the report
    names the CPU, NumPy's BLAS and its GEMM rate, and each framework's share of that rate."""
    r = run("--preset", "tiny,smoke", "--steps", "1", "--warmup", "0", "--json", "--impl", "fast")
    assert r.returncode == 0, r.stderr
    runs = json.loads(r.stdout)["runs"]
    assert [x["preset"] for x in runs] == ["tiny", "smoke"]
    assert "recipe" in runs[1]["preset_note"]
    for x in runs:
        assert x["cpu_model"] and x["blas"]["name"]
        assert x["gemm_gflop_per_s_before"] > 0 and x["gemm_gflop_per_s_after"] > 0
        assert set(x["results"]) == {"minivit fast", "PyTorch"}
        assert all(v["share_of_gemm_rate"] > 0 for v in x["results"].values())
        assert x["check_first_step_grad_max_rel_diff"] < 1e-4


def test_minivit_root_imports_another_checkout(tmp_path):
    """--minivit-root: minivit comes from the given checkout (here a copy of this one)."""
    import shutil

    shutil.copytree(SCRIPT.parents[1] / "minivit", tmp_path / "minivit",
                    ignore=shutil.ignore_patterns("__pycache__", "*.so"))
    r = run("--steps", "1", "--warmup", "0", "--json", "--impl", "reference", "--minivit-root", str(tmp_path))
    assert r.returncode == 0, r.stderr
    report = json.loads(r.stdout)
    assert report["minivit_root"] == str(tmp_path.resolve())
    assert report["versions"]["minivit_file"].startswith(str(tmp_path.resolve()))


def test_unknown_preset_says_so():
    r = run("--preset", "nope", "--steps", "1")
    assert r.returncode != 0 and "unknown preset 'nope'" in r.stderr


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

