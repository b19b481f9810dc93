"""The package's layout (issue 25): rooms by concern, small modules, a README that matches the tree, and
every import path that learners' material used before the move still working.

OLD_USER_IMPORTS is frozen: every ``import minivit...`` / ``from minivit... import NAME`` in the notebooks,
exercises, docs and README of 2ce6979 (before the move into rooms), read with ``user_imports`` below.
The same reading of today's files must import too.
"""
from __future__ import annotations

import importlib
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "minivit"
MAX_ENTRIES = 25
MAX_LINES = 300

OLD_USER_IMPORTS = [
    ("minivit", ""),
    ("minivit", "ViT"),
    ("minivit", "ViTConfig"),
    ("minivit", "ops"),
    ("minivit.augment", "CIFAR10_MEAN"),
    ("minivit.augment", "CIFAR10_STD"),
    ("minivit.augment", "augment_batch"),
    ("minivit.augment", "normalize"),
    ("minivit.backend", "get_array_module"),
    ("minivit.backend", "get_xp"),
    ("minivit.backend", "info"),
    ("minivit.backend", "make_rng"),
    ("minivit.backend", "resolve_device"),
    ("minivit.backend", "to_numpy"),
    ("minivit.bench", "model_flops_per_image"),
    ("minivit.checkpoint", "CheckpointError"),
    ("minivit.data", "DataNotFoundError"),
    ("minivit.data", "load_cifar"),
    ("minivit.data", "synthetic_cifar"),
    ("minivit.finetune", "resize_batches"),
    ("minivit.gradcheck", "COMPONENT_TOL"),
    ("minivit.gradcheck", "MODEL_TOL"),
    ("minivit.gradcheck", "check_pair"),
    ("minivit.gradcheck", "model_check"),
    ("minivit.gradcheck", "numerical_gradient"),
    ("minivit.gradcheck", "rel_error"),
    ("minivit.grading", "TOPIC_NAMES"),
    ("minivit.grading", "exercises_impl"),
    ("minivit.grading", "format_report"),
    ("minivit.grading", "format_topic"),
    ("minivit.grading", "grade"),
    ("minivit.inspect", "attention_rollout"),
    ("minivit.inspect", "attention_weights"),
    ("minivit.inspect", "embedding_filters"),
    ("minivit.inspect", "last_layer_attention"),
    ("minivit.inspect", "position_similarity"),
    ("minivit.interpolate", "interpolate_pos_embed"),
    ("minivit.layers", ""),
    ("minivit.layers", "BLOCK_PARAM_NAMES"),
    ("minivit.layers", "attention_backward"),
    ("minivit.layers", "attention_forward"),
    ("minivit.layers", "cls_token_backward"),
    ("minivit.layers", "cls_token_forward"),
    ("minivit.layers", "cross_entropy_backward"),
    ("minivit.layers", "cross_entropy_forward"),
    ("minivit.layers", "encoder_block_backward"),
    ("minivit.layers", "encoder_block_forward"),
    ("minivit.layers", "gap_backward"),
    ("minivit.layers", "gap_forward"),
    ("minivit.layers", "gelu_backward"),
    ("minivit.layers", "gelu_forward"),
    ("minivit.layers", "layernorm_backward"),
    ("minivit.layers", "layernorm_forward"),
    ("minivit.layers", "linear_backward"),
    ("minivit.layers", "linear_forward"),
    ("minivit.layers", "merge_heads"),
    ("minivit.layers", "merge_heads_backward"),
    ("minivit.layers", "mhsa_backward"),
    ("minivit.layers", "mhsa_forward"),
    ("minivit.layers", "mlp_backward"),
    ("minivit.layers", "mlp_forward"),
    ("minivit.layers", "patchify_backward"),
    ("minivit.layers", "patchify_forward"),
    ("minivit.layers", "pos_embed_backward"),
    ("minivit.layers", "pos_embed_forward"),
    ("minivit.layers", "softmax_backward"),
    ("minivit.layers", "softmax_forward"),
    ("minivit.layers", "split_heads"),
    ("minivit.layers", "split_heads_backward"),
    ("minivit.layers", "unpatchify"),
    ("minivit.layers.activation", "_erf"),
    ("minivit.layers.token_drop", "num_kept"),
    ("minivit.model", "ViTConfig"),
    ("minivit.modules", "EncoderBlock"),
    ("minivit.ops", "F"),
    ("minivit.optim", "AdamW"),
    ("minivit.optim", "adamw_update"),
    ("minivit.optim", "clip_grad_norm"),
    ("minivit.optim", "warmup_cosine"),
    ("minivit.plots", "plot_curves"),
    ("minivit.pretrained", "load_model"),
    ("minivit.pretrained", "load_official_npz"),
    ("minivit.pretrained", "read_npz"),
    ("minivit.pretrained", "save_official_npz"),
    ("minivit.train", "RECIPES"),
    ("minivit.train", "Trainer"),
    ("minivit.train", "augment_config"),
    ("minivit.train", "evaluate"),
    ("minivit.train", "recipe"),
    ("minivit.yourturn", "check"),
    ("minivit.yourturn", "inputs"),
    ("minivit.yourturn", "your_turn"),
    ("minivit.yourturn_solutions", "solution"),
]

IMPORT = re.compile(r"^[ \t>]*(?:from (minivit[\w.]*) import ([\w, ()]+?)|import (minivit[\w.]*)(?: as \w+)?)"
                    r"[ \t]*(?:#.*)?$", re.M)


def user_texts():
    """(path, text) of every notebook (its cells), exercise file, doc and the README."""
    paths = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md")), *sorted((ROOT / "exercises").rglob("*.py")),
             *sorted((ROOT / "exercises").rglob("*.md")), *sorted((ROOT / "notebooks").rglob("*.md")),
             *sorted((ROOT / "notebooks").glob("*.ipynb"))]
    for p in paths:
        if p.suffix == ".ipynb":
            yield p, "\n".join("".join(c["source"]) for c in json.loads(p.read_text())["cells"])
        else:
            yield p, p.read_text(encoding="utf-8")


def user_imports() -> set:
    """{(module, name)}: name "" for ``import module``."""
    found = set()
    for _, text in user_texts():
        for m in IMPORT.finditer(text):
            if m.group(3):
                found.add((m.group(3), ""))
                continue
            for n in m.group(2).replace("(", "").replace(")", "").split(","):
                n = n.strip().split(" as ")[0].strip()
                if n:
                    found.add((m.group(1), n))
    return found


def test_the_reading_finds_the_imports():
    found = user_imports()
    assert ("minivit.ops", "F") in found and ("minivit.yourturn", "your_turn") in found and len(found) > 50


@pytest.mark.parametrize("module,name", sorted(set(OLD_USER_IMPORTS) | user_imports()))
def test_user_import_paths_work(module, name):
    mod = importlib.import_module(module)
    if name:
        assert hasattr(mod, name) or importlib.util.find_spec(f"{module}.{name}"), f"from {module} import {name}"


def test_old_module_names_are_the_moved_modules():
    import minivit

    for old, new in minivit.MOVED.items():
        module = importlib.import_module(f"minivit.{new}")
        assert importlib.import_module(f"minivit.{old}") is module, old
        parent, _, leaf = module.__name__.rpartition(".")      # no name in the package hides the module
        assert getattr(importlib.import_module(parent), leaf) is module, f"{parent}.{leaf} is not the module"


@pytest.mark.parametrize("module", ["minivit.stubs", "minivit.data"])
def test_python_dash_m_entry_points(module):
    r = subprocess.run([sys.executable, "-m", module, "--help"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and "usage:" in r.stdout, r.stderr[-1000:]


def entries():
    return sorted(p.name for p in PACKAGE.iterdir() if p.name != "__pycache__" and not p.name.endswith(".pyc"))


def test_at_most_25_entries_directly_under_the_package():
    assert len(entries()) <= MAX_ENTRIES, entries()


def test_no_module_over_300_lines():
    long = {str(p.relative_to(ROOT)): n for p in sorted(PACKAGE.rglob("*.py"))
            if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_LINES}
    assert not long, long


def layout_block() -> list:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("## Layout", 1)[1]
    block = section.split("```", 2)[1]
    return block.splitlines()[1:]


def listed_names() -> list:
    """The path each line of README's layout block names under minivit/ (``data/``, ``data/augment/``,
    ``model.py``), from its indentation."""
    names, stack = [], []
    for line in layout_block():
        if not line.strip() or not line.startswith("  "):
            continue
        indent = (len(line) - len(line.lstrip())) // 2 - 1
        token = line.split()[0]
        if not (token.endswith("/") or token.endswith(".py")):
            continue                             # a continuation line
        stack = stack[:indent] + [token]
        names.append("".join(stack))
    return names


def tree_names() -> list:
    """Every top-level module and every package (folder with __init__.py) down to minivit/a/b/, as
    README names them (the topic folders under grading/topics/ are named by one line, topics/)."""
    out = [e + ("/" if (PACKAGE / e).is_dir() else "") for e in entries() if e.endswith(".py") or (PACKAGE / e).is_dir()]
    for init in PACKAGE.rglob("__init__.py"):
        rel = init.parent.relative_to(PACKAGE)
        if len(rel.parts) == 2:
            out.append("/".join(rel.parts) + "/")
    return sorted(out)


def test_readme_layout_lists_every_package_once_and_matches_the_tree():
    listed = [n for n in listed_names() if "/" not in n.rstrip("/") or n.endswith("/")]
    dup = {n for n in listed if listed.count(n) > 1}
    assert not dup, f"listed twice in README's layout: {sorted(dup)}"
    missing = sorted(set(tree_names()) - set(listed))
    assert not missing, f"README's layout section does not list: {missing}"
    for name in listed_names():
        assert (PACKAGE / name).exists(), f"README's layout names minivit/{name}, which does not exist"


def test_public_erf():
    from minivit.layers.activation import erf

    assert float(erf(0.5)) == pytest.approx(0.5204998778130465)


def texts_naming_files():
    """(path, text) of the README, docs, notebooks, exercises, benchmarks' README and minivit's own sources:
    what a reader follows to a file or a name."""
    yield from user_texts()
    for p in [*sorted(PACKAGE.rglob("*.py")), ROOT / "benchmarks" / "README.md"]:
        yield p, p.read_text(encoding="utf-8")


def test_every_file_named_exists():
    """``minivit/train/step.py``, ``minivit/data/augment/``: a path a text names is in the tree."""
    pattern = re.compile(r"(?<![\w.])minivit/((?:\w+/)*\w+\.(?:py|cu|json)|(?:\w+/)+)")
    missing = {f"{m.group(0)} (in {p.relative_to(ROOT)})" for p, text in texts_naming_files()
               for m in pattern.finditer(text) if not (PACKAGE / m.group(1)).exists()}
    assert not missing, sorted(missing)


PLACEHOLDERS = {"minivit.OLD", "minivit.inspect.X"}     # in docstrings: "minivit.OLD for each OLD in MOVED"


def _resolves(dotted: str) -> bool:
    parts = dotted.split(".")
    for i in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:i]))
        except ImportError:
            continue
        try:
            for attr in parts[i:]:
                obj = getattr(obj, attr)
        except AttributeError:
            return False
        return True
    return False


def test_every_dotted_name_resolves():
    """``minivit.train.RECIPES``, ``minivit.optim.muon``: a module or name a text gives is importable."""
    pattern = re.compile(r"(?<![\w./])minivit(?:\.\w+)+")
    missing = set()
    for p, text in texts_naming_files():
        for m in pattern.finditer(text):
            name = m.group(0)
            if name in PLACEHOLDERS or name.endswith((".py", ".npz", ".json", ".cu")):
                continue
            if not _resolves(name):
                missing.add(f"{name} (in {p.relative_to(ROOT)})")
    assert not missing, sorted(missing)
