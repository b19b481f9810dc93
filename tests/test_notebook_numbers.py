"""Every measured number the prose of chapters 7 and 8 quotes has a source that this test checks.

The cells print their own numbers for the run they make; the Markdown quotes only numbers that are
recorded in the repository (the README's results table, written from measured runs) or cited from a
paper (named in the same cell), or that the chapter's own code fixes (a subset size). A number in
those chapters' Markdown that none of QUOTED covers fails the test: add its source here, or let a cell
print it. Reads the committed notebooks only (no kernel).
"""
import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NUMBER = re.compile(r"\d[\d,.]*\s?(?:%|px\b|minutes?\b|hours?\b)")

# (chapter, text quoted in its Markdown, source): source "file:PATH|TEXT" (TEXT is in PATH), "cite:NAME" (the
# cell names the publication), or "code:TEXT" (the chapter's code contains TEXT: the number is the code's own).
QUOTED = [
    ("07", "about 80% after 50 epochs with crop + flip", "cite:published small ViTs"),
    ("07", "above 90% after 200 epochs", "cite:published small ViTs"),
    ("07", "on 10%, 25%, 50% and 100% of the training set", "code:[n_train // 10, n_train // 4, n_train // 2, n_train]"),
    ("07", "80 epochs of the 10% subset", "code:8 * n_train"),
    ("07", "about 8 minutes", "file:README.md|About 8 minutes on the 2-core CPU"),
    ("07", "10% of the data is\nfitted perfectly (100% training accuracy)", "file:README.md|the 10% model fits its training images perfectly (100%)"),
    ("07", "only 39.0% on the test set, the full set 57.5%", "file:README.md|reaches 39.0%, 42.8%, 52.8% and 57.5%"),
    ("07", "reaches about 91% in 200\nepochs", "cite:Hassani et al., 2021"),
    ("07", "reaches about 80% at 50 epochs", "cite:Hassani et al., 2021"),
    ("07", "reports 77.5% after 6.5 CPU hours", "cite:The best public NumPy ViT"),
    ("08", "AdamW, 22 epochs,\n73.01% test accuracy", "file:README.md|| `cpu`, older: AdamW, 22 epochs | 2-core x86-64 CPU, quiet | 56.3 min | 73.01%"),
    ("08", "at 64 px each", "code:big = 2 * c.image_size"),
    ("08", "held at\n32 px", "code:big = 2 * c.image_size"),
    ("08", "the 10% of chance", "code:num_classes"),
]


def markdown(prefix):
    (path,) = (ROOT / "notebooks").glob(f"{prefix}_*.ipynb")
    cells = json.loads(path.read_text())["cells"]
    md = ["".join(c["source"]) for c in cells if c["cell_type"] == "markdown"]
    code = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "code")
    return md, code


@pytest.mark.parametrize("chapter, quoted, source", QUOTED)
def test_quoted_number_has_its_source(chapter, quoted, source):
    md, code = markdown(chapter)
    cells = [m for m in md if quoted in m]
    assert cells, f"chapter {chapter} no longer quotes {quoted!r}: drop it from QUOTED"
    kind, _, what = source.partition(":")
    if kind == "file":
        path, _, text = what.partition("|")
        assert text in (ROOT / path).read_text(), f"{path} does not record {text!r} (quoted: {quoted!r})"
    elif kind == "cite":
        assert all(what in m for m in cells), f"the cell quoting {quoted!r} does not name its source {what!r}"
    else:
        assert kind == "code" and what in code, f"chapter {chapter}'s code has no {what!r} (quoted: {quoted!r})"


@pytest.mark.parametrize("chapter", ["07", "08"])
def test_every_measured_number_is_listed(chapter):
    md, _ = markdown(chapter)
    unlisted = []
    for text in md:
        covered = [(m.start(), m.end()) for q, _ in [(q, s) for c, q, s in QUOTED if c == chapter]
                   for m in re.finditer(re.escape(q), text)]
        for m in NUMBER.finditer(text):
            if not any(a <= m.start() and m.end() <= b for a, b in covered):
                unlisted.append(text[max(0, m.start() - 60):m.end() + 10])
    assert not unlisted, f"chapter {chapter} quotes numbers without a listed source: {unlisted}"
