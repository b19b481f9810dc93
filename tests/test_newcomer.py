"""The newcomer's path: eval's defaults and progress, bench's presets and threads, --help, packaging."""
import os
import re
import sys
from pathlib import Path

import pytest

from minivit.cli import main as cli
from minivit.storage.checkpoint import save_checkpoint
from minivit.model import ViT, ViTConfig

ROOT = Path(__file__).resolve().parents[1]
STANDIN = Path("/work/shared/data/cifar10-standin")


def data_dir():
    d = os.environ.get("MINIVIT_DATA") or str(STANDIN)
    if not (Path(d) / "cifar-10-batches-bin").is_dir():
        pytest.skip("needs CIFAR-10 (MINIVIT_DATA)")
    return d


def test_eval_writes_confusion_next_to_the_checkpoint_and_shows_progress(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MINIVIT_DEVICE", "cpu")
    ckpt = save_checkpoint(tmp_path / "run" / "best.npz", ViT(ViTConfig.preset("tiny")),
                           meta=dict(train_config={"dataset": "cifar10"}))
    assert cli.main(["eval", str(ckpt), "--data-dir", data_dir()]) == 0
    out = capsys.readouterr()
    assert (tmp_path / "run" / "confusion.png").is_file()
    assert f"confusion matrix: {tmp_path / 'run' / 'confusion.png'}" in out.out
    assert "evaluating" in out.err and "10000/10000" in out.err          # tqdm, on stderr
    assert "evaluating" not in out.out


def test_eval_out_overrides_and_json_stdout_stays_clean(tmp_path, monkeypatch, capsys):
    import json

    monkeypatch.setenv("MINIVIT_DEVICE", "cpu")
    ckpt = save_checkpoint(tmp_path / "c.npz", ViT(ViTConfig.preset("tiny")), meta={})
    assert cli.main(["eval", str(ckpt), "--data-dir", data_dir(), "--out", str(tmp_path / "o"), "--json"]) == 0
    out = capsys.readouterr()
    assert (tmp_path / "o" / "confusion.png").is_file() and not (tmp_path / "confusion.png").exists()
    assert json.loads(out.out)["confusion_png"] == str(tmp_path / "o" / "confusion.png")


def test_bench_accepts_recipes_with_their_model_and_threads():
    from minivit.fast.bench import bench, resolve_preset
    from minivit.train.trainer import RECIPES

    for name in RECIPES:
        config, threads = resolve_preset(name)
        assert config.to_dict() == ViTConfig.from_dict(RECIPES[name].model).to_dict()
        assert threads == RECIPES[name].threads
    args = cli.build_parser().parse_args(["bench", "--preset", "cpu"])
    assert args.preset == "cpu" and args.threads is None
    r = bench(preset="smoke", batch_size=4, device="cpu", steps=1, warmup=0, stages=False)
    assert r["preset"] == "smoke" and r["threads"] == RECIPES["smoke"].threads
    assert r["params"] == ViT(ViTConfig.from_dict(RECIPES["smoke"].model)).num_parameters()


def test_plain_bench_uses_the_trainers_threads():
    from minivit.fast.bench import bench
    from minivit.train.trainer import RECIPES

    default_recipe = cli.build_parser().parse_args(["train"]).preset
    r = bench(preset="tiny", batch_size=4, device="cpu", steps=1, warmup=0, stages=False)
    assert r["threads"] == RECIPES[default_recipe].threads == 2


@pytest.mark.parametrize("value", [0, -1, True, 1.5])
def test_bench_api_rejects_bad_counts(value):
    from minivit.fast.bench import bench

    with pytest.raises(ValueError, match="batch_size must be an integer >= 1"):
        bench(preset="tiny", batch_size=value, device="cpu", steps=1, warmup=0, stages=False)


@pytest.mark.parametrize("command", ["train", "finetune", "eval", "inspect", "bench"])
def test_help_prints_each_default_once(command, capsys):
    with pytest.raises(SystemExit):
        cli.main([command, "--help"])
    text = " ".join(capsys.readouterr().out.split())          # argparse wraps lines
    assert "(default: None)" not in text
    assert not re.search(r"\(default: [^)]*\) \(default:", text), text


def test_pyproject_uses_an_spdx_license_and_a_setuptools_that_reads_it():
    tomllib = pytest.importorskip("tomllib") if sys.version_info >= (3, 11) else pytest.importorskip("tomli")
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert meta["project"]["license"] == "MIT"
    req = next(r for r in meta["build-system"]["requires"] if r.startswith("setuptools"))
    assert int(re.search(r">=\s*(\d+)", req).group(1)) >= 77      # PEP 639 license expressions


def test_inspect_output_is_ignored_by_git():
    assert "inspect/" in (ROOT / ".gitignore").read_text().split()
