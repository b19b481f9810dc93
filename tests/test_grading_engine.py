"""The grader's engine (minivit/grading/engine.py, learner.py, child.py, detect.py, report.py).

* the learner's code runs only in a child process: a loop (even inside a bare ``except:``, even at
  the top of the file) is stopped by the topic's time limit and reported as ``timeout``;
* whatever the learner's code prints, ``grade --json`` prints only the JSON report; the output
  goes into the report; an exercise file that patches NumPy, minivit or the grader gains nothing;
* valid code in another form (a list for the pair) keeps full marks; state kept outside the cache
  is caught; a bug in one function is charged once; ``--only`` grades one function;
* the JSON report's fields, Gradescope's results and the sample autograder; the CLI's errors.

Each case grades only the checks it targets (``functions=``), so each costs one child process.
"""
import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np

from minivit.cli import main as cli
from minivit import grading, layers
from minivit.grading import TOPICS, grade
from minivit.grading.detect import is_sure, sure_mistake
from reference_solutions import write_reference

ROOT = Path(__file__).resolve().parents[1]


def exercises(folder, topic=None, code="", only=False):
    """An exercises folder of solved files (the reference code typed in: ``write_reference``),
    ``code`` appended to ``topic``'s file; with ``only`` just that topic's file."""
    folder = write_reference(folder, [topic] if only else None)
    if topic is not None:
        t = grading.TOPIC_BY_NAME[topic]
        (folder / t.file).write_text((folder / t.file).read_text() + "\n\nimport numpy as np\n"
                                     + textwrap.dedent(code))
    return folder


def topic_of(report, name):
    return report["topics"][name]


# ============================================================== time limits and the child process
def test_loop_in_a_bare_except_times_out_and_earlier_checks_keep_their_points(tmp_path):
    d = exercises(tmp_path, "optim", """
        def warmup_cosine(step, total_steps, base_lr, warmup_steps=0, min_lr=0.0):
            while True:
                try:
                    while True:
                        pass
                except:  # noqa: E722  (swallows everything a signal could raise)
                    pass
    """, only=True)
    start = time.monotonic()
    t = topic_of(grade(["optim"], d, timeout=10), "optim")    # adamw_update's checks pass well inside 10 s
    assert time.monotonic() - start < 10 + 60        # cut at its limit, not left to loop (slack for a busy machine)
    adam = [c for c in t["checks"] if c["function"] == "adamw_update"]
    slow = [c for c in t["checks"] if c["function"] == "warmup_cosine"]
    assert adam and all(c["status"] == "ok" for c in adam)
    assert slow and all(c["status"] == "timeout" and c["points"] == 0 for c in slow)
    assert "timed out after 10 s in warmup_cosine" in slow[0]["feedback"]
    assert t["points"] == sum(c["max"] for c in adam)
    assert 10 <= t["seconds"] < 10 + 60


def test_loop_at_the_top_of_the_file_times_out_and_other_topics_are_graded(tmp_path):
    d = exercises(tmp_path, "tokens", "while True:\n    pass\n")
    r = grade(["tokens", "loss"], d, timeout=10)       # loss passes well inside 10 s, even on a busy machine
    tok = topic_of(r, "tokens")
    assert "timed out after 10 s in the import of ex02_tokens.py" in tok["error"]
    assert tok["points"] == 0 and all(c["status"] == "timeout" for c in tok["checks"])
    assert topic_of(r, "loss")["points"] == topic_of(r, "loss")["max"]


def test_exit_and_crash_in_learner_code_are_errors_not_the_graders_end(tmp_path):
    d = exercises(tmp_path, "tokens", """
        import os
        import sys

        def cls_token_forward(x, cls):
            sys.exit(3)

        def pos_embed_forward(x, pos):
            os._exit(1)
    """, only=True)
    t = topic_of(grade(["tokens"], d), "tokens")
    fwd = [c for c in t["checks"] if c["name"].startswith("cls_token_forward:")][0]
    assert fwd["status"] == "error" and "SystemExit" in fwd["feedback"]
    pos = [c for c in t["checks"] if c["name"].startswith("pos_embed_forward:")][0]
    assert pos["status"] == "error" and "ended the grading process" in pos["feedback"]


def test_a_script_without_a_main_guard_can_call_grade(tmp_path):
    """spawn re-runs the caller's script in the child unless told not to: a script that calls
    grade() at its top level (no `if __name__ == "__main__":`) must not run again there."""
    d = exercises(tmp_path / "ex", "tokens", "", only=True)
    script = tmp_path / "grade_me.py"
    script.write_text(f"from minivit.grading import grade\n"
                      f"r = grade(['tokens'], {str(d)!r}, functions=['cls_token_forward'])\n"
                      f"print('POINTS', r['total'], r['max'])\n")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120, cwd=ROOT,
                          env=env)
    assert proc.returncode == 0, proc.stderr
    lines = [ln.split() for ln in proc.stdout.splitlines() if ln.startswith("POINTS")]
    assert len(lines) == 1 and lines[0][1] == lines[0][2] != "0", proc.stdout + proc.stderr


# ========================================================================== output and --json
PRINTING = """
    import os
    import sys

    print("hello from the import")
    os.write(2, b"fd two at import\\n")

    _sf = softmax_forward                  # the file's own (typed-in) softmax

    def softmax_forward(x, axis=-1):
        print("in softmax_forward")
        sys.stdout.write("sys.stdout.write\\n")
        os.write(1, b"os.write one\\n")
        return _sf(x, axis)
"""


def test_json_is_the_only_thing_on_stdout_and_the_output_goes_into_the_report(tmp_path):
    d = exercises(tmp_path, "attention", PRINTING, only=True)
    proc = subprocess.run([sys.executable, "-m", "minivit", "grade", "attention", "--path", str(d), "--json",
                           "--only", "softmax_forward"], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    r = json.loads(proc.stdout)                          # nothing else on stdout
    t = r["topics"]["attention"]
    assert t["points"] == t["max"] > 0
    for text in ("hello from the import", "fd two at import", "in softmax_forward", "sys.stdout.write",
                 "os.write one"):
        assert text in t["output"]
    assert "graded attention" in proc.stderr              # the progress line


def test_the_output_is_truncated(tmp_path):
    d = exercises(tmp_path, "attention", "print('x' * 100000)\n", only=True)
    t = topic_of(grade(["attention"], d, functions=["softmax_forward"]), "attention")
    assert len(t["output"]) < 5000 and "more characters" in t["output"]


# ============================================================================== cannot be fooled
CHEAT = """
    import numpy
    import minivit.layers
    import minivit.grading
    import minivit.grading.common
    import minivit.grading.pair

    def softmax_forward(x, axis=-1):                   # wrong: no normalization
        return np.exp(x), None

    numpy.allclose = lambda *a, **k: True
    numpy.array_equal = lambda *a, **k: True
    minivit.layers.softmax_forward = softmax_forward
    minivit.grading.REF.softmax_forward = softmax_forward
    minivit.grading.common._mismatch = lambda *a, **k: None
    minivit.grading.pair._mismatch = lambda *a, **k: None
    minivit.grading.grade = lambda *a, **k: {"total": 1000}
"""


def test_patching_numpy_minivit_and_the_grader_gains_nothing(tmp_path):
    honest = exercises(tmp_path / "honest", "attention", CHEAT.split("    numpy.allclose")[0], only=True)
    cheat = exercises(tmp_path / "cheat", "attention", CHEAT, only=True)
    a = topic_of(grade(["attention"], honest, functions=["softmax_forward"]), "attention")
    b = topic_of(grade(["attention"], cheat, functions=["softmax_forward"]), "attention")
    assert b["points"] == a["points"] == 0 < b["max"]
    assert [c["status"] for c in b["checks"]] == [c["status"] for c in a["checks"]]
    assert np.allclose is not None and not np.allclose(1.0, 2.0)          # nothing changed in this process
    assert grading.REF.softmax_forward is layers.softmax_forward
    assert grading.grade is grade


def test_only_plain_data_comes_back_from_the_child(tmp_path):
    """A learner who makes the child send an object of their own class (its unpickling would run
    their code in the grader) gets an error; the grader never unpickles it."""
    marker = tmp_path / "ran-in-the-grader"
    d = exercises(tmp_path / "ex", "attention", f"""
        import minivit.grading.wire as wire

        class Evil:
            def __reduce__(self):
                return (open, ({str(marker)!r}, "w"))

        wire.encode = lambda x, depth=0: Evil()

        def softmax_forward(x, axis=-1):
            return Evil(), None
    """, only=True)
    t = topic_of(grade(["attention"], d, functions=["softmax_forward"]), "attention")
    assert t["points"] == 0 and "only plain data may cross" in t["checks"][0]["feedback"]
    assert not marker.exists()


def test_a_result_that_is_not_plain_data_is_named_with_its_input(tmp_path):
    d = exercises(tmp_path, "patch", """
        _lb = linear_backward

        def linear_backward(dy, cache):
            dx, dw, db = _lb(dy, cache)
            return dx, dw, (g for g in db)
    """, only=True)
    t = topic_of(grade(["patch"], d, functions=["linear_backward"]), "patch")
    fb = t["checks"][0]["feedback"]
    assert "linear_backward after linear_forward(x (2, 3, 2, 6), w (6, 3), b (3,))" in fb   # which input
    assert "db should be a NumPy array, got a generator" in fb


def test_any_cache_stays_in_the_child(tmp_path):
    """The cache may hold anything (here a closure): it never leaves the child."""
    d = exercises(tmp_path, "layernorm", """
        _lf, _lb = layernorm_forward, layernorm_backward

        def layernorm_forward(x, gamma, beta, eps=1e-6):
            out, cache = _lf(x, gamma, beta, eps)
            return out, (lambda dout: _lb(dout, cache))

        def layernorm_backward(dout, cache):
            return cache(dout)
    """, only=True)
    t = topic_of(grade(["layernorm"], d), "layernorm")
    assert t["points"] == t["max"], grading.format_topic("layernorm", t)


# ============================================================================ fairness
def test_a_list_for_the_pair_keeps_full_marks(tmp_path):
    d = exercises(tmp_path, "layernorm", """
        _lf = layernorm_forward

        def layernorm_forward(x, gamma, beta, eps=1e-6):
            return list(_lf(x, gamma, beta, eps))
    """, only=True)
    t = topic_of(grade(["layernorm"], d), "layernorm")
    assert t["points"] == t["max"], grading.format_topic("layernorm", t)


def test_state_kept_outside_the_cache_is_named(tmp_path):
    d = exercises(tmp_path, "layernorm", """
        _lf, _lb = layernorm_forward, layernorm_backward
        _LAST = {}

        def layernorm_forward(x, gamma, beta, eps=1e-6):
            out, cache = _lf(x, gamma, beta, eps)
            _LAST["cache"] = cache
            return out, None

        def layernorm_backward(dout, cache):
            return _lb(dout, _LAST["cache"])
    """, only=True)
    t = topic_of(grade(["layernorm"], d, functions=["layernorm_backward"]), "layernorm")
    bwd = t["checks"][0]
    assert bwd["function"] == "layernorm_backward" and bwd["mistake"] == "state_outside_cache"
    assert grading.MISTAKES["state_outside_cache"] in bwd["feedback"]


BUGGY_GELU = """
    from minivit.layers import linear_forward, linear_backward

    def gelu_forward(x, approximate="tanh"):
        return np.maximum(x, 0), x

    def gelu_backward(dout, cache):
        return dout * (cache > 0)

    def mlp_forward(x, w1, b1, w2, b2, approximate="tanh"):
        h, c1 = linear_forward(x, w1, b1)
        a, c2 = gelu_forward(h, approximate)
        y, c3 = linear_forward(a, w2, b2)
        return y, (c1, c2, c3)

    def mlp_backward(dy, cache):
        c1, c2, c3 = cache
        da, dw2, db2 = linear_backward(dy, c3)
        dx, dw1, db1 = linear_backward(gelu_backward(da, c2), c1)
        return dx, dw1, db1, dw2, db2
"""


def test_a_bug_is_charged_once(tmp_path):
    d = exercises(tmp_path, "mlp", BUGGY_GELU, only=True)
    t = topic_of(grade(["mlp"], d), "mlp")
    gelu = [c for c in t["checks"] if c["function"].startswith("gelu")]
    mlp = [c for c in t["checks"] if c["function"].startswith("mlp")]
    assert all(c["points"] == 0 for c in gelu if c["name"].startswith("gelu_forward:"))
    assert mlp and all(c["points"] == c["max"] for c in mlp), grading.format_topic("mlp", t)
    fwd = [c for c in mlp if c["function"] == "mlp_forward"][0]
    assert fwd["caused_by"] == "gelu_forward" and fwd["status"] == "ok"
    assert "passes with the reference gelu_forward: fix that first" in fwd["feedback"]
    assert "passes with the reference gelu_forward" in grading.format_topic("mlp", t)


# ============================================================================ --only
def test_only_grades_the_checks_of_one_function(tmp_path, capsys):
    d = exercises(tmp_path, "mlp", "", only=True)
    t = topic_of(grade(["mlp"], d, functions=["gelu_forward"]), "mlp")
    assert t["checks"] and {c["function"] for c in t["checks"]} == {"gelu_forward"}
    assert t["points"] == t["max"] == sum(c.points for c in grading.topic_check_list("mlp", ["gelu_forward"]))
    assert grade(functions=["gelu_forward"], path=d)["topics"].keys() == {"mlp"}
    one = grading.topic_check_list("mlp")[-1].name                        # a single check, by its name
    assert [c["name"] for c in topic_of(grade(["mlp"], d, checks=[one]), "mlp")["checks"]] == [one]
    assert cli.main(["grade", "mlp", "--path", str(d), "--only", "gelu_forward", "--json"]) == 0
    r = json.loads(capsys.readouterr().out)
    assert r["max"] == t["max"]
    assert cli.main(["grade", "mlp", "--path", str(d), "--only", "nosuchfunction"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: unknown exercise function nosuchfunction") and len(err.strip().splitlines()) == 1


# ============================================================================ the JSON report
def test_json_report_fields(tmp_path, capsys):
    d = exercises(tmp_path, "attention", "print('hi')\n", only=True)
    assert cli.main(["grade", "attention", "--path", str(d), "--json", "--only", "softmax_forward"]) == 0
    r = json.loads(capsys.readouterr().out)
    assert r["schema_version"] == grading.SCHEMA_VERSION == 2
    assert {"schema_version", "path", "topics", "total", "max"} <= set(r)
    t = r["topics"]["attention"]
    assert {"title", "file", "points", "max", "error", "checks", "seconds", "output"} <= set(t)
    assert t["output"] == "hi\n" and t["seconds"] > 0
    for c in t["checks"]:
        assert {"name", "function", "points", "max", "status", "feedback", "mistake", "caused_by"} <= set(c)
        assert c["status"] in ("ok", "fail", "todo", "error", "timeout")


# Every mistake name the grader gives (the list was last completed on 2026-12-01). They are part of the JSON report
# (`mistake`), so renaming or removing one is a breaking change; new names may be added.
STABLE_MISTAKES = (
    "activation_position", "args_not_passed", "attention_gets_dout", "attention_skips_softmax",
    "attention_transposed", "bias_grad_not_summed", "bias_grad_summed_all", "bias_grad_wrong_axis",
    "broadcast_keepdims", "cls_appended", "cls_dx_keeps_token", "cls_dx_wrong_slice", "cls_grad_all_tokens",
    "cls_overwrites", "cosine_end_off_by_one", "cosine_missing_half", "cosine_progress", "coupled_weight_decay",
    "dA_transposed", "decay_after_update", "decay_without_lr", "dgamma_uses_x", "dk_not_transposed",
    "dlogits_no_softmax", "dlogits_not_averaged", "dlogits_sign", "dloss_ignored", "dq_transposed",
    "dqkv_layout", "dqkv_no_transpose", "dropout_backward_missing", "dropout_not_applied", "dv_not_transposed",
    "dw_transposed", "dx_not_reshaped", "dx_w_not_transposed", "eps_argument_ignored", "eps_hardcoded",
    "eps_inside_sqrt", "eps_outside_sqrt", "float64_promotion", "gamma_beta_swapped", "gelu_exact_pdf",
    "gelu_form_swapped", "gelu_inner_derivative", "gelu_missing_half", "gelu_product_rule", "gelu_sech_of_x",
    "gelu_sigmoid", "gelu_square", "grad_mean_not_sum", "grads_misassigned", "grads_wrong_order",
    "heads_interleaved", "heads_reshape_only", "input_modified", "int_labels_dtype",
    "label_smoothing_k_minus_1", "label_smoothing_missing", "label_smoothing_no_uniform",
    "label_smoothing_soft_targets", "layernorm_axis", "layernorm_dx_constant_stats", "layernorm_dx_no_gamma",
    "layernorm_dx_no_mean_term", "layernorm_dx_no_variance_term", "layernorm_dx_rstd",
    "layernorm_dx_term_scale", "layernorm_dx_term_sign", "layernorm_float32_cancellation",
    "layernorm_grads_swapped", "layernorm_params_shared", "linear_decay", "linear_w_transposed",
    "log_of_softmax", "loss_mean_over_classes", "loss_not_averaged", "loss_sign", "min_lr_ignored",
    "min_lr_not_subtracted", "missing_activation", "missing_activation_backward", "missing_bias",
    "missing_bias_correction", "missing_eps", "missing_log", "missing_out_proj", "missing_residual",
    "missing_residual_grad", "missing_scale", "missing_scale_backward", "missing_scale_dk", "missing_scale_dq",
    "missing_sqrt", "mlp_approximate_not_passed", "mlp_gelu_grad_at_output", "mlp_reads_input", "no_clamp",
    "no_heads", "no_max_subtraction", "not_in_place", "param_grad_shape", "patch_backward_wrong_order",
    "patch_channel_first", "patch_grid_column_major", "patch_no_transpose", "patch_pixels_column_major",
    "patch_wrong_order", "pos_grad_summed_over_tokens", "post_norm", "qk_operand_swapped", "qkv_layout", "relu",
    "scale_1_over_d", "scale_model_width", "scale_times_sqrt_d", "scale_twice_backward", "scale_wrong_dim",
    "scores_transposed", "soft_targets_ignored", "softmax_axis", "softmax_backward_no_sum_term",
    "softmax_backward_sign_flipped", "softmax_backward_sum_all", "softmax_backward_sum_without_s",
    "softmax_backward_wrong_axis", "softmax_diagonal_jacobian", "softmax_global_max", "softmax_keepdims",
    "softmax_max_in_numerator_only", "softmax_normalized_over_all", "state_outside_cache", "step_off_by_one",
    "unbiased_variance", "warmup_off_by_one", "weight_decay_ignored",
)


# Names the grader no longer gives, on purpose (each with the commit that retired it).
RETIRED_MISTAKES = {
    "softmax_keepdims": "2632a20: always a broadcast error on the checks' shapes (broadcast_keepdims names it)",
}


def test_mistake_names_are_stable():
    missing = sorted(set(STABLE_MISTAKES) - set(grading.MISTAKES) - set(RETIRED_MISTAKES))
    assert not missing, f"mistake names are part of the JSON report; renamed or removed: {missing}"


def test_every_mistake_name_is_listed():
    unlisted = sorted(set(grading.MISTAKES) - set(STABLE_MISTAKES))
    assert not unlisted, f"add the new mistake names to STABLE_MISTAKES (they become part of the API): {unlisted}"


# ======================================================================= naming only when sure
def test_sure_mistake_names_one_variant_only_when_sure():
    r = np.random.default_rng(0).standard_normal
    want, wrong, other = r(20), r(20), r(20)
    assert sure_mistake(wrong, want, [("a", wrong), ("b", other)]) == "a"
    assert sure_mistake(wrong + 1e-5 * np.abs(wrong).max(), want, [("a", wrong)]) is None   # outside 1e-6
    assert sure_mistake(wrong, want, [("a", wrong), ("b", wrong * (1 + 1e-9))]) is None      # two fit: none
    assert sure_mistake(wrong, want, [("a", wrong), ("a", wrong.copy())]) == "a"             # one mistake, two ways
    scale = np.abs(want).max()
    near = want + 5e-6 * scale                     # fails the check (1e-6), but only just
    assert not is_sure(near, want, near + 1e-7 * scale)         # within 1e-6 of the variant, but only 50x farther
    assert is_sure(near, want, near + 1e-8 * scale)             # 500x farther from the reference
    # a variant that leaves the gradient in question equal to the reference is never named
    got = {"dx": want, "db": wrong}
    assert not is_sure(got, {"dx": want, "db": want}, {"dx": want})
    assert sure_mistake(got, {"dx": want, "db": want}, [("k", lambda: {"db": wrong}), ("x", lambda: 1 / 0)]) == "k"


# ============================================================================ Gradescope
def test_gradescope_results(tmp_path):
    d = exercises(tmp_path / "ex", "tokens", "", only=True)
    out = tmp_path / "gs" / "results.json"
    assert cli.main(["grade", "tokens", "--path", str(d), "--only", "cls_token_forward",
                     "--gradescope", str(out)]) == 0
    res = json.loads(out.read_text())
    checks = grading.topic_check_list("tokens", ["cls_token_forward"])
    assert res["score"] == sum(c.points for c in checks) > 0 and res["execution_time"] > 0
    assert res["tests"] == [{"name": f"tokens: {c.name}", "score": c.points, "max_score": c.points,
                             "status": "passed", "output": "passed"} for c in checks]


def test_gradescope_results_are_written_when_grading_fails(tmp_path, capsys):
    out = tmp_path / "results.json"
    assert cli.main(["grade", "--path", str(tmp_path / "missing"), "--gradescope", str(out)]) == 2
    res = json.loads(out.read_text())
    assert res["score"] == 0 and "no exercises folder" in res["tests"][0]["output"]
    assert capsys.readouterr().err.count("error:") == 1


def test_sample_autograder_on_a_tree_of_gradescopes_shape(tmp_path):
    root = tmp_path / "autograder"
    exercises(root / "submission", "optim", "while True:\n    pass\n")
    env = dict(os.environ, AUTOGRADER_ROOT=str(root), MINIVIT_GRADE_ARGS="patch optim --timeout 10",
               PYTHON=sys.executable)
    proc = subprocess.run(["bash", str(ROOT / "exercises" / "gradescope" / "run_autograder")], env=env,
                          capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    res = json.loads((root / "results" / "results.json").read_text())
    assert res["score"] == 12                                              # patch full, optim timed out
    names = [t["name"] for t in res["tests"]]
    assert any(n.startswith("patch: ") for n in names) and any(n.startswith("optim: ") for n in names)
    assert any("timed out after 10 s" in t["output"] for t in res["tests"] if t["name"].startswith("optim"))


# ============================================================================ CLI errors
def test_cli_missing_folder_and_bad_timeout(tmp_path, capsys):
    assert cli.main(["grade", "--path", str(tmp_path / "nope")]) == 2
    err = capsys.readouterr().err
    assert err.count("error:") == 1 and "no exercises folder" in err and "Traceback" not in err
    assert cli.main(["grade", "--path", str(tmp_path), "--timeout", "0"]) == 2
    assert capsys.readouterr().err.startswith("error: the time limit must be a positive number")


# ============================================================================ the package itself
def test_grading_files_are_short_and_never_import_the_cli():
    import ast

    for path in sorted((ROOT / "minivit" / "grading").rglob("*.py")):
        text = path.read_text()
        assert len(text.splitlines()) <= 300, f"{path.relative_to(ROOT)} has {len(text.splitlines())} lines"
        for node in ast.walk(ast.parse(text)):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            assert not any(n == "minivit.cli.main" for n in names), path
            if isinstance(node, ast.ImportFrom) and node.module == "minivit":
                assert "__main__" not in [a.name for a in node.names], path


def test_reference_grades_within_the_default_time_limit(tmp_path):
    """Correct code is graded in full under the default per-topic limit (the slowest topic: the block).
    How long it takes is a benchmark (benchmarks/grading_time.py), not a test: no wall-clock bound here."""
    d = exercises(tmp_path, "block", "", only=True)
    t = topic_of(grade(["block"], d), "block")
    assert t["points"] == t["max"] and all(c["status"] != "timeout" for c in t["checks"])
