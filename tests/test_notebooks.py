"""Execute every chapter notebook (notebooks/NN_*.ipynb; chapter 5 is 05a_, 05b_, 05c_) top to bottom in a fresh kernel.

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
import re
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK_DIR = ROOT / "notebooks"
CHAPTERS = ["00", "01", "02", "03", "04", "05a", "05b", "05c", "06", "07", "08"]    # chapter 5 is three notebooks


def chapter_id(path: Path) -> str:
    """"05b" for notebooks/05b_gelu_and_mlp.ipynb: the part of the name before the first underscore."""
    return path.name.split("_", 1)[0]


NOTEBOOKS = sorted(p for p in NOTEBOOK_DIR.glob("[0-9][0-9]*_*.ipynb") if re.fullmatch(r"\d\d[a-z]?", chapter_id(p)))

CELL_TIMEOUT_S = 240        # per cell


def kernel_env(fast: bool, budget: float | None = None) -> dict:
    """The environment the kernel starts with: os.environ plus the notebook settings. ``budget``:
    CI's check of the real setting (MINIVIT_NOTEBOOK_BUDGET, seconds per training run, small sizes)."""
    env = dict(os.environ)
    env["MINIVIT_FAST"] = "1" if fast else "0"
    env.pop("MINIVIT_NOTEBOOK_BUDGET", None)
    if budget is not None:
        env["MINIVIT_NOTEBOOK_BUDGET"] = f"{budget:g}"
    # minivit importable even without `pip install -e .` (the kernel's cwd is notebooks/).
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT)] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
    # Small matrices: BLAS threads only add contention on a shared CI machine (a value set on purpose wins).
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        env.setdefault(var, "1" if fast else str(os.cpu_count() or 1))
    env.pop("MPLBACKEND", None)          # let ipykernel use its inline backend (CI sets Agg for the scripts)
    env.setdefault("PYDEVD_DISABLE_FILE_VALIDATION", "1")
    return env


def execute(path: Path, fast: bool = True, timeout: int = CELL_TIMEOUT_S, cwd: Path | None = None,
            budget: float | None = None, nb=None):
    """Run the notebook at ``path`` (or ``nb``, read from it and changed) in a fresh kernel (working
    directory ``cwd``, default the notebook's folder); returns the executed notebook. Raises on a cell error."""
    import nbformat
    from nbclient import NotebookClient

    nb = nb if nb is not None else nbformat.read(path, as_version=4)
    client = NotebookClient(nb, timeout=timeout, kernel_name="python3",
                            resources={"metadata": {"path": str(cwd or path.parent)}})
    client.execute(env=kernel_env(fast, budget))   # the kernel process gets exactly this environment
    return nb


@pytest.fixture(scope="module")
def notebook_tools():
    pytest.importorskip("nbformat", reason="nbformat is not installed (pip install -e '.[dev]')")
    pytest.importorskip("nbclient", reason="nbclient is not installed (pip install -e '.[dev]')")
    pytest.importorskip("ipykernel", reason="ipykernel is not installed (pip install -e '.[dev]')")


def test_every_chapter_is_here():
    assert [chapter_id(p) for p in NOTEBOOKS] == CHAPTERS, [p.name for p in NOTEBOOKS]




# ------------------------------------------------------------------ "Your turn": two runs
# Run 1 (above): the committed notebooks with the untouched stubs: every your_turn says 0 points and
# "not yet", every scaffold check "not yet". Run 2 (below): an exercises folder that imports minivit's
# reference functions (MINIVIT_EXERCISES) and scaffold cells filled with the answers here: every
# your_turn gives full marks and every check says "right". Both runs parse the executed outputs.
LEARNER_NOTEBOOKS = [p for p in NOTEBOOKS if chapter_id(p) in ("01", "02", "03", "04", "05a", "05b", "05c", "07")]

# The scaffold answers, as a learner would write them (the names the notebooks define before each step).
ANSWERS = {
    "patch_out": "x_small.reshape(2, 2, P_small, 2, P_small, 3).transpose(0, 1, 3, 2, 4, 5).reshape(2, 4, -1)",
    "patch_dx": "dpatches.reshape(2, 2, 2, P_small, P_small, 3).transpose(0, 1, 3, 2, 4, 5).reshape(x_small.shape)",
    "linear_y": "X @ W + b",
    "linear_dx": "G @ W.T",
    "linear_dw": "X.reshape(-1, 4).T @ G.reshape(-1, 5)",
    "linear_db": "G.sum(axis=(0, 1))",
    # chapter 2
    "tokens_z": "np.concatenate([np.broadcast_to(cls, (2, 1, 4)), xt], axis=1)",
    "tokens_dx": "dz[:, 1:]",
    "dcls": "dz[:, :1].sum(axis=0, keepdims=True)",
    "dpos": "dz.sum(axis=0, keepdims=True)",
    # chapter 3
    "s": "np.exp(xs - xs.max(-1, keepdims=True)) / np.exp(xs - xs.max(-1, keepdims=True)).sum(-1, keepdims=True)",
    "gs": "(gs_up * s).sum(-1, keepdims=True)",
    "softmax_dx": "s * (gs_up - gs)",
    "S": "q @ k.transpose(0, 2, 1) / np.sqrt(3)",
    "A": "np.exp(S - S.max(-1, keepdims=True)) / np.exp(S - S.max(-1, keepdims=True)).sum(-1, keepdims=True)",
    "dA": "G @ v.transpose(0, 2, 1)",
    "dv": "A.transpose(0, 2, 1) @ G",
    "dS": "A * (dA - (dA * A).sum(-1, keepdims=True))",
    "dq": "dS @ k / np.sqrt(3)",
    "dk": "dS.transpose(0, 2, 1) @ q / np.sqrt(3)",
    # chapter 4
    "heads": "zh.reshape(2, 3, nh, 3).transpose(0, 2, 1, 3)",
    "split_dx": "dheads.transpose(0, 2, 1, 3).reshape(2, 3, 6)",
    "merge_dx": "dmerged.reshape(2, 3, nh, 3).transpose(0, 2, 1, 3)",
    "mhsa_dmerged": "Gm @ w_out_s.T",
    "mhsa_dqkv": ("np.stack(attention_backward(merge_heads_backward(mhsa_dmerged, hm), attention_forward("
                  "*(xm @ w_qkv_s + b_qkv_s).reshape(2, 3, 3, hm, 2).transpose(2, 0, 3, 1, 4))[1]))"
                  ".transpose(1, 3, 0, 2, 4).reshape(2, 3, 12)"),
    "mhsa_dx": "mhsa_dqkv @ w_qkv_s.T",
    # chapter 5a
    "xhat": "(x_ln - x_ln.mean(-1, keepdims=True)) / np.sqrt(x_ln.var(-1, keepdims=True) + 1e-6)",
    "dgamma": "(dy_ln * xhat).sum(axis=(0, 1))",
    "dbeta": "dy_ln.sum(axis=(0, 1))",
    "dxhat": "dy_ln * gamma_ln",
    "dx_direct": "dxhat / np.sqrt(x_ln.var(-1, keepdims=True) + 1e-6)",
    "dx_mean": "-dxhat.mean(-1, keepdims=True) / np.sqrt(x_ln.var(-1, keepdims=True) + 1e-6)",
    "dx_var": "-xhat * (dxhat * xhat).mean(-1, keepdims=True) / np.sqrt(x_ln.var(-1, keepdims=True) + 1e-6)",
    "dx": "dx_direct + dx_mean + dx_var",
    # chapter 5b
    "gelu_u": "np.sqrt(2 / np.pi) * (x_g + 0.044715 * x_g ** 3)",
    "gelu_t": "np.tanh(gelu_u)",
    "gelu_local": "0.5 * (1 + gelu_t) + 0.5 * x_g * (1 - gelu_t ** 2) * np.sqrt(2 / np.pi) * (1 + 3 * 0.044715 * x_g ** 2)",
    "gelu_dx": "dout_g * gelu_local",
    "mlp_h": "x_m @ w1_m + b1_m",
    "mlp_dw2": "gelu_forward(mlp_h)[0].reshape(-1, 6).T @ G_m.reshape(-1, 4)",
    "mlp_da": "G_m @ w2_m.T",
    "mlp_dh": "gelu_backward(mlp_da, gelu_forward(mlp_h)[1])",
    "mlp_dx": "mlp_dh @ w1_m.T",
    # chapter 5c
    "block_z1": ("x_b + mhsa_forward(layernorm_forward(x_b, p_b['ln1_gamma'], p_b['ln1_beta'])[0], p_b['w_qkv'], "
                 "p_b['b_qkv'], p_b['w_out'], p_b['b_out'], h_b)[0]"),
    "block_dz1": ("dout_b + layernorm_backward(mlp_backward(dout_b, mlp_forward(layernorm_forward(block_z1, p_b['ln2_gamma'], "
                  "p_b['ln2_beta'])[0], p_b['w1'], p_b['b1'], p_b['w2'], p_b['b2'])[1])[0], "
                  "layernorm_forward(block_z1, p_b['ln2_gamma'], p_b['ln2_beta'])[1])[0]"),
    "block_dx": ("block_dz1 + layernorm_backward(mhsa_backward(block_dz1, mhsa_forward(layernorm_forward(x_b, p_b['ln1_gamma'], "
                 "p_b['ln1_beta'])[0], p_b['w_qkv'], p_b['b_qkv'], p_b['w_out'], p_b['b_out'], h_b)[1])[0], "
                 "layernorm_forward(x_b, p_b['ln1_gamma'], p_b['ln1_beta'])[1])[0]"),
    # chapter 7
    "adam_m": "0.9 * m_a + 0.1 * g_a",
    "adam_v": "0.999 * v_a + 0.001 * g_a ** 2",
    "adam_mhat": "adam_m / (1 - 0.9 ** t_a)",
    "adam_vhat": "adam_v / (1 - 0.999 ** t_a)",
    "adam_w": "w_a - lr_a * (adam_mhat / (np.sqrt(adam_vhat) + 1e-8) + wd_a * w_a)",
    "lrs": ("np.array([base_lr_s * (s + 1) / warm_s if s < warm_s else min_lr_s + 0.5 * (base_lr_s - min_lr_s) * "
            "(1 + np.cos(np.pi * min(1, (s - warm_s) / (total_s - warm_s)))) for s in range(total_s + 2)])"),
    "ce_target": "0.9 * np.eye(5)[labels_l] + eps_l / 5",
    "ce_logp": "logits_l - logits_l.max(1, keepdims=True) - np.log(np.exp(logits_l - logits_l.max(1, keepdims=True)).sum(1, keepdims=True))",
    "ce_loss": "-(ce_target * ce_logp).sum() / 4",
    "ce_dlogits": "(np.exp(ce_logp) - ce_target) / 4",
}


def outputs_text(cell):
    return "".join(o.get("text", "") for o in cell.get("outputs", []) if o.get("output_type") == "stream")


def cell_tags(cell, prefix):
    return [t.split(":", 1)[1] for t in cell.get("metadata", {}).get("tags", []) if t.startswith(prefix)]


def fill_scaffolds(nb):
    """Replace each scaffold's `name = None` line with its answer from ANSWERS (the test's learner)."""
    import re

    filled = 0
    for cell in nb.cells:
        for name in cell_tags(cell, "scaffold:"):
            new, n = re.subn(rf"^{name} = None\b.*$", f"{name} = {ANSWERS[name]}", cell.source, flags=re.M)
            assert n == 1, f"scaffold {name}: no line `{name} = None` to fill"
            cell.source, filled = new, filled + 1
    return filled


def your_turn_results(nb):
    """[(functions, output)] of the your-turn cells and [(name, output)] of the scaffold cells."""
    turns = [(cell_tags(c, "your-turn:"), outputs_text(c)) for c in nb.cells if cell_tags(c, "your-turn:")]
    steps = [(n, outputs_text(c)) for c in nb.cells for n in cell_tags(c, "scaffold:")]
    return turns, steps


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs_in_fast_setting(path, notebook_tools, tmp_path, monkeypatch):
    """Run 1. A chapter with exercises runs on freshly generated, untouched stubs (MINIVIT_EXERCISES):
    every your_turn says 0 points and "not yet", every scaffold check "not yet", and the chapter runs on."""
    from minivit.grading import stubs

    stubs.write_stubs(tmp_path)
    monkeypatch.setenv("MINIVIT_EXERCISES", str(tmp_path))
    t0 = time.perf_counter()
    executed = execute(path, fast=True)
    elapsed = time.perf_counter() - t0
    print(f"{path.name}: {elapsed:.1f} s")
    turns, steps = your_turn_results(executed)
    assert bool(turns) == bool(steps) == (path in LEARNER_NOTEBOOKS), f"{path.name}: your-turn / scaffold cells"
    for fns, out in turns:
        for fn in fns:
            line = next((l for l in out.splitlines() if l.startswith(f"{fn}: ")), None)
            assert line and re.match(rf"{fn}: 0/[1-9]\d* points - not yet", line), (fn, out)
    for name, out in steps:
        assert out.strip() == f"{name}: not yet - replace None with your computation", (name, out)


@pytest.mark.parametrize("path", LEARNER_NOTEBOOKS, ids=[p.stem for p in LEARNER_NOTEBOOKS])
def test_your_turn_with_reference_solutions(path, notebook_tools, tmp_path, monkeypatch):
    """Run 2. An exercises folder importing minivit's functions and filled-in scaffolds: full marks, every check right."""
    import nbformat
    from test_grading import write_reference

    write_reference(tmp_path)
    monkeypatch.setenv("MINIVIT_EXERCISES", str(tmp_path))
    nb = nbformat.read(path, as_version=4)
    assert fill_scaffolds(nb) > 0
    filled = tmp_path / path.name
    nbformat.write(nb, filled)
    turns, steps = your_turn_results(execute(filled, fast=True, cwd=path.parent))
    for fns, out in turns:
        for fn in fns:
            m = re.search(rf"^{fn}: (\d+)/(\d+) points - all \d+ checks pass$", out, flags=re.M)
            assert m and m.group(1) == m.group(2) and int(m.group(2)) > 0, (fn, out)
    for name, out in steps:
        assert re.fullmatch(rf"{name}: right \(relative error [^)]*\)", out.strip()), (name, out)


# ------------------------------------------------------------------ Run 3: as a learner runs it
# The real setting's code path (MINIVIT_FAST=0: the `cpu` recipe of chapter 7 with its time budget, real data, the
# run folders), with the fast setting's small sizes and a budget of a few seconds per training run
# (MINIVIT_NOTEBOOK_BUDGET), every `solution:` cell removed (a learner who leaves the solutions closed), and the
# exercises folder at the reference solutions, typed in (tests/reference_solutions.py): every your_turn gives full
# marks. One run covers both: the chapters' real code path, and no narrative cell using a name a solution defines.
REAL_BUDGET_S = 20
SOLVED_TOPICS = {"01": ["patch"], "02": ["tokens"], "03": ["attention"], "04": ["multihead"],
                 "05a": ["layernorm"], "05b": ["mlp"], "05c": ["block"], "06": ["patch", "tokens"], "07": ["loss", "optim"]}


def without_solutions(nb):
    """The notebook without its solution cells (tagged ``solution:<function>``); returns how many it had."""
    n = len(nb.cells)
    nb.cells = [c for c in nb.cells if not cell_tags(c, "solution:")]
    return n - len(nb.cells)


@pytest.fixture(scope="module")
def real_data():
    from minivit.data.cifar import DataNotFoundError, load_cifar

    try:
        load_cifar("cifar10", download=False)
    except DataNotFoundError as e:
        pytest.skip(f"the real setting needs CIFAR-10 on this machine (MINIVIT_DATA): {str(e)[:200]}")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs_in_real_setting_without_solutions(path, notebook_tools, real_data, tmp_path, monkeypatch):
    import nbformat
    from reference_solutions import write_reference

    from minivit.grading import stubs

    stubs.write_stubs(tmp_path / "exercises")        # solved: the chapter's topics (chapter 6: two, to keep CI short)
    write_reference(tmp_path / "exercises", SOLVED_TOPICS.get(chapter_id(path), []))
    monkeypatch.setenv("MINIVIT_EXERCISES", str(tmp_path / "exercises"))
    nb = nbformat.read(path, as_version=4)
    removed = without_solutions(nb)
    assert bool(removed) == (path in LEARNER_NOTEBOOKS), f"{path.name}: {removed} solution cells"
    committed = {f: f.read_bytes() for f in (NOTEBOOK_DIR / "figures").glob("*.png")}
    executed = execute(path, fast=False, budget=REAL_BUDGET_S, nb=nb)
    assert {f: f.read_bytes() for f in (NOTEBOOK_DIR / "figures").glob("*.png")} == committed, \
        f"{path.name} wrote over the committed figures in notebooks/figures/"
    first = next(outputs_text(c) for c in executed.cells if c.cell_type == "code")
    assert f"from {ROOT / 'minivit'} -- real setting (CI check" in first, first     # this checkout, the real setting
    turns, _ = your_turn_results(executed)
    for fns, out in turns:
        for fn in fns:
            m = re.search(rf"^{fn}: (\d+)/(\d+) points - all \d+ checks pass$", out, flags=re.M)
            assert m and m.group(1) == m.group(2) and int(m.group(2)) > 0, (fn, out)
    if path.name.startswith("07"):      # the recipe a learner runs, with its time budget (cfg.epochs is None)
        text = "".join(outputs_text(c) for c in executed.cells)
        assert "recipe: cpu" in text and "plan: " in text, text[-2000:]


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
