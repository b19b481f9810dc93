"""Record what minivit *does*, as data, so that two checkouts can be compared bit for bit.

    python tests/behaviour_record.py --tree CHECKOUT --exercises SOLVED_FOLDER --out record.json

Runs, with ``CHECKOUT`` first on the import path (its own code, whatever is installed):

* ``train --preset smoke`` (two epochs): every non-timing column of metrics.csv, and a SHA-256 of
  every array in last.npz (the weights and the optimizer state, bit for bit);
* ``train --preset cpu --steps 6 --subset 1024``: the same (Muon, patch dropout, two threads, the
  final evaluation on all 10,000 test images);
* ``grade --json`` of the folder of typed-in reference solutions (96/96) and of the stubs the
  checkout generates: every field but times;
* ``python -m minivit.stubs``: the text of each file it writes;
* ``gradcheck``: its whole output (each parameter's relative error, printed to 3 digits).

A refactor that moves code changes none of it: ``tests/test_layout_identity.py`` records a
checkout from before the move and the working tree, on the same machine, and compares.
"""
from __future__ import annotations

import argparse
import csv
import hashlib
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

TIMING_COLUMNS = {"time_s", "images_per_s", "data_frac"}
TIMING_KEYS = {"seconds", "time", "time_s", "elapsed", "duration", "images_per_s", "data_frac", "data_s",
               "budget_used_s"}


def _run(tree: Path, args: list, cwd: Path) -> str:
    env = dict(os.environ, PYTHONPATH=str(tree), OMP_NUM_THREADS="1", MPLBACKEND="Agg", PYTHONHASHSEED="0")
    env.pop("MINIVIT_FAST", None)
    p = subprocess.run([sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=900)
    if p.returncode not in (0,):
        raise SystemExit(f"error: {' '.join(args)} exited {p.returncode} in {tree}:\n{p.stdout[-2000:]}\n{p.stderr[-2000:]}")
    return p.stdout


def _digest_npz(path: Path) -> dict:
    import numpy as np

    with np.load(path, allow_pickle=False) as z:
        arrays = {k: hashlib.sha256(np.ascontiguousarray(z[k]).tobytes()).hexdigest() + f" {z[k].dtype} {z[k].shape}"
                  for k in sorted(z.files) if k != "meta_json"}
        arrays["meta_json"] = _drop_times(json.loads(str(z["meta_json"][()])))   # the run's state, times aside
        return arrays


def _training(tree: Path, work: Path, name: str, extra: list) -> dict:
    out = work / name
    _run(tree, ["-m", "minivit", "train", "--out", str(out), *extra], work)
    with open(out / "metrics.csv", newline="") as f:
        rows = [{k: v for k, v in row.items() if k not in TIMING_COLUMNS} for row in csv.DictReader(f)]
    return {"metrics": rows, "last.npz": _digest_npz(out / "last.npz")}


def _drop_times(x):
    if isinstance(x, dict):
        return {k: _drop_times(v) for k, v in x.items() if k not in TIMING_KEYS}
    if isinstance(x, list):
        return [_drop_times(v) for v in x]
    return x


def record(tree: Path, exercises: Path) -> dict:
    tree = tree.resolve()
    rec = {"imported_from": _run(tree, ["-c", "import minivit; print(minivit.__file__)"], tree).strip()}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        rec["smoke"] = _training(tree, work, "smoke", ["--preset", "smoke"])
        rec["cpu"] = _training(tree, work, "cpu", ["--preset", "cpu", "--steps", "6", "--subset", "1024"])
    rec["grade_reference"] = _drop_times(json.loads(_run(tree, ["-m", "minivit", "grade", "--json", "--path",
                                                              str(exercises.resolve())], tree)))
    with tempfile.TemporaryDirectory() as tmp:
        os.chmod(tmp, 0o755)          # as root, the grader's child runs as another user
        stubs = Path(tmp) / "exercises"
        _run(tree, ["-m", "minivit.stubs", "--out", str(stubs)], tree)
        rec["stubs"] = {f.name: f.read_text() for f in sorted(stubs.iterdir()) if f.is_file()}
        rec["grade_stubs"] = _drop_times(json.loads(_run(tree, ["-m", "minivit", "grade", "--json", "--path",
                                                              str(stubs)], tree)))
        rec["grade_stubs"].pop("path")
    rec["gradcheck"] = _run(tree, ["-m", "minivit", "gradcheck"], tree).splitlines()
    return rec


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--tree", required=True, type=Path, help="the checkout whose code runs")
    p.add_argument("--exercises", required=True, type=Path, help="a folder of solved exercise files")
    p.add_argument("--out", required=True, type=Path, help="the JSON file to write")
    a = p.parse_args()
    a.out.write_text(json.dumps(record(a.tree, a.exercises), indent=1, sort_keys=True))


if __name__ == "__main__":
    main()
