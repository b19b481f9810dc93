"""benchmarks/gpu_check.py on the CPU: arguments, per-step time limits, going on past failures,
the report, and a --cpu dry run of the steps that work without a GPU."""
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"
sys.path.insert(0, str(BENCH))
import gpu_check  # noqa: E402
from gpu_check import Step, run_steps  # noqa: E402
from gpu_check_report import markdown, write_reports  # noqa: E402

PY = sys.executable


def py(code):
    return lambda ctx: ([PY, "-c", code], {})


def test_arguments(tmp_path, capsys):
    args = gpu_check.parse_args(["--out", str(tmp_path), "--only", "info,train", "--cpu"])
    assert args.cpu and args.only == "info,train" and args.total_s == gpu_check.TOTAL_S < 8 * 60
    for bad, message in ((["--only", "info,warp"], "unknown step(s) warp"),
                         (["--data", str(tmp_path / "none.npz")], "no such file or folder"),
                         (["--total-s", "0"], "must be positive")):
        with pytest.raises(SystemExit) as e:
            gpu_check.parse_args(["--out", str(tmp_path), *bad])
        assert e.value.code == 2 and message in capsys.readouterr().err
    assert [s.name for s in gpu_check.steps()] == ["info", "gradcheck", "fused", "bench_fp32", "bench_tf32",
                                                   "train", "pytest"]           # the order the issue asks for
    assert sum(s.limit_s or 0 for s in gpu_check.steps()) <= gpu_check.TOTAL_S


def test_a_step_past_its_limit_is_cut_with_its_children(tmp_path):
    pidfile = tmp_path / "child.pid"
    code = (f"import subprocess, time; p = subprocess.Popen(['sleep', '60']); open({str(pidfile)!r}, 'w')"
            ".write(str(p.pid)); print('started', flush=True); time.sleep(60)")
    ctx = {"out": str(tmp_path)}
    t0 = time.monotonic()
    r = run_steps([Step("sleepy", "sleeps", 2, py(code))], ctx)["sleepy"]
    assert r["status"] == "timeout" and time.monotonic() - t0 < 20 and r["limit_s"] == 2
    assert "started" in (tmp_path / "logs" / "sleepy.log").read_text()
    time.sleep(0.2)
    assert not running(int(pidfile.read_text()))               # the grandchild went with it


def running(pid):
    """True while pid is a live process (a killed one not yet reaped is a zombie: not running)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    status = Path(f"/proc/{pid}/status")
    return not (status.exists() and "\nState:\tZ" in status.read_text())


def test_goes_on_past_failures_and_reports_everything(tmp_path):
    def bad_parse(ctx, out):
        raise ValueError("no numbers")

    steps = [Step("fails", "exits 3", 30, py("import sys; print('boom'); sys.exit(3)")),
             Step("unparsable", "prints junk", 30, py("print('junk')"), bad_parse),
             Step("skipped", "not here", 30, lambda ctx: "needs a GPU"),
             Step("works", "prints", 30, py("print('42 passed in 1s')"), gpu_check.parse_summary)]
    ctx = {"out": str(tmp_path), "started": "now"}
    res = run_steps(steps, ctx)
    assert [r["status"] for r in res.values()] == ["failed", "ok", "skipped", "ok"]
    assert res["fails"]["returncode"] == 3 and "boom" in res["fails"]["tail"]
    assert res["unparsable"]["parse_error"] == "ValueError: no numbers"
    assert res["works"]["result"] == {"summary": "42 passed in 1s"}
    md, js = write_reports(ctx, tmp_path)
    report = json.loads(js.read_text())
    assert list(report["steps"]) == ["fails", "unparsable", "skipped", "works"]
    text = md.read_text()
    assert "| fails | failed |" in text and "| skipped | skipped | — | 30 | needs a GPU |" in text
    assert "### fails: failed (exit code 3)" in text and "boom" in text


def test_total_time_budget_skips_what_does_not_fit(tmp_path):
    steps = [Step("first", "sleeps 1 s", 30, py("import time; time.sleep(1)")),
             Step("second", "never starts", 30, py("print('ran')"))]
    res = run_steps(steps, {"out": str(tmp_path)}, total_s=5.5)
    assert res["first"]["status"] == "ok" and res["first"]["limit_s"] == pytest.approx(5.5, abs=0.2)
    assert res["second"]["status"] == "skipped" and "no time left" in res["second"]["reason"]


def test_report_tables_from_step_results():
    bench = {"tf32": False, "results": {
        "minivit": {"images_per_s": 2000.0, "tflop_per_s": 10.0, "mfu": 0.15, "first_step_s": 8.5},
        "PyTorch": {"images_per_s": 2500.0, "tflop_per_s": 12.5, "mfu": 0.19, "first_step_s": 1.0}},
        "ratios_over_torch_images_per_s": {"minivit": 0.8}}
    ctx = {"started": "t", "total_s": 400, "steps": {
        "info": {"status": "ok", "seconds": 1, "limit_s": 20, "result": {"gpu": "NVIDIA H200", "cupy": "14.0"}},
        "fused": {"status": "ok", "seconds": 9, "limit_s": 45, "result": {"compile_s": 2.0, "kernels": {
            "softmax_forward": {"ok": True, "float32": 1e-7, "float64": 1e-16},
            "adamw_update": {"ok": False, "float32": 3e-4, "float64": 1e-9}}}},
        "bench_fp32": {"status": "ok", "seconds": 30, "limit_s": 60, "result": bench},
        "train": {"status": "timeout", "seconds": 170, "limit_s": 170, "tail": "killed", "result": {
            "data_kind": "synthetic_cifar stripes", "synthetic": True, "epochs": 4, "epochs_done": 2,
            "test_acc": None, "curve": [{"epoch": "1", "train_loss": "2.2", "test_loss": "2.1", "test_acc": "0.3",
                                         "images_per_s": "1900"}]}}}}
    text = markdown(ctx)
    assert "Machine: gpu NVIDIA H200, cupy 14.0" in text and "driver, memory): —; source tree at commit unknown" in text
    assert "| off | minivit | 2000 | 0.80 | 10.00 | 15.0% | 8.50 |" in text
    assert "| off | PyTorch | 2500 | 1.00 | 12.50 | 19.0% | 1.00 |" in text
    assert "1 of 2 kernels match their plain twins; compiled in 2.0 s" in text
    assert "| adamw_update | 3.0e-04 | 1.0e-09 | FAIL  |" in text
    assert "2 of 4 epochs, no accuracy (synthetic data)" in text and "| 1 | 2.2 | 2.1 | — | 1900 |" in text
    assert "### train: timeout" in text


def test_parse_bench_reads_the_json_after_other_output():
    out = "some warning\n" + json.dumps({"results": {"minivit": {"images_per_s": 5.0}}, "tf32": True}) + "\n"
    ctx = {}
    assert gpu_check.parse_bench(ctx, out)["tf32"] is True and ctx["images_per_s"] == {"minivit": 5.0}


def test_cpu_dry_run(tmp_path):
    """The real steps that work without a GPU, end to end, through the command line."""
    r = subprocess.run([PY, str(BENCH / "gpu_check.py"), "--out", str(tmp_path), "--cpu", "--only", "info,fused,train"],
                       capture_output=True, text=True, timeout=300, env={**os.environ, "MINIVIT_DATA": ""})
    report = json.loads((tmp_path / "report.json").read_text())
    steps = report["steps"]
    assert list(steps) == ["info", "fused", "train"], r.stderr
    assert all(s["status"] == "ok" for s in steps.values()), {k: s.get("tail") for k, s in steps.items()}
    assert r.returncode == 0
    assert steps["info"]["result"]["backend"] == "numpy"
    train = steps["train"]["result"]
    assert train["synthetic"] and train["epochs_done"] == 1 and train["test_acc"] is None
    assert (tmp_path / "synthetic.npz").exists() and (tmp_path / "report.md").read_text().startswith("# minivit GPU check")
