"""A grade is evidence of the work (issue 22, items 1, 2 and 5).

* while a function is graded, minivit's own implementation of it is out of reach by any route (an
  import, ``F``, an alias captured at import, ``getattr`` on a module, another module of the
  package, a fresh copy loaded from the source): such a function scores 0, with one message;
* no points without the maths: a do-nothing submission of any kind scores 0;
* the grader's own options fail cleanly (``--timeout``, ``--gradescope``).

Solved files are minivit's reference code typed in (``reference_solutions.write_reference``).
"""
import json
import textwrap

import pytest

from do_nothing import KINDS, write_do_nothing
from minivit import fast
from minivit.cli import main as cli
from minivit.grading import TOPIC_BY_NAME, TOPICS, grade
from reference_solutions import write_reference

# ------------------------------------------------------------ 1. the reference is out of reach
ROUTES = {
    "import": "from minivit.layers.norm import layernorm_forward, layernorm_backward\n",
    "wrapper": """
        from minivit.ops import F

        def layernorm_forward(*a, **k):
            return F.layernorm_forward(*a, **k)

        def layernorm_backward(*a, **k):
            return F.layernorm_backward(*a, **k)
    """,
    "captured_alias": """
        from minivit import ops
        _fwd, _bwd = ops.F.layernorm_forward, ops.F.layernorm_backward

        def layernorm_forward(*a, **k):
            try:
                return _fwd(*a, **k)
            except BaseException:               # swallowing the trap gains nothing either
                return np.zeros_like(a[0]), a

        def layernorm_backward(*a, **k):
            return _bwd(*a, **k)
    """,
    "getattr_on_a_module": """
        import importlib

        def layernorm_forward(*a, **k):
            return getattr(importlib.import_module("minivit.layers"), "layernorm_" + "forward")(*a, **k)

        def layernorm_backward(*a, **k):
            return getattr(importlib.import_module("minivit.layers.norm"), "layernorm_backward")(*a, **k)
    """,
    "another_module": """
        def layernorm_forward(*a, **k):
            from minivit import fast
            return fast.layernorm_forward(*a, **k)

        def layernorm_backward(*a, **k):
            from minivit import modules
            return modules.F.layernorm_backward(*a, **k)
    """,
    "a_fast_path_module": """
        def layernorm_forward(*a, **k):
            from minivit.fast import layers as fast_layers
            return fast_layers.layernorm_forward(*a, **k)

        def layernorm_backward(*a, **k):
            import importlib.util
            import minivit.fast.layers as fl
            spec = importlib.util.spec_from_file_location("fresh_fast", fl.__file__)
            m = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(m)
            return m.layernorm_backward(*a, **k)
    """,
    "fresh_copy": """
        import importlib
        import importlib.util
        import minivit.layers.norm as norm

        def layernorm_forward(*a, **k):
            return importlib.reload(norm).layernorm_forward(*a, **k)

        def layernorm_backward(*a, **k):
            spec = importlib.util.spec_from_file_location("fresh_norm", norm.__file__)
            m = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(m)
            return m.layernorm_backward(*a, **k)
    """,
    "another_program": """
        import pickle, subprocess, sys
        _PROG = ("import sys, pickle; import minivit.layers as L; n, a = pickle.load(sys.stdin.buffer); "
                 "sys.stdout.buffer.write(pickle.dumps(getattr(L, n)(*a)))")

        def _run(name, *a):                      # a fresh Python imports minivit untrapped
            out = subprocess.run([sys.executable, "-c", _PROG], input=pickle.dumps((name, a)), capture_output=True)
            return pickle.loads(out.stdout)

        def layernorm_forward(*a):
            return _run("layernorm_forward", *a)

        def layernorm_backward(*a):
            import os
            os.system("true")
            return _run("layernorm_backward", *a)
    """,
    "source_text": """
        import minivit.layers.norm as norm
        _ns = {}

        def layernorm_forward(*a, **k):
            exec(compile(open(norm.__file__).read(), "mine.py", "exec"), _ns)
            return _ns["layernorm_forward"](*a, **k)

        def layernorm_backward(*a, **k):
            return _ns["layernorm_backward"](*a, **k)
    """,
}


@pytest.mark.parametrize("route", sorted(ROUTES))
def test_reaching_minivits_own_function_scores_zero(tmp_path, route):
    (tmp_path / "ex05_layernorm.py").write_text("import numpy as np\n" + textwrap.dedent(ROUTES[route]))
    t = grade(["layernorm"], tmp_path)["topics"]["layernorm"]
    assert t["points"] == 0 < t["max"] and t["error"] is None, t
    first = t["checks"][0]["feedback"]
    assert "layernorm_forward" in first and "write it yourself" in first, first
    if route in ("import", "wrapper", "captured_alias", "getattr_on_a_module"):
        assert first.startswith("layernorm_forward calls minivit's own layernorm_forward; write it yourself")


def test_one_import_line_per_file_scores_zero_and_composites_keep_F(tmp_path):
    """Re-exporting minivit's functions scored 96/96; now 0. A file that calls F for *other*
    topics' functions (the typed-in block: F.layernorm_forward, F.mhsa_forward...) keeps full marks."""
    for t in TOPICS:
        mod = "minivit.optim" if t.name == "optim" else "minivit.layers"
        (tmp_path / t.file).write_text(f"from {mod} import {', '.join(t.functions)}  # noqa: F401\n")
    report = grade(path=tmp_path)
    assert report["total"] == 0 < report["max"]
    for name, t in report["topics"].items():
        f = TOPIC_BY_NAME[name].functions[0]
        assert any(f"calls minivit's own {f}" in c["feedback"] for c in t["checks"]), (name, t["checks"][0])
    solved = write_reference(tmp_path / "solved", ["block", "multihead"])
    assert "F.layernorm_forward" in (solved / "ex08_block.py").read_text()
    report = grade(["block", "multihead"], solved)
    assert report["total"] == report["max"] > 0


def test_a_bug_through_the_reference_in_a_helper_is_charged_once(tmp_path):
    """The MLP calls the learner's gelu, which wraps minivit's: gelu scores 0, the MLP keeps its points."""
    d = write_reference(tmp_path, ["mlp"])
    f = d / "ex06_mlp.py"
    f.write_text(f.read_text() + "\n\nfrom minivit.ops import F\n\n\ndef gelu_forward(x, approximate='tanh'):\n"
                 "    return F.gelu_forward(x, approximate)\n")
    t = grade(["mlp"], d)["topics"]["mlp"]
    gelu = [c for c in t["checks"] if c["name"].startswith("gelu_forward:")]
    assert gelu and all(c["points"] == 0 and "calls minivit's own gelu_forward" in c["feedback"] for c in gelu)
    mlp = [c for c in t["checks"] if c["function"].startswith("mlp")]
    assert mlp and all(c["points"] == c["max"] for c in mlp)


@pytest.mark.parametrize("name", fast.FAST_NAMES)
def test_every_fast_path_is_out_of_reach(tmp_path, name):
    """A solved file whose NAME is re-bound to minivit's fast path of it (minivit/fast/: another
    implementation of the exercise functions) loses NAME's checks, and the feedback says why (the
    import itself is refused: the fast paths' files cannot be read while graded)."""
    topic = [t for t in TOPICS if name in t.functions][0]
    d = write_reference(tmp_path, [topic.name])
    f = d / topic.file
    f.write_text(f.read_text() + f"\n\nfrom minivit.fast import {name}  # noqa: E402,F401,F811\n")
    checks = [c for c in grade([topic.name], d)["topics"][topic.name]["checks"] if c["function"].startswith(name)]
    assert checks and all(c["points"] == 0 for c in checks), checks
    assert all("minivit's own" in c["feedback"] for c in checks), checks


# ---------------------------------------------------------------- 2. no points without the maths
@pytest.mark.parametrize("kind", KINDS)
def test_a_do_nothing_submission_scores_zero(tmp_path, kind):
    report = grade(path=write_do_nothing(tmp_path, kind))
    assert report["total"] == 0 < report["max"], {n: t["points"] for n, t in report["topics"].items()}


def test_a_consistency_check_counts_once_its_forward_is_right(tmp_path):
    write_do_nothing(tmp_path, "zeros", ["layernorm"])
    t = grade(["layernorm"], tmp_path, functions=["layernorm_backward"])["topics"]["layernorm"]
    fd = [c for c in t["checks"] if "finite differences" in c["name"]][0]
    assert fd["points"] == 0 and fd["status"] == "fail"
    assert fd["feedback"].startswith("not scored yet: this check compares layernorm_backward with your own "
                                     "layernorm_forward")
    assert fd["feedback"].endswith("hint layernorm_forward`")          # the pointer names the forward at fault
    assert [c["function"] for c in t["checks"]] == ["layernorm_backward"] * len(t["checks"])   # --only kept


# --------------------------------------------------------------- 5. the grader's options fail cleanly
@pytest.mark.parametrize("value", ["3e6", "1e10", "inf", "nan"])
def test_a_timeout_out_of_range_exits_2_naming_the_range(tmp_path, capsys, value):
    assert cli.main(["grade", "optim", "--path", str(tmp_path), "--timeout", value]) == 2
    err = capsys.readouterr().err
    assert "at most 86400" in err and "OverflowError" not in err and err.count("error:") == 1


def test_gradescope_at_a_folder_or_below_a_file_names_the_option(tmp_path, capsys):
    (tmp_path / "gsdir").mkdir()
    (tmp_path / "README.md").write_text("x")
    for target, problem in ((tmp_path / "gsdir", "is a folder"), (tmp_path / "README.md" / "r.json", "is a file")):
        assert cli.main(["grade", "optim", "--path", str(tmp_path), "--gradescope", str(target)]) == 2
        err = capsys.readouterr().err
        assert "--gradescope" in err and problem in err and err.count("error:") == 1, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["README.md", "gsdir"]      # nothing stray
    assert list((tmp_path / "gsdir").iterdir()) == []


def test_the_report_is_printed_when_the_results_cannot_be_written(tmp_path, capsys, monkeypatch):
    import minivit.grading

    def refuse(path, obj):
        raise PermissionError(13, "Permission denied", str(path))
    monkeypatch.setattr(minivit.grading, "write_json", refuse)
    write_reference(tmp_path, ["optim"])
    code = cli.main(["grade", "optim", "--path", str(tmp_path), "--gradescope", str(tmp_path / "r.json")])
    out, err = capsys.readouterr()
    assert code != 0 and "total" in out and "8/8" in out
    assert "--gradescope: could not write" in err and err.count("error:") == 1


def test_results_are_written_without_a_stray_temporary_file(tmp_path):
    write_reference(tmp_path / "ex", ["optim"])
    out = tmp_path / "gs" / "results.json"
    assert cli.main(["grade", "optim", "--path", str(tmp_path / "ex"), "--gradescope", str(out)]) == 0
    assert json.loads(out.read_text())["score"] == 8 and [p.name for p in out.parent.iterdir()] == ["results.json"]
