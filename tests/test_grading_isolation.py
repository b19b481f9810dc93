"""Student code cannot change the score, nor confuse the grader (issue 22, items 3 and 4).

Run as root (as CI and Gradescope do), the grader runs each topic's child as an unprivileged user
of its own, in its own session, with hard limits, and kills every process of that user after the
topic: the tests of item 3 need root and are skipped otherwise. The child's messages are framed
and checked: a fork, a stray write to the pipe or a huge print costs only that student's topic.
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import pytest

from minivit.cli import main as cli
from minivit.grading import grade
from reference_solutions import write_reference

ROOT = Path(__file__).resolve().parents[1]
needs_root = pytest.mark.skipif(os.name != "posix" or os.geteuid() != 0,
                                reason="isolation needs root (CI and Gradescope run as root)")

STUB_LAYERNORM = """
def layernorm_forward(x, gamma, beta, eps=1e-6):
    raise NotImplementedError

def layernorm_backward(dout, cache):
    raise NotImplementedError
"""

FIND_RESULTS = """
import os, signal, sys, json, time
def results_path():
    args = open(f"/proc/{os.getppid()}/cmdline", "rb").read().split(b"\\0")
    return args[args.index(b"--gradescope") + 1].decode()
def forge(path):
    with open(path, "w") as f:
        json.dump({"score": 96, "output": "forged", "tests": []}, f)
"""


def _cli(path, results, *extra):
    return subprocess.run([sys.executable, "-m", "minivit", "grade", "layernorm", "optim", "--path", str(path),
                           "--gradescope", str(results), *extra], capture_output=True, text=True, timeout=300,
                          cwd=ROOT)


# ---------------------------------------------------------------------------------- 3. isolation
@needs_root
def test_forging_the_results_and_killing_the_grader_fail(tmp_path):
    (tmp_path / "ex05_layernorm.py").write_text(FIND_RESULTS + textwrap.dedent("""
        for attempt in ("forge", "kill"):
            try:
                forge(results_path()) if attempt == "forge" else os.kill(os.getppid(), signal.SIGKILL)
                print(attempt, "worked")
            except OSError as e:
                print(attempt, "refused:", type(e).__name__)
    """) + STUB_LAYERNORM)
    write_reference(tmp_path, ["optim"])
    results = tmp_path / "results" / "results.json"
    proc = _cli(tmp_path, results, "--json")
    assert proc.returncode == 0, proc.stderr
    report, res = json.loads(proc.stdout), json.loads(results.read_text())
    assert res["score"] == report["total"] == 8 and "forged" not in json.dumps(res)
    out = report["topics"]["layernorm"]["output"]
    assert "forge refused" in out and "kill refused" in out, out


@needs_root
def test_a_detached_grandchild_is_killed_before_the_results_are_written(tmp_path):
    shared = Path(tempfile.mkdtemp())              # where the grandchild (another user) can write its pid
    os.chmod(shared, 0o777)
    pidfile = shared / "pid"
    (tmp_path / "ex05_layernorm.py").write_text(FIND_RESULTS + textwrap.dedent(f"""
        path = results_path()
        if os.fork() == 0:
            os.setsid()
            if os.fork() == 0:
                open({str(pidfile)!r}, "w").write(str(os.getpid()))
                for _ in range(3000):            # wait for the grader's results, then rewrite them
                    time.sleep(0.01)
                    try:
                        if os.path.getsize(path) > 0:
                            forge(path)
                    except OSError:
                        pass
            os._exit(0)
        for _ in range(1000):                    # the import goes on once the grandchild runs
            if os.path.exists({str(pidfile)!r}):
                break
            time.sleep(0.01)
    """) + STUB_LAYERNORM)
    results = tmp_path / "results" / "results.json"
    proc = _cli(tmp_path, results)
    assert proc.returncode == 0, proc.stderr
    pid = int(pidfile.read_text())
    shutil.rmtree(shared)
    assert not Path(f"/proc/{pid}").exists() or "State:\tZ" in Path(f"/proc/{pid}/status").read_text()
    assert json.loads(results.read_text())["score"] == 0


@needs_root
def test_the_child_is_unprivileged_limited_and_alone(tmp_path):
    (tmp_path / "ex05_layernorm.py").write_text(textwrap.dedent(f"""
        import os, resource
        print("uid", os.getuid(), "session leader", os.getsid(0) == os.getpid())
        for name in ("RLIMIT_FSIZE", "RLIMIT_NPROC", "RLIMIT_CPU", "RLIMIT_AS", "RLIMIT_NOFILE"):
            what = getattr(resource, name)
            try:
                resource.setrlimit(what, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
                print(name, "raised")
            except (ValueError, OSError):
                print(name, "kept")
        for path in ({str(tmp_path / "planted.txt")!r}, os.path.join(os.path.dirname(__file__), "planted.txt")):
            try:
                open(path, "w").write("x")
                print("wrote", path)
            except OSError:
                print("could not write")
        try:
            open(f"/proc/{{os.getppid()}}/mem", "rb").read(1)
            print("read the grader's memory")
        except OSError:
            print("could not read the grader's memory")
    """) + STUB_LAYERNORM)
    out = grade(["layernorm"], tmp_path)["topics"]["layernorm"]["output"]
    assert "uid 0" not in out and "session leader True" in out, out
    assert out.count("kept") == 5 and "raised" not in out, out
    assert "wrote" not in out and out.count("could not write") == 2 and "could not read the grader's memory" in out
    assert not (tmp_path / "planted.txt").exists()


def test_without_root_the_grader_says_once_that_isolation_is_off(tmp_path, capsys, monkeypatch):
    from minivit.grading import sandbox

    monkeypatch.setattr(sandbox, "isolating", lambda: False)
    write_reference(tmp_path, ["optim"])
    assert cli.main(["grade", "optim", "--path", str(tmp_path)]) == 0
    out, err = capsys.readouterr()
    assert err.count(sandbox.NOTICE) == 1 and "8/8" in out


def test_run_autograder_reports_a_crashed_grader_as_a_crash(tmp_path):
    """A grader that dies after something wrote a results file: the file is not kept."""
    root = tmp_path / "autograder"
    (root / "submission").mkdir(parents=True)
    fake = tmp_path / "python"
    fake.write_text("#!/bin/sh\nfor a; do last=$a; done\n"
                    "echo '{\"score\": 96, \"tests\": []}' > \"$last\"\necho 'killed' >&2\nkill -9 $$\n")
    fake.chmod(0o755)
    env = dict(os.environ, AUTOGRADER_ROOT=str(root), PYTHON=str(fake))
    proc = subprocess.run(["bash", str(ROOT / "exercises" / "gradescope" / "run_autograder")], env=env,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    res = json.loads((root / "results" / "results.json").read_text())
    assert res["score"] == 0 and res["tests"] == [] and "The grader crashed (exit status 137)" in res["output"]


# ----------------------------------------------------------------------------- 4. the protocol
def _layernorm_with(tmp_path, code):
    d = write_reference(tmp_path, ["layernorm", "optim"])
    f = d / "ex05_layernorm.py"
    f.write_text(textwrap.dedent(code) + "\n" + f.read_text())
    return grade(["layernorm", "optim"], d)["topics"]


def _said(topic, text):
    """``text`` is in the topic's error or in its checks' feedback."""
    return text in (topic["error"] or "") or any(text in c["feedback"] for c in topic["checks"])


def test_a_fork_at_import_is_named_and_costs_only_its_topic(tmp_path):
    topics = _layernorm_with(tmp_path, "import os\nos.fork()\n")
    ln = topics["layernorm"]
    assert ln["points"] == 0 and _said(ln, "your code forked a process at import"), ln
    assert topics["optim"]["points"] == topics["optim"]["max"]


def test_garbage_on_the_pipe_costs_only_its_topic(tmp_path):
    topics = _layernorm_with(tmp_path, """
        import os, stat

        def _garbage():
            for fd in range(3, 64):
                try:
                    if stat.S_ISSOCK(os.fstat(fd).st_mode):
                        os.write(fd, b"garbage" * 100)
                except OSError:
                    pass

        _garbage()
    """)
    ln = topics["layernorm"]
    assert ln["points"] == 0 and _said(ln, "your code wrote to the grader's pipe"), ln
    assert topics["optim"]["points"] == topics["optim"]["max"]


def test_correct_code_that_prints_too_much_keeps_its_points_and_is_told(tmp_path):
    topics = _layernorm_with(tmp_path, "print('x' * (9 * 2 ** 20))\n")
    ln = topics["layernorm"]
    assert ln["points"] == ln["max"] and ln["error"] is None, ln
    assert "the limit is 8 MB" in ln["output"] and "remove the prints" in ln["output"]
