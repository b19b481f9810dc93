"""benchmarks/budget_levers.py (issue 15): its --set overrides and its --report table. Needs no
PyTorch (unlike tests/test_benchmarks.py, which skips without it)."""
import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import budget_levers as bl  # noqa: E402

from minivit.train.recipes import recipe  # noqa: E402


def test_budget_levers_settings_and_report(tmp_path):
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
    log.write_text("\n".join(json.dumps({**row, "seed": s, "val_acc": a}) for s, a in ((0, 0.5), (1, 0.46))))
    table = bl.report(log, tmp_path / "levers.md").read_text().splitlines()
    assert len(table) == 3 and "| a | `lr=0.003` | abc | 8 min | 0, 1 | 900 (2.50) | 50.00, 46.00 | 48.00 | 4.00 |" \
        in table[2]
