"""The chapters ask before they show: ask -> try -> check -> solution, for every exercise function.

For each function a chapter teaches (minivit.grading.TOPICS, mapped to chapters below):

* one "Your turn" code cell tagged ``your-turn:<function>`` that calls ``your_turn(...)`` with it;
* before it, scaffold cells (``scaffold:<step>``: ``step = None`` then ``check("step", step)``), at least
  one for every backward function (and the optimizer's two);
* after it, a "Solution" section (``solution:<function>``): a level-3 heading saying "open after your
  attempt", collapsed in JupyterLab (``jp-MarkdownHeadingCollapsed``), and one code cell, its source
  hidden, that only calls ``solution(...)``: the derivation and minivit's code are not in the notebook
  file at all (notebooks/solutions/<function>.md and minivit's source), and the cell's output is a
  closed ``<details>`` block, so no viewer (JupyterLab, the classic notebook, VS Code, GitHub) shows
  them next to the exercise (minivit/yourturn/solutions.py);
* no cell before the Your turn shows the function's source (``show(f)``, ``inspect.getsource(f)``, ``f??``).

Reads the committed .ipynb files only (no kernel): fast.
"""
import json
import re
from pathlib import Path

import pytest

from minivit.grading import TOPIC_BY_NAME, TOPICS
from minivit.yourturn.solutions import solution_markdown, solution_path
from minivit.yourturn.steps import STEPS

NOTEBOOK_DIR = Path(__file__).resolve().parents[1] / "notebooks"
CHAPTER_TOPICS = {"01": ["patch"], "02": ["tokens"], "03": ["attention"], "04": ["multihead"],
                  "05a": ["layernorm"], "05b": ["mlp"], "05c": ["block"], "07": ["loss", "optim"]}
NEEDS_SCAFFOLD = {"adamw_update", "warmup_cosine"}
# Derived results (as the chapters write them in LaTeX) that only the Solution may state.
DERIVED = {"linear_backward": [r"dX = G\,W^\top"], "softmax_backward": [r"g - \langle g, s\rangle"],
           "attention_backward": [r"\operatorname{rowsum}(dA"],
           "layernorm_backward": [r"\operatorname{mean}(g\odot \hat x)", r"= dy_i\,\hat x_i"],
           "gelu_backward": [r"(1 - \tanh^2 u)"], "cross_entropy_backward": [r"\operatorname{softmax}(s) - t"],
           "patchify_backward": ["transpose of a\npermutation is its inverse"],
           "cls_token_backward": ["its gradient\nis the *sum* over the batch"]}


def chapter(prefix):
    (path,) = NOTEBOOK_DIR.glob(f"{prefix}_*.ipynb")
    return path, json.loads(path.read_text())["cells"]


def tags(cell, prefix):
    return [t.split(":", 1)[1] for t in cell.get("metadata", {}).get("tags", []) if t.startswith(prefix)]


def source(cell):
    return "".join(cell["source"])


def heading_level(cell):
    if cell["cell_type"] != "markdown":
        return None
    m = re.match(r"(#{1,6}) ", source(cell))
    return len(m.group(1)) if m else None


def shows(text, fn):
    return bool(re.search(rf"show\(\s*{fn}\s*\)|getsource\(\s*{fn}\b|\b{fn}\s*\?\?", text))


def test_every_exercise_function_has_a_chapter():
    taught = [t for topics in CHAPTER_TOPICS.values() for t in topics]
    assert sorted(taught) == sorted(t.name for t in TOPICS)


@pytest.mark.parametrize("prefix", sorted(CHAPTER_TOPICS))
def test_chapter_asks_before_it_shows(prefix):
    path, cells = chapter(prefix)
    functions = [f for topic in CHAPTER_TOPICS[prefix] for f in TOPIC_BY_NAME[topic].functions]
    turn_index = {}
    for i, c in enumerate(cells):
        for fn in tags(c, "your-turn:"):
            assert fn not in turn_index, f"{path.name}: two your-turn cells for {fn}"
            assert c["cell_type"] == "code" and re.search(rf"your_turn\(.*\"{fn}\"", source(c)), (path.name, i)
            turn_index[fn] = i
    assert sorted(turn_index) == sorted(functions), f"{path.name}: your-turn cells for {sorted(turn_index)}"

    for fn in functions:
        t = turn_index[fn]
        for i, c in enumerate(cells[:t]):
            assert not shows(source(c), fn), f"{path.name}: cell {i} shows {fn} before its Your turn (cell {t})"
            for expr in DERIVED.get(fn, []):
                assert expr not in source(c), f"{path.name}: cell {i} states {expr!r} before {fn}'s Your turn"
        sol = [i for i, c in enumerate(cells) if fn in tags(c, "solution:")]
        assert sol and min(sol) > t, f"{path.name}: the solution of {fn} must come after its Your turn"
        head = cells[sol[0]]
        assert heading_level(head) == 3 and "open after your attempt" in source(head), (path.name, fn, source(head))
        assert head["metadata"].get("jp-MarkdownHeadingCollapsed") is True, (path.name, fn)
        # The collapsed heading hides everything up to the next heading of level <= 3: exactly the solution.
        end = next((i for i in range(sol[0] + 1, len(cells)) if (heading_level(cells[i]) or 9) <= 3), len(cells))
        assert sol == list(range(sol[0], end)), f"{path.name}: {fn}'s solution cells {sol} vs. its collapsed section"
        # Folded in every viewer: the heading, then one cell that calls solution(...) and nothing else.
        assert len(sol) == 2 and cells[sol[1]]["cell_type"] == "code", (path.name, fn, sol)
        call = source(cells[sol[1]]).strip()
        m = re.fullmatch(r"solution\(((?:\"\w+\"(?:, )?)+)\)", call)
        assert m and fn in re.findall(r"\"(\w+)\"", m.group(1)), (path.name, fn, call)
        assert cells[sol[1]]["metadata"].get("jupyter", {}).get("source_hidden") is True, (path.name, sol[1])
        functions_shown = re.findall(r"\"(\w+)\"", m.group(1))
        assert solution_path(*functions_shown).is_file(), solution_path(*functions_shown)
        text = solution_markdown(*functions_shown)
        assert text.startswith("<details>\n<summary>") and text.rstrip().endswith("</details>"), text[:200]
        assert "<details open" not in text and f"def {fn}(" in text, (path.name, fn)
        for expr in DERIVED.get(fn, []):
            assert expr in text, f"{path.name}: {fn}'s solution lacks {expr!r}"
            assert not any(expr in source(c) for c in cells), f"{path.name}: {expr!r} is in plain view"


@pytest.mark.parametrize("prefix", sorted(CHAPTER_TOPICS))
def test_scaffolds_before_each_backward(prefix):
    path, cells = chapter(prefix)
    turns = [i for i, c in enumerate(cells) if tags(c, "your-turn:")]
    names = []
    for k, t in enumerate(turns):
        start = turns[k - 1] if k else 0
        steps = [n for c in cells[start:t] for n in tags(c, "scaffold:")]
        for fn in tags(cells[t], "your-turn:"):
            if fn.endswith("_backward") or fn in NEEDS_SCAFFOLD:
                assert steps, f"{path.name}: no scaffold step before the Your turn of {fn}"
        names += steps
    assert names and len(names) == len(set(names)), f"{path.name}: scaffold steps {names}"
    for c in cells:
        for n in tags(c, "scaffold:"):
            assert n in STEPS, f"{path.name}: scaffold {n} has no reference in minivit.yourturn.steps"
            assert re.search(rf"^{n} = None\b", source(c), flags=re.M) and f'check("{n}", {n})' in source(c), source(c)


@pytest.mark.parametrize("prefix", ["00", "06", "08"])
def test_other_chapters_have_no_your_turn(prefix):
    path, cells = chapter(prefix)
    assert not [c for c in cells if tags(c, "your-turn:") or tags(c, "solution:")], path.name


def test_every_solution_file_is_shown_by_a_chapter():
    """notebooks/solutions/<function>.md: each one is the derivation of a chapter's solution(...) cell."""
    called = set()
    for prefix in CHAPTER_TOPICS:
        _, cells = chapter(prefix)
        for c in cells:
            m = re.fullmatch(r"solution\((\"\w+\")", source(c).strip()[:200].split(",")[0].rstrip(")"))
            if tags(c, "solution:") and c["cell_type"] == "code" and m:
                called.add(m.group(1).strip('"'))
    files = {p.stem for p in (NOTEBOOK_DIR / "solutions").glob("*.md")}
    assert files and files == called, (sorted(files - called), sorted(called - files))
