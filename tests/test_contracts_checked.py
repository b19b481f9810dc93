"""The stub says what is checked (issue 23, item 4).

Each check of the grader relies on rules of the functions it calls; every such rule must be in the
contract part of that function's docstring (what ``python -m minivit.stubs`` copies into the stub).
RULES maps a check (by a piece of its name) to (function, phrase) pairs: the phrase must be in the
function's stub text. Every check must be mapped by at least one rule, so a new check needs its rule
stated in the contract (and listed here) before it is graded.
"""
import inspect
import re

import pytest

from minivit import ops
from minivit.grading import stubs
from minivit.grading import TOPICS
from minivit.grading.topics import topic_checks

F32 = "float32 in, float32 out"
KEEP_INPUTS = "does not modify its inputs"
CACHE = "Everything it needs comes from the cache"


def _upstream(bwd):
    return f"Does not modify {inspect.signature(getattr(ops.reference(), bwd)).parameters.__iter__().__next__()}"


def _pair_rules(fwd, bwd):
    """The standard pair checks: forward (inputs kept), backward (upstream kept, state in the cache),
    float32 (dtype kept both ways), finite differences (the backward's own rules)."""
    fwd_keep = "not modified" if fwd == "pos_embed_forward" else KEEP_INPUTS
    return [
        (f"{fwd}: matches the reference", [(fwd, fwd_keep)]),
        (f"{bwd}: gradients match the reference", [(bwd, _upstream(bwd)), (bwd, CACHE)]),
        (f"{fwd} / {bwd}: float32 in, float32 out", [(fwd, F32), (bwd, F32)]),
        (f"{bwd}: agrees with finite differences", [(bwd, _upstream(bwd)), (bwd, CACHE)]),
    ]


PAIRS = [("patchify_forward", "patchify_backward"), ("linear_forward", "linear_backward"),
         ("cls_token_forward", "cls_token_backward"), ("pos_embed_forward", "pos_embed_backward"),
         ("softmax_forward", "softmax_backward"), ("attention_forward", "attention_backward"),
         ("mhsa_forward", "mhsa_backward"), ("layernorm_forward", "layernorm_backward"),
         ("gelu_forward", "gelu_backward"), ("mlp_forward", "mlp_backward"),
         ("encoder_block_forward", "encoder_block_backward")]

RULES = [rule for pair in PAIRS for rule in _pair_rules(*pair)] + [
    # what the standard checks also rely on, per function
    ("softmax_forward: matches the reference", [("softmax_forward", "``axis`` may be any axis"),
                                                ("softmax_forward", "the cache must keep it")]),
    ("softmax_backward: gradients match the reference", [("softmax_backward", "keep it in the cache")]),
    ("linear_backward: gradients match the reference", [("linear_backward", "every row of the leading axes")]),
    ("cls_token_backward: gradients match the reference", [("cls_token_backward", "shared by every image")]),
    ("pos_embed_backward: gradients match the reference", [("pos_embed_backward", "not across positions")]),
    ("mhsa_backward: gradients match the reference", [("mhsa_backward", "shared by every token")]),
    ("layernorm_backward: gradients match the reference", [("layernorm_backward", "all axes but the last")]),
    ("mlp_backward: gradients match the reference", [("mlp_backward", "shared by every token")]),
    ("layernorm_forward: matches the reference", [("layernorm_forward", "Use the ``eps`` argument")]),
    ("attention_backward: gradients match the reference", [("attention_backward", "any number of leading axes")]),
    # the edge cases
    ("softmax: large inputs", [("softmax_forward", "as large as 1e4")]),
    ("attention: large scores", [("attention_forward", "as large as ~1e4")]),
    ("layernorm: a token with zero variance", [("layernorm_forward", "zero variance")]),
    ("layernorm: float32 features with a large mean", [("layernorm_forward", "large mean")]),
    ("gelu: |x| up to 100", [("gelu_forward", "Finite for |x| up to 100"), ("gelu_backward", "|x| up to 100")]),
    ("encoder block: dropout and drop-path", [("encoder_block_forward", "when ``train`` is True")]),
    # the other topics' own checks
    ("split_heads: matches", [("split_heads", KEEP_INPUTS), ("split_heads", "Head j gets the features")]),
    ("merge_heads: matches", [("merge_heads", KEEP_INPUTS), ("merge_heads", "The inverse of split_heads")]),
    ("split_heads_backward: matches", [("split_heads_backward", "does not modify dout")]),
    ("merge_heads_backward: matches", [("merge_heads_backward", "does not modify dout")]),
    ("split/merge backward agree", [("split_heads_backward", "Gradient of split_heads"),
                                    ("merge_heads_backward", "Gradient of merge_heads")]),
    ("cross_entropy_forward: integer labels", [("cross_entropy_forward", "labels of any integer dtype"),
                                               ("cross_entropy_forward", KEEP_INPUTS)]),
    ("cross_entropy_forward: label smoothing", [("cross_entropy_forward", "label smoothing eps")]),
    ("cross_entropy_forward: soft (B, K) targets", [("cross_entropy_forward", "soft targets")]),
    ("cross_entropy_backward: dlogits match", [("cross_entropy_backward", CACHE),
                                               ("cross_entropy_backward", "dloss")]),
    ("cross_entropy_backward: agrees with finite differences", [("cross_entropy_backward", CACHE)]),
    ("cross_entropy_forward / cross_entropy_backward: float32", [("cross_entropy_forward", "float32"),
                                                                 ("cross_entropy_backward", "the logits' dtype")]),
    ("cross-entropy: logits up to 1e4", [("cross_entropy_forward", "as large as 1e4")]),
    ("adamw_update: first step (t=1), in place", [("adamw_update", "updated in place"),
                                                  ("adamw_update", "Does not modify g")]),
    ("adamw_update: 5 steps with decoupled weight decay", [("adamw_update", "decoupled")]),
    ("adamw_update: tiny and zero gradients, eps varied", [("adamw_update", "sqrt(v_hat) + eps")]),
    ("adamw_update: float32 parameters stay float32", [("adamw_update", "float32 arrays stay float32")]),
    ("warmup_cosine: the warmup phase", [("warmup_cosine", "step < warmup_steps")]),
    ("warmup_cosine: the cosine phase", [("warmup_cosine", "cosine decay to ``min_lr``")]),
    ("warmup_cosine: no warmup, past the end", [("warmup_cosine", "at most 1"),
                                                ("warmup_cosine", "total_steps == warmup_steps")]),
]


def _stub_contract(fname):
    return stubs.contract(inspect.getdoc(getattr(ops.reference(), fname)))


def _norm(text):
    return re.sub(r"\s+", " ", text)


CHECKS = [(t.name, c) for t in TOPICS for c in topic_checks(t.name)]


@pytest.mark.parametrize("topic, check", CHECKS, ids=[c.name for _, c in CHECKS])
def test_every_check_relies_only_on_stated_rules(topic, check):
    rules = [req for pattern, req in RULES if check.name.startswith(pattern)]
    assert rules, f"no contract rule listed for the check {check.name!r}: state what it enforces in the contract"
    for req in rules:
        for fname, phrase in req:
            assert fname in check.functions, (check.name, fname)
            assert _norm(phrase) in _norm(_stub_contract(fname)), (check.name, fname, phrase)


def test_the_stubs_carry_those_rules():
    """The generated stub of each function holds its contract's rule lines (they are what the learner reads)."""
    text = stubs.render_function("softmax_forward")
    assert "the cache must keep it" in _norm(text)
    assert _norm("Does not modify dy") in _norm(stubs.render_function("layernorm_backward"))
    assert "all axes but the last" in _norm(stubs.render_function("layernorm_backward"))
