"""Everything the grader grades is taught before the Your turn that grades it.

Each check of the grader (minivit.grading.topic_checks, every topic) is mapped to the sentence of a
chapter that teaches the rule it checks; the sentence must be in a Markdown cell before the Your turn
of the function the check grades. A new check without a rule here fails this test: teach it, then
map it. Reads the committed notebooks only (no kernel).
"""
import json
import re
from pathlib import Path

import pytest

from minivit.grading import TOPICS, topic_checks

NOTEBOOK_DIR = Path(__file__).resolve().parents[1] / "notebooks"

# Checks of the same kind in every topic: taught in each chapter's "how the exercises work" cell.
GENERIC = [
    (r": (gradients )?match(es)? the reference|^split_heads|^merge_heads", "**What the grader checks**"),
    (r"float32 in, float32 out|float32 parameters stay float32", "**float32 in, float32 out**"),
    (r"agrees? with finite differences", "**finite differences of your own forward**"),
]
# check name -> (the function whose Your turn must come after the teaching, a sentence of the chapter)
SPECIFIC = {
    "softmax: large inputs (scores up to 1e4) stay finite and correct": ("softmax_forward", "the grader feeds scores up to $10^4$"),
    "attention: large scores stay finite and correct": ("attention_forward", "the grader feeds scores up to $10^4$"),
    "layernorm: a token with zero variance stays finite and correct": ("layernorm_forward", "($\\sigma^2 = 0$) finite"),
    "layernorm: float32 features with a large mean (512) keep their precision": ("layernorm_forward", "with features around 512"),
    "gelu: |x| up to 100 stays finite and correct (both forms)": ("gelu_forward", "for $|x|$ up to 100"),
    "cross_entropy_forward: integer labels (3 inputs, incl. batch size 1)": ("cross_entropy_forward", "class indices, shape `(B,)`"),
    "cross_entropy_forward: label smoothing (integer and soft targets)": ("cross_entropy_forward", "label smoothing then\nmixes $t$"),
    "cross_entropy_forward: soft (B, K) targets": ("cross_entropy_forward", "**soft targets**, a `(B, K)` array"),
    "cross_entropy_backward: dlogits match the reference (incl. smoothing, soft targets, dloss)":
        ("cross_entropy_backward", "Its second argument `dloss`"),
    "cross-entropy: logits up to 1e4 stay finite and correct": ("cross_entropy_forward", "the grader feeds logits up to $10^4$"),
    "encoder block: dropout and drop-path in training mode (forward)": ("encoder_block_forward", "### Dropout and drop-path in the block"),
    "encoder block: dropout and drop-path in training mode (backward)": ("encoder_block_backward", "undone in reverse order"),
    "adamw_update: first step (t=1), in place": ("adamw_update", "**in place**"),
    "adamw_update: 5 steps with decoupled weight decay": ("adamw_update", "**decoupled**"),
    "adamw_update: tiny and zero gradients, eps varied (where eps matters)": ("adamw_update", "{\\sqrt{\\hat v} + \\epsilon}"),
    "warmup_cosine: the warmup phase": ("warmup_cosine", "\\eta_\\text{max}\\,\\dfrac{s+1}{S_w}"),
    "warmup_cosine: the cosine phase": ("warmup_cosine", "then\nfollows half a cosine"),
    "warmup_cosine: no warmup, past the end, warmup = total": ("warmup_cosine", "After step $S$ the schedule stays at"),
}


def notebook_of(function):
    for path in sorted(NOTEBOOK_DIR.glob("0[0-9]*_*.ipynb")):
        cells = json.loads(path.read_text())["cells"]
        for i, c in enumerate(cells):
            if f"your-turn:{function}" in c.get("metadata", {}).get("tags", []):
                return path, cells, i
    raise AssertionError(f"no Your turn for {function}")


def taught_before(function, sentence):
    path, cells, turn = notebook_of(function)
    return path.name, [i for i, c in enumerate(cells[:turn])
                       if c["cell_type"] == "markdown" and sentence in "".join(c["source"])]


CHECKS = [(t.name, fn, c.name) for t in TOPICS for c in topic_checks(t.name) for fn in t.functions[:1]]


@pytest.mark.parametrize("topic, first_function, check", CHECKS, ids=[c for _, _, c in CHECKS])
def test_graded_rule_is_taught_before_its_your_turn(topic, first_function, check):
    functions = next(t.functions for t in TOPICS if t.name == topic)
    if check in SPECIFIC:
        fn, sentence = SPECIFIC[check]
        assert fn in functions, (check, fn)
        where = [(fn, sentence)]
    else:
        sentences = [s for pattern, s in GENERIC if re.search(pattern, check)]
        assert sentences, f"grader check {check!r} is not mapped to the chapter text that teaches it"
        named = [f for f in functions if check.startswith(f)] or [functions[0]]
        where = [(named[0], s) for s in sentences]
    for fn, sentence in where:
        name, cells = taught_before(fn, sentence)
        assert cells, f"{name}: {sentence!r} (teaching {check!r}) is in no Markdown cell before the Your turn of {fn}"


def test_every_specific_rule_is_a_grader_check():
    names = {c.name for t in TOPICS for c in topic_checks(t.name)}
    assert set(SPECIFIC) <= names, sorted(set(SPECIFIC) - names)
