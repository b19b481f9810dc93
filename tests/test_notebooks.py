"""Execute every chapter notebook (notebooks/NN_*.ipynb) top to bottom in a fresh kernel.

Each notebook is one test. It runs in the fast setting (``MINIVIT_FAST=1``), with the kernel's
working directory in notebooks/ (as Jupyter does), and fails on the first cell that raises.
Skipped when nbclient, nbformat or ipykernel is not installed (``pip install -e ".[dev]"``).

Data: the notebooks load CIFAR-10 from ``$MINIVIT_DATA`` (or ``~/.cache/minivit``); in the fast
setting a notebook whose data is missing falls back to a small synthetic set and says so.

To execute one notebook in the *real* setting (e.g. to regenerate the figures in
notebooks/figures/) and keep its outputs for a look:

    python tests/test_notebooks.py --real notebooks/07_training_on_cifar10.ipynb --out /tmp/07.ipynb
"""
from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK_DIR = ROOT / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("[0-9][0-9]_*.ipynb"))

CELL_TIMEOUT_S = 240        # per cell
NOTEBOOK_BUDGET_S = 120     # per notebook in the fast setting; the whole set takes about 1-2 minutes


def kernel_env(fast: bool) -> dict:
    """The environment the kernel starts with: os.environ plus the notebook settings."""
    env = dict(os.environ)
    env["MINIVIT_FAST"] = "1" if fast else "0"
    # minivit importable even without `pip install -e .` (the kernel's cwd is notebooks/).
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT)] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
    # Small matrices: BLAS threads only add contention on a shared CI machine (a value set on purpose wins).
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        env.setdefault(var, "1" if fast else str(os.cpu_count() or 1))
    env.pop("MPLBACKEND", None)          # let ipykernel use its inline backend (CI sets Agg for the scripts)
    env.setdefault("PYDEVD_DISABLE_FILE_VALIDATION", "1")
    return env


def execute(path: Path, fast: bool = True, timeout: int = CELL_TIMEOUT_S):
    """Run the notebook at ``path`` in a fresh kernel; returns the executed notebook. Raises on a cell error."""
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(nb, timeout=timeout, kernel_name="python3",
                            resources={"metadata": {"path": str(path.parent)}})
    client.execute(env=kernel_env(fast))   # the kernel process gets exactly this environment
    return nb


@pytest.fixture(scope="module")
def notebook_tools():
    pytest.importorskip("nbformat", reason="nbformat is not installed (pip install -e '.[dev]')")
    pytest.importorskip("nbclient", reason="nbclient is not installed (pip install -e '.[dev]')")
    pytest.importorskip("ipykernel", reason="ipykernel is not installed (pip install -e '.[dev]')")


def test_every_chapter_is_here():
    prefixes = sorted(p.name[:2] for p in NOTEBOOKS)
    assert prefixes == [f"{i:02d}" for i in range(9)], [p.name for p in NOTEBOOKS]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs_in_fast_setting(path, notebook_tools):
    t0 = time.perf_counter()
    execute(path, fast=True)
    elapsed = time.perf_counter() - t0
    print(f"{path.name}: {elapsed:.1f} s")
    assert elapsed < NOTEBOOK_BUDGET_S, f"{path.name} took {elapsed:.0f} s in the fast setting (budget {NOTEBOOK_BUDGET_S} s)"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_is_committed_without_outputs(path):
    import json

    nb = json.loads(path.read_text())
    dirty = [i for i, c in enumerate(nb["cells"])
             if c["cell_type"] == "code" and (c.get("outputs") or c.get("execution_count") is not None)]
    assert not dirty, f"{path.name}: cells {dirty} have outputs; clear them before committing"


if __name__ == "__main__":
    import argparse

    import nbformat

    p = argparse.ArgumentParser(description="Execute one notebook and save it with its outputs.")
    p.add_argument("notebook", type=Path)
    p.add_argument("--real", action="store_true", help="the real setting (MINIVIT_FAST=0); default: fast")
    p.add_argument("--out", type=Path, required=True, help="where to write the executed notebook")
    p.add_argument("--timeout", type=int, default=None, help="per-cell timeout in seconds")
    args = p.parse_args()
    t0 = time.perf_counter()
    executed = execute(args.notebook.resolve(), fast=not args.real,
                       timeout=args.timeout or (CELL_TIMEOUT_S if not args.real else 6 * 3600))
    nbformat.write(executed, args.out)
    print(f"executed {args.notebook} in {time.perf_counter() - t0:.0f} s -> {args.out}")
    sys.exit(0)
