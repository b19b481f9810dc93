"""The chapters' Solution sections, folded in every notebook viewer.

A chapter's solution (minivit's code for the exercise functions, and the derivation) is not written in
the notebook. Its Solution cell calls::

    solution("layernorm_forward", "layernorm_backward")

which displays, as the cell's output, a closed ``<details>`` block: click "Solution" to open it. The
derivation is read from ``notebooks/solutions/<first function>.md`` (Markdown with LaTeX); a line
``{{code NAME}}`` there becomes the source of minivit's function NAME, and the functions no line names are
shown at the end.

Why not cells under a collapsed heading: a collapsed heading hides them only in JupyterLab; the
classic notebook, VS Code and GitHub's renderer show them in full, next to the exercise. Notebooks
are committed without outputs (a test checks it), so on GitHub the Solution cell shows only the
call; once run, its output is a ``<details>`` element, closed in JupyterLab, the classic notebook
and VS Code alike. ``python -m minivit hint FUNCTION --level 3`` gives the formula from the terminal.
"""
from __future__ import annotations

import html
import inspect
import re
from pathlib import Path

SOLUTIONS_DIR = Path(__file__).resolve().parents[2] / "notebooks" / "solutions"
_CODE = re.compile(r"^\{\{code ([A-Za-z_][A-Za-z0-9_]*)\}\}$", flags=re.M)


def reference_function(name: str):
    """minivit's function ``name`` (from minivit.layers or minivit.optim)."""
    import minivit.layers
    import minivit.optim

    for module in (minivit.layers, minivit.optim):
        fn = getattr(module, name, None)
        if callable(fn):
            return fn
    raise KeyError(f"no minivit function {name!r} in minivit.layers or minivit.optim")


def solution_path(*functions: str) -> Path:
    """The derivation file of the solution of ``functions`` (named after the first)."""
    return SOLUTIONS_DIR / f"{functions[0]}.md"


def _code_block(name: str) -> str:
    return f"```python\n{inspect.getsource(reference_function(name)).rstrip()}\n```"


def solution_markdown(*functions: str) -> str:
    """The Markdown of a Solution: a closed <details> block with the derivation and minivit's code."""
    if not functions:
        raise ValueError("solution() needs the names of the functions it shows")
    path = solution_path(*functions)
    text = path.read_text().strip() if path.is_file() else ""
    named = set(_CODE.findall(text))
    body = _CODE.sub(lambda m: _code_block(m.group(1)), text)
    rest = [_code_block(f) for f in functions if f not in named]
    body = "\n\n".join([b for b in [body, *rest] if b])
    names = ", ".join(f"<code>{html.escape(f)}</code>" for f in functions)
    return (f"<details>\n<summary><b>Solution: {names}</b> (click to open, after your attempt)</summary>\n\n"
            f"{body}\n\n</details>\n")


def solution(*functions: str) -> None:
    """Display the Solution of ``functions``, folded (see the module docstring)."""
    from IPython.display import Markdown, display

    display(Markdown(solution_markdown(*functions)))
