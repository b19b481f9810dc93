"""``train --impl exercises`` with a partial set of passing topics.

A topic trains with the learner's code when every check of it passes in the grader; the others run
minivit's code, whole topics at a time. Which topics run whose code is printed, recorded in the run's
config.json (and its checkpoints), and ``--resume`` refuses a run whose set changed.

The exercises folder here: patch, tokens, layernorm and optim are the learner's (wrappers around
minivit's reference code, typed in, that count their calls), attention and the rest are untouched stubs, and the
MLP runs but is wrong (the exact GELU where the tanh form is asked for: the old gate, which only
ran each function once, accepted it).
"""
import json
import textwrap
from pathlib import Path

import numpy as np
import pytest

from minivit.cli import main as cli
from minivit.grading import stubs
from minivit.storage.checkpoint import CheckpointError
from minivit.data.cifar import synthetic_cifar
from minivit.data.pack import pack
from minivit.grading import TOPIC_BY_NAME, exercises_impl
from minivit.train.trainer import RECIPES, TrainConfig, Trainer
from reference_solutions import render_solution

YOURS = ["patch", "tokens", "layernorm", "optim"]


def _counting_file(topic):
    """A topic file holding minivit's reference code typed in (``render_solution``), its functions
    renamed ``_ref_<name>`` and called behind wrappers that count their calls."""
    fns = TOPIC_BY_NAME[topic].functions
    src = render_solution(topic)
    for f in fns:
        src = src.replace(f"def {f}(", f"def _ref_{f}(")
    src += "\n\nCALLS = {}\n\n"
    for f in fns:
        src += textwrap.dedent(f"""
            def {f}(*args, **kwargs):
                CALLS["{f}"] = CALLS.get("{f}", 0) + 1
                return _ref_{f}(*args, **kwargs)
            """)
    return src


WRONG_MLP = _counting_file("mlp") + textwrap.dedent("""
    def gelu_forward(x, approximate="tanh"):
        CALLS["gelu_forward"] = CALLS.get("gelu_forward", 0) + 1
        return _ref_gelu_forward(x, "none")             # always the exact form: runs, but wrong
    """)


def write_partial(folder):
    folder = Path(folder)
    stubs.write_stubs(folder)
    for t in YOURS:
        (folder / TOPIC_BY_NAME[t].file).write_text(_counting_file(t))
    (folder / TOPIC_BY_NAME["mlp"].file).write_text(WRONG_MLP)
    return folder


@pytest.fixture(scope="module")
def partial(tmp_path_factory):
    return write_partial(tmp_path_factory.mktemp("partial"))


@pytest.fixture(scope="module")
def impl(partial):
    return exercises_impl(partial)          # one grading of all nine topics (a few seconds)


def _cfg():
    return TrainConfig.from_dict({**RECIPES["smoke"].to_dict(), "epochs": 1, "batch_size": 16, "subset": None,
                                  "test_subset": None, "augment": {},
                                  "model": dict(RECIPES["smoke"].model, dim=16, depth=1, mlp_dim=16)})


def _data():
    return synthetic_cifar(n_train=32, n_test=8, seed=0)


def test_the_passing_topics_are_chosen_whole(impl):
    assert impl.topics == {t: ("yours" if t in YOURS else "minivit") for t in impl.topics}
    assert list(impl.topics) == list(TOPIC_BY_NAME)
    for t, who in impl.topics.items():
        for f in TOPIC_BY_NAME[t].functions:
            assert hasattr(impl, f) == (who == "yours"), f      # all of a topic's functions, or none
    assert impl.points["mlp"][0] < impl.points["mlp"][1]        # wrong code that runs does not pass
    text = impl.describe()
    assert "your code for: patch, tokens, layernorm, optim" in text
    assert "mlp 6/13" in text and "attention 0/14" in text       # gelu wrong: its finite-difference check does not count


def test_training_runs_the_passing_topics_and_records_them(impl, tmp_path, capsys):
    calls = {t: getattr(impl, TOPIC_BY_NAME[t].functions[0]).__globals__["CALLS"] for t in YOURS}
    for c in calls.values():
        c.clear()
    trainer = Trainer(_cfg(), tmp_path / "run", device="cpu", dataset_obj=_data(), progress=False, impl=impl)
    history = trainer.fit()
    assert len(history) == 1 and np.isfinite(history[0]["train_loss"])
    for t in YOURS:
        used = set(calls[t])
        assert used == set(TOPIC_BY_NAME[t].functions), (t, used)
    out = capsys.readouterr().out
    assert "your code for: patch, tokens, layernorm, optim" in out and "minivit's code for: attention" in out
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["exercises"]["topics"] == impl.topics
    assert config["exercises"]["path"] == str(impl.path)

    # --resume: the same set resumes; a changed set is refused
    again = Trainer(_cfg(), tmp_path / "run", device="cpu", dataset_obj=_data(), progress=False, impl=impl)
    again.resume()
    report = {"topics": {t: {"error": None, "points": 1, "max": 1,
                             "checks": [{"status": "ok" if who == "yours" and t != "optim" else "fail"}]}
                         for t, who in impl.topics.items()}}
    fewer = exercises_impl(impl.path, report=report)
    assert fewer.yours == ["patch", "tokens", "layernorm"]
    changed = Trainer(_cfg(), tmp_path / "run", device="cpu", dataset_obj=_data(), progress=False, impl=fewer)
    with pytest.raises(CheckpointError, match="your code for layernorm, optim, patch, tokens"):
        changed.resume()
    reference = Trainer(_cfg(), tmp_path / "run", device="cpu", dataset_obj=_data(), progress=False)
    with pytest.raises(CheckpointError, match="now it would be no topic"):
        reference.resume()


def test_cli_trains_with_the_passing_topics_and_refuses_a_changed_resume(partial, tmp_path, capsys):
    data = tmp_path / "pack.npz"
    pack(synthetic_cifar(n_train=64, n_test=16, seed=1), data, n_train=64, n_test=16, dataset="cifar10")
    folder = tmp_path / "ex"
    folder.mkdir()
    for f in partial.glob("ex*.py"):
        (folder / f.name).write_text(f.read_text())
    run = tmp_path / "run"
    argv = ["train", "--preset", "smoke", "--impl", "exercises", "--exercises-path", str(folder), "--data-dir",
            str(data), "--out", str(run), "--device", "cpu", "--epochs", "1", "--subset", "32", "--batch-size", "16"]
    assert cli.main(argv) == 0
    out = capsys.readouterr().out
    assert "your code for: patch, tokens, layernorm, optim" in out and "minivit's code for: attention 0/14" in out
    assert json.loads((run / "config.json").read_text())["exercises"]["topics"]["optim"] == "yours"
    # the optim exercise back to its stub: the set changed, so --resume is refused
    (folder / TOPIC_BY_NAME["optim"].file).write_text(stubs.render_topic("optim"))
    assert cli.main(argv + ["--resume"]) == 2
    err = capsys.readouterr().err
    assert "graded optim" in err                      # the grading's progress lines, then one error line
    last = err.strip().splitlines()[-1]
    assert last.startswith("error: ") and "now it would be layernorm, patch, tokens" in last, err
    assert "Traceback" not in err


def test_cli_refuses_when_no_topic_passes(tmp_path, capsys):
    stubs.write_stubs(tmp_path / "ex")
    code = cli.main(["train", "--preset", "smoke", "--impl", "exercises", "--exercises-path", str(tmp_path / "ex"),
                     "--out", str(tmp_path / "run"), "--device", "cpu"])
    assert code == 2
    err = capsys.readouterr().err
    assert "error: --impl exercises: no topic" in err and "python -m minivit grade" in err
    assert not (tmp_path / "run").exists()
