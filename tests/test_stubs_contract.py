"""The stubs state the contract, not the answer.

Every exercise function's reference docstring (minivit/layers/, minivit/optim/__init__.py) has a contract
part and a ``Derivation:`` part; the stub generator copies only the contract, and none of the
derived expressions below (the backward formulas and the implementation recipes that used to be
in the stubs) appears anywhere in exercises/ (the stubs and exercises/README.md), also not with
other spacing, capitals, ``np.``/``xp.`` prefixes or ``**`` for ``^``.
"""
import inspect
import re
from pathlib import Path

import pytest

from minivit import ops
from minivit.grading import hints
from minivit.grading import stubs
from minivit.grading import EXERCISE_FUNCTIONS

ROOT = Path(__file__).resolve().parents[1]

DERIVED = {
    "patchify_forward": ["transpose(0, 1, 3, 2, 4, 5)", "(B, H/P, P, W/P, P, C)", "(B, H/P, W/P, P, P, C)",
                         "reshape(B, gh, P, gw, P, C)", "reshape(B, H // P, P, W // P, P, C)"],
    "patchify_backward": ["unpatchify(dout", "moves them back", "transpose(0, 1, 3, 2, 4, 5)",
                          "dout.reshape(B, H // P, W // P, P, P, C)"],
    "linear_forward": ["x.reshape(-1, D_in) @ w", "x.reshape(-1, x.shape[-1]) @ w"],
    "linear_backward": ["dy2 @ w.T", "x2.T @ dy2", "dy w^T", "x^T dy", "dy2.sum(axis=0)", "@ w.T", ".T @ dy"],
    "cls_token_forward": ["broadcast_to(cls", "empty((B, N + 1, D)"],
    "cls_token_backward": ["dout[:, 1:]", "dout[:, :1]", "sum over the batch", "sum over b of dout[b, 0]"],
    "pos_embed_forward": ["Broadcasting adds pos"],
    "pos_embed_backward": ["dx = dout", "dout.sum(axis=0", "sum over the batch", "sum over b of dout[b]"],
    "softmax_forward": ["x - x.max(", "exp(x - max(x))", "softmax(x) = softmax(x - c)", "e / e.sum("],
    "softmax_backward": ["s * (dout - ", "sum(dout * s", "(dout * s).sum", "delta_ij - s_j", "s (1 - s)",
                         "s * (1 - s)",
                         "sum(s * dout", "s * sum(dout"],
    "attention_forward": ["q @ k.swapaxes(-1, -2)", "1 / math.sqrt(d)", "softmax_forward(S, -1)"],
    "attention_backward": ["dout v^T", "A^T dout", "rowsum(dA * A)", "A * (dA - ", "scale * dS k", "dS^T q",
                           "dS @ k", "dS.swapaxes(-1, -2) @ q", "A.swapaxes(-1, -2) @ dout",
                           "dout @ v.swapaxes(-1, -2)", "(dA * A).sum(", "sum(dA * A", "sum(A * dA", "dS^T q", "A * sum(",
                           "dS @ q", "dS.T @ q"],
    "split_heads": ["transpose(0, 2, 1, 3)", "reshape(B, T, num_heads", "reshape (B, T, h, d)"],
    "merge_heads": ["transpose(0, 2, 1, 3)", "reshape(B, T, h * d)"],
    "split_heads_backward": ["merge_heads(dout)", "dx = merge_heads"],
    "merge_heads_backward": ["split_heads(dout", "dx = split_heads"],
    "mhsa_forward": ["transpose(2, 0, 3, 1, 4)", "reshape(B, T, 3, num_heads", "(B, T, 3, h, d)", "(3, B, h, T, d)"],
    "mhsa_backward": ["transpose(1, 3, 0, 2, 4)", "stack([dq, dk, dv])", "stack dq, dk, dv", "stack(dq, dk, dv)",
                      "axes (1, 3, 0, 2, 4)"],
    "layernorm_forward": ["ddof", "rstd = 1/sqrt(var + eps)", "1 / np.sqrt(var + eps)"],
    "layernorm_backward": ["mean(g * xhat)", "g - mean(g)", "rstd * (g", "g = dy * gamma", "dy * gamma", "dxhat",
                           "dy2 * xhat", "sum of dy * xhat", "(g * xhat).mean", "g.mean(", "rstd^3", "dmu = -rstd",
                           "dvar = sum",
                           "rstd * mean(g", "xhat * mean(g", "sum(dy * xhat)", "(dy * xhat).sum"],
    "gelu_forward": ["x * x * x"],
    "gelu_backward": ["(1 - t^2)", "1 - t * t", "0.5 (1 + t) +", "0.5 * (1 + t) +", "Phi(x) + x phi(x)",
                      "Phi + x * phi", "cdf + x * pdf", "1 + 3 * 0.044715 x^2", "3 * 0.044715", "sech2", "sech^2",
                      "exp(-x^2 / 2)", "exp(-0.5 * x * x)"],
    "mlp_forward": ["F.linear_forward(a, w2, b2)", "gelu_forward(h, approximate)"],
    "mlp_backward": ["gelu_backward(da", "linear_backward(dh", "linear_backward(dout"],
    "cross_entropy_forward": ["log(sum(exp(s - max(s))))", "s - max(s) - log", "eye(K)[labels]",
                              "logits - logits.max(",
                              "log(sum(exp(s - max", "(s - max) - log"],
    "cross_entropy_backward": ["softmax(logits) - target", "softmax(s) - t", "exp(log_p", "exp(log_probs)",
                               "- target) / B", "(p - t)", "- t) / B", "(softmax(s) - t)", "(probs - target)", "p - onehot"],
    "encoder_block_forward": ["-> F.dropout_forward", "dropout_forward(a, dropout, rng, train)"],
    "encoder_block_backward": ["dz1 += dout", "dx += dz1", "+ dout", "+ dz1", "Undo drop_path before dropout",
                               "dz1_branch"],
    "adamw_update": ["m *= b1", "w -= step_size", "1 - lr * weight_decay", "sqrt(1 - b2^t) / (1 - b1^t)",
                     "eps * sqrt(1 - b2^t)"],
    "warmup_cosine": ["max(1, total_steps - warmup_steps)", "min(1.0, progress)", "min(1, (step - warmup_steps)"],
}


def normalize(text):
    """Spacing, capitals, np./xp. prefixes and ** vs ^ do not matter."""
    text = re.sub(r"\s+", "", text).lower()
    return re.sub(r"\b[nx]p\.", "", text).replace("**", "^")


def _doc(name):
    return inspect.getdoc(getattr(ops.reference(), name)) or ""


def _exercises_text():
    folder = ROOT / "exercises"
    return {p.name: p.read_text() for p in sorted(folder.glob("ex*.py")) + [folder / "README.md"]}


def test_the_list_covers_every_exercise_function():
    assert set(DERIVED) == set(EXERCISE_FUNCTIONS)


@pytest.mark.parametrize("name", EXERCISE_FUNCTIONS)
def test_reference_docstring_has_a_contract_and_a_derivation(name):
    doc = _doc(name)
    assert doc.count(stubs.DERIVATION) == 1, name
    contract, derivation = doc.split(stubs.DERIVATION)
    assert len(contract.split()) >= 8 and len(derivation.split()) >= 5, name
    assert stubs.contract(doc) == contract.rstrip()
    if name.endswith("_backward"):                  # a backward's contract says what comes back
        assert "->" in contract or "returns" in contract, name
    # the list is not stale: some of its expressions are in this function's derivation or hints
    e = hints.entry(name)
    library = normalize(derivation + e["steps"] + e["formula"] + e["code"] + e["approach"])
    assert any(normalize(x) in library for x in DERIVED[name]), name
    # and none is in the contract
    assert not [x for x in DERIVED[name] if normalize(x) in normalize(contract)], name


def test_no_derived_expression_in_the_exercises_folder():
    found = [(file, name, x) for file, text in _exercises_text().items() for name, exprs in DERIVED.items()
             for x in exprs if normalize(x) in normalize(text)]
    assert not found, found


def test_the_generated_stubs_carry_the_contract_only():
    for file, text in stubs.render_stubs().items():
        assert "Derivation:" not in text and "Hints:" not in text, file
        for name, exprs in DERIVED.items():
            assert not [x for x in exprs if normalize(x) in normalize(text)], (file, name)
    text = stubs.render_function("layernorm_backward")
    assert all(line.strip() in text for line in stubs.contract(_doc("layernorm_backward")).splitlines())
    assert "python -m minivit hint layernorm_backward" in text


def test_the_check_sees_a_formula_put_back():
    """A stub that still carried a derivation would be caught, whatever its spacing."""
    text = "dx = rstd*(g - mean( g*XHAT ))"
    assert normalize("mean(g * xhat)") in normalize(text)
    assert normalize("(1 - t^2)") in normalize("(1 - t**2)")
    assert normalize("softmax(logits) - target") in normalize("np.softmax(logits)-target")


def test_the_stubs_import_only_public_names():
    """A stub shows the learner minivit's public API: no ``from minivit... import _private``."""
    from minivit.layers import activation

    for file, text in stubs.render_stubs().items():
        for line in text.splitlines():
            if line.startswith("from minivit"):
                imported = line.split(" import ", 1)[1].split("#")[0]
                assert not any(n.strip().startswith("_") for n in imported.split(",")), f"{file}: {line}"
    assert activation._erf is activation.erf          # learners' older files import erf by its old name
