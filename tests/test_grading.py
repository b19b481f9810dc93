"""The exercise grader (``python -m minivit grade``) and the stub generator (``python -m minivit.stubs``).

* the committed stubs are what the generator makes from minivit's reference code (no drift);
* untouched stubs score 0 with "not implemented" feedback; stubs filled with minivit's reference
  functions score full marks;
* every common mistake, planted in an otherwise correct topic, loses points and is named;
* a syntax error or an exception at import in one topic is reported and the others are graded;
* ``--json`` output, ``--list``, exit status 0 whatever the score;
* ``train --impl exercises`` refuses a folder where no topic passes, runs minivit's code for a topic
  that fails, and the Trainer runs an epoch on (reference-filled) exercise functions
  (tests/test_train_exercises.py: a partial set of passing topics).

The "solutions" are written into tmp folders as files that hold minivit's reference code as text:
no solutions folder is committed.
"""
import json
import textwrap
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from minivit.cli import main as cli
from minivit import grading
from minivit.grading import stubs
from minivit.grading import TOPICS, TOPIC_BY_NAME, TOPIC_NAMES, grade
from reference_solutions import render_solution

ROOT = Path(__file__).resolve().parents[1]
HEAD = "import math\n\nimport numpy as np\n\n"


def write_reference(folder, topic=None, code=""):
    """An exercises folder of solved files (minivit's reference code typed in, as source text:
    ``reference_solutions``); ``code`` is appended to ``topic``'s file (to plant a mistake: a wrong
    definition replaces the typed-in one)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for t in TOPICS:
        src = render_solution(t.name)
        if t.name == topic:
            src += "\n\n" + HEAD + textwrap.dedent(code)
        (folder / t.file).write_text(src)
    return folder


@pytest.fixture(scope="module")
def stub_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("stubs")
    stubs.write_stubs(d)
    return d


@pytest.fixture(scope="module")
def reference_dir(tmp_path_factory):
    return write_reference(tmp_path_factory.mktemp("reference"))


# ================================================================================ stubs
def test_stubs_are_up_to_date():
    """The committed stubs equal what the generator makes from the reference (files a learner has
    edited in a working copy are skipped)."""
    status = stubs.stub_status(ROOT / "exercises")
    stale = {f: s for f, s in status.items() if s in ("missing", "outdated")}
    assert not stale, f"exercise stubs out of date: {stale}; run python -m minivit.stubs"


def test_stub_signatures_and_docstrings_follow_the_reference(stub_dir):
    import inspect

    ns, errors = grading.load_exercises(stub_dir)
    assert not errors
    ref = grading.REF
    for t in TOPICS:
        for name in t.functions:
            mine, theirs = getattr(ns, name), getattr(ref, name)
            assert inspect.signature(mine) == inspect.signature(theirs), name
            # the contract of the reference docstring (not its Derivation:), then where the hints are
            assert inspect.getdoc(mine).startswith(stubs.contract(inspect.getdoc(theirs))), name
            assert "Derivation:" not in inspect.getdoc(mine), name
            assert f"python -m minivit hint {name}" in inspect.getdoc(mine), name
            with pytest.raises(NotImplementedError):
                mine(*[None] * len(inspect.signature(mine).parameters))


def test_stub_generator_keeps_learner_work(tmp_path):
    actions = stubs.write_stubs(tmp_path)
    assert set(actions.values()) == {"written"}
    f = tmp_path / TOPIC_BY_NAME["layernorm"].file
    edited = f.read_text().replace('raise NotImplementedError("layernorm_forward: your code here")',
                                   "return x, None", 1)
    f.write_text(edited)
    assert stubs.stub_status(tmp_path)[f.name] == "edited"
    assert stubs.write_stubs(tmp_path)[f.name].startswith("kept")
    assert f.read_text() == edited
    # an untouched but outdated stub (an old docstring, say) is refreshed without --force
    g = tmp_path / TOPIC_BY_NAME["loss"].file
    g.write_text(g.read_text().replace("Stuck?", "Stuck (old)?", 1))
    assert stubs.stub_status(tmp_path)[g.name] == "outdated"
    assert stubs.main(["--check", "--out", str(tmp_path)]) == 1
    assert stubs.write_stubs(tmp_path)[g.name] == "updated"
    assert stubs.write_stubs(tmp_path, force=True)[f.name] == "overwritten"
    assert stubs.main(["--check", "--out", str(tmp_path)]) == 0


# ================================================================================ scores
def test_stubs_score_zero(stub_dir):
    report = grade(path=stub_dir)
    assert report["total"] == 0 and report["max"] > 0
    assert set(report["topics"]) == set(TOPIC_NAMES)
    for name, t in report["topics"].items():
        assert t["points"] == 0 and t["max"] > 0 and t["error"] is None, name
        for c in t["checks"]:
            assert c["status"] == "todo" and "not implemented yet" in c["feedback"], (name, c)
    assert "not implemented yet" in grading.format_report(report)


def test_reference_scores_full_marks(reference_dir):
    report = grade(path=reference_dir)
    assert report["total"] == report["max"] == sum(grading.max_points().values()), grading.format_report(report)
    for name, t in report["topics"].items():
        assert t["points"] == t["max"], grading.format_topic(name, t)


def test_partial_topic(tmp_path):
    """A written forward scores while its unwritten backward is reported as not implemented."""
    d = write_reference(tmp_path, "layernorm", """
        def layernorm_backward(dy, cache):
            raise NotImplementedError("layernorm_backward: your code here")
    """)
    t = grade(["layernorm"], d)["topics"]["layernorm"]
    fwd = t["checks"][0]
    assert fwd["status"] == "ok" and fwd["points"] == fwd["max"] > 0
    todo = [c for c in t["checks"] if c["status"] == "todo"]
    assert todo and all("layernorm_backward is not implemented yet" in c["feedback"] for c in todo)
    assert 0 < t["points"] < t["max"]


# ====================================================================== planted mistakes
PLANTED = {
    "missing_scale": ("attention", """
        def attention_forward(q, k, v):
            A, _ = softmax_forward(q @ k.swapaxes(-1, -2), -1)
            return A @ v, (q, k, v, A, 1.0)
    """),
    "softmax_axis": ("attention", """
        def attention_forward(q, k, v):
            scale = 1.0 / math.sqrt(q.shape[-1])
            A, _ = softmax_forward(q @ k.swapaxes(-1, -2) * scale, -2)
            return A @ v, (q, k, v, A, scale)
    """),
    "softmax_axis/ignores-axis": ("attention", """
        def softmax_forward(x, axis=-1):
            e = np.exp(x - x.max(axis=-1, keepdims=True))
            e /= e.sum(axis=-1, keepdims=True)
            return e, (e, -1)
    """),
    "no_max_subtraction": ("attention", """
        def softmax_forward(x, axis=-1):
            e = np.exp(x)
            e = e / e.sum(axis=axis, keepdims=True)
            return e, (e, axis)
    """),
    "softmax_diagonal_jacobian": ("attention", """
        def softmax_backward(dout, cache):
            s, axis = cache
            return s * (1 - s) * dout
    """),
    "float64_promotion": ("attention", """
        def attention_forward(q, k, v):
            scale = 1.0 / np.sqrt(q.shape[-1])
            A, _ = softmax_forward(q @ k.swapaxes(-1, -2) * scale, -1)
            return A @ v, (q, k, v, A, scale)
    """),
    "input_modified": ("attention", """
        def softmax_forward(x, axis=-1):
            x -= x.max(axis=axis, keepdims=True)
            np.exp(x, out=x)
            x /= x.sum(axis=axis, keepdims=True)
            return x, (x, axis)
    """),
    "unbiased_variance": ("layernorm", """
        def layernorm_forward(x, gamma, beta, eps=1e-6):
            mu = x.mean(axis=-1, keepdims=True)
            rstd = 1.0 / np.sqrt(x.var(axis=-1, keepdims=True, ddof=1) + eps)
            xhat = (x - mu) * rstd
            return xhat * gamma + beta, (xhat, rstd, gamma)
    """),
    "missing_eps": ("layernorm", """
        def layernorm_forward(x, gamma, beta, eps=1e-6):
            mu = x.mean(axis=-1, keepdims=True)
            rstd = 1.0 / np.sqrt(x.var(axis=-1, keepdims=True))
            xhat = (x - mu) * rstd
            return xhat * gamma + beta, (xhat, rstd, gamma)
    """),
    "eps_outside_sqrt": ("layernorm", """
        def layernorm_forward(x, gamma, beta, eps=1e-6):
            mu = x.mean(axis=-1, keepdims=True)
            xhat = (x - mu) / (x.std(axis=-1, keepdims=True) + eps)
            return xhat * gamma + beta, (xhat, None, gamma)
    """),
    "bias_grad_not_summed": ("patch", """
        def linear_backward(dy, cache):
            x, w = cache
            dw = x.reshape(-1, x.shape[-1]).T @ dy.reshape(-1, dy.shape[-1])
            return dy @ w.T, dw, dy.sum(axis=0)          # summed over the batch only
    """),
    "bias_grad_not_summed/not-at-all": ("patch", """
        def linear_backward(dy, cache):
            x, w = cache
            dw = x.reshape(-1, x.shape[-1]).T @ dy.reshape(-1, dy.shape[-1])
            return dy @ w.T, dw, dy
    """),
    "bias_grad_not_summed/pos-embed": ("tokens", """
        def pos_embed_backward(dout, cache):
            return dout, dout
    """),
    "bias_grad_not_summed/cls-token": ("tokens", """
        def cls_token_backward(dout, cache):
            return dout[:, 1:], dout[:, :1]
    """),
    "patch_channel_first": ("patch", """
        def patchify_forward(x, patch_size):
            B, H, W, C = x.shape
            P = patch_size
            out = x.reshape(B, H // P, P, W // P, P, C).transpose(0, 1, 3, 5, 2, 4).reshape(B, -1, P * P * C)
            return out, (x.shape, P)
    """),
    "patch_grid_column_major": ("patch", """
        def patchify_forward(x, patch_size):
            B, H, W, C = x.shape
            P = patch_size
            out = x.reshape(B, H // P, P, W // P, P, C).transpose(0, 3, 1, 2, 4, 5).reshape(B, -1, P * P * C)
            return out, (x.shape, P)
    """),
    "patch_no_transpose": ("patch", """
        def patchify_forward(x, patch_size):
            B, H, W, C = x.shape
            return x.reshape(B, -1, patch_size * patch_size * C), x.shape

        def patchify_backward(dout, cache):
            return dout.reshape(cache)
    """),
    "gelu_form_swapped": ("mlp", """
        _gelu = gelu_forward

        def gelu_forward(x, approximate="tanh"):
            return _gelu(x, "tanh")                      # ignores approximate='none'
    """),
    "gelu_form_swapped/exact-for-tanh": ("mlp", """
        _gelu = gelu_forward

        def gelu_forward(x, approximate="tanh"):
            return _gelu(x, "none" if approximate == "tanh" else "tanh")
    """),
    "gelu_product_rule": ("mlp", """
        def gelu_backward(dout, cache):
            x, t, approximate = cache
            return dout * 0.5 * (1 + t)
    """),
    "label_smoothing_missing": ("loss", """
        _ce = cross_entropy_forward

        def cross_entropy_forward(logits, labels, label_smoothing=0.0):
            return _ce(logits, labels, 0.0)
    """),
    "label_smoothing_k_minus_1": ("loss", """
        def cross_entropy_forward(logits, labels, label_smoothing=0.0):
            B, K = logits.shape
            t = np.eye(K)[labels] if labels.ndim == 1 else labels.astype(float)
            if label_smoothing:
                t = t * (1 - label_smoothing) + (1 - t) * label_smoothing / (K - 1)
            s = logits - logits.max(axis=1, keepdims=True)
            lp = s - np.log(np.exp(s).sum(axis=1, keepdims=True))
            return float(-(t * lp).sum() / B), (lp, t)
    """),
    "no_max_subtraction/cross-entropy": ("loss", """
        def cross_entropy_forward(logits, labels, label_smoothing=0.0):
            B, K = logits.shape
            t = np.eye(K)[labels] if labels.ndim == 1 else labels.astype(float)
            t = t * (1 - label_smoothing) + label_smoothing / K
            lp = np.log(np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True))
            return float(-(t * lp).sum() / B), (lp, t)
    """),
    "dlogits_not_averaged": ("loss", """
        def cross_entropy_backward(cache, dloss=1.0):
            lp, t = cache
            return dloss * (np.exp(lp) - t)
    """),
    "coupled_weight_decay": ("optim", """
        def adamw_update(w, g, m, v, t, lr, b1=0.9, b2=0.999, eps=1e-8, weight_decay=0.0):
            g = g + weight_decay * w
            m *= b1; m += (1 - b1) * g
            v *= b2; v += (1 - b2) * g * g
            w -= lr * (m / (1 - b1 ** t)) / (np.sqrt(v / (1 - b2 ** t)) + eps)
    """),
    "missing_bias_correction": ("optim", """
        def adamw_update(w, g, m, v, t, lr, b1=0.9, b2=0.999, eps=1e-8, weight_decay=0.0):
            m *= b1; m += (1 - b1) * g
            v *= b2; v += (1 - b2) * g * g
            w -= lr * (m / (np.sqrt(v) + eps) + weight_decay * w)
    """),
    "not_in_place": ("optim", """
        def adamw_update(w, g, m, v, t, lr, b1=0.9, b2=0.999, eps=1e-8, weight_decay=0.0):
            m *= b1; m += (1 - b1) * g
            v *= b2; v += (1 - b2) * g * g
            w = w - lr * (m / (1 - b1 ** t) / (np.sqrt(v / (1 - b2 ** t)) + eps) + weight_decay * w)
    """),
    "warmup_off_by_one": ("optim", """
        _schedule = warmup_cosine

        def warmup_cosine(step, total_steps, base_lr, warmup_steps=0, min_lr=0.0):
            if step < warmup_steps:
                return base_lr * step / warmup_steps
            return _schedule(step, total_steps, base_lr, warmup_steps, min_lr)
    """),
    "qkv_layout": ("multihead", """
        from minivit.ops import F

        def mhsa_forward(x, w_qkv, b_qkv, w_out, b_out, num_heads):
            B, T, D = x.shape
            qkv, c1 = F.linear_forward(x, w_qkv, b_qkv)
            qkv = qkv.reshape(B, T, num_heads, 3, D // num_heads).transpose(3, 0, 2, 1, 4)
            heads, c2 = F.attention_forward(qkv[0], qkv[1], qkv[2])
            out, c3 = F.linear_forward(merge_heads(heads), w_out, b_out)
            return out, (c1, c2, c3, num_heads)
    """),
    "heads_reshape_only": ("multihead", """
        def split_heads(x, num_heads):
            B, T, D = x.shape
            return x.reshape(B, num_heads, T, D // num_heads)
    """),
    "post_norm": ("block", """
        from minivit.ops import F

        def encoder_block_forward(x, p, num_heads, eps=1e-6, approximate="tanh", dropout=0.0, drop_path=0.0,
                                  rng=None, train=False):
            a, _ = F.mhsa_forward(x, p["w_qkv"], p["b_qkv"], p["w_out"], p["b_out"], num_heads)
            z1, _ = F.layernorm_forward(x + a, p["ln1_gamma"], p["ln1_beta"], eps)
            m, _ = F.mlp_forward(z1, p["w1"], p["b1"], p["w2"], p["b2"], approximate)
            return F.layernorm_forward(z1 + m, p["ln2_gamma"], p["ln2_beta"], eps)[0], None
    """),
    "missing_residual_grad": ("block", """
        from minivit.ops import F

        def encoder_block_backward(dout, cache):
            ln1, attn, drop1, path1, ln2, mlp, drop2, path2 = cache
            g = {}
            dh, g["w1"], g["b1"], g["w2"], g["b2"] = F.mlp_backward(dout, mlp)
            dz1, g["ln2_gamma"], g["ln2_beta"] = F.layernorm_backward(dh, ln2)
            dz1 = dz1 + dout
            dh, g["w_qkv"], g["b_qkv"], g["w_out"], g["b_out"] = F.mhsa_backward(dz1, attn)
            dx, g["ln1_gamma"], g["ln1_beta"] = F.layernorm_backward(dh, ln1)
            return dx, g                                 # forgot dx += dz1
    """),
    "scale_1_over_d": ("attention", """
        def attention_forward(q, k, v):
            s = 1.0 / q.shape[-1]
            A, _ = softmax_forward(q @ k.swapaxes(-1, -2) * s, -1)
            return A @ v, (q, k, v, A, s)
    """),
    "attention_transposed": ("attention", """
        def attention_forward(q, k, v):
            s = 1.0 / math.sqrt(q.shape[-1])
            A, _ = softmax_forward(q @ k.swapaxes(-1, -2) * s, -1)
            return A.swapaxes(-1, -2) @ v, (q, k, v, A, s)
    """),
    "missing_scale_backward": ("attention", """
        _ab = attention_backward
        def attention_backward(dout, cache):
            q, k, v, A, s = cache
            return _ab(dout, (q, k, v, A, 1.0))
    """),
    "dk_not_transposed": ("attention", """
        def attention_backward(dout, cache):
            q, k, v, A, s = cache
            dA = dout @ v.swapaxes(-1, -2)
            dS = softmax_backward(dA, (A, -1)) * s
            return dS @ k, dS @ q, A.swapaxes(-1, -2) @ dout
    """),
    "broadcast_keepdims": ("attention", """
        def softmax_forward(x, axis=-1):
            e = np.exp(x - x.max(axis=axis))
            e = e / e.sum(axis=axis)
            return e, (e, axis)
    """),
    "heads_interleaved": ("multihead", """
        def merge_heads(x):
            B, h, T, d = x.shape
            return x.transpose(0, 2, 3, 1).reshape(B, T, h * d)
    """),
    "scale_model_width": ("multihead", """
        from minivit.ops import F
        def mhsa_forward(x, w_qkv, b_qkv, w_out, b_out, num_heads):
            B, T, D = x.shape
            qkv, c1 = F.linear_forward(x, w_qkv, b_qkv)
            q, k, v = qkv.reshape(B, T, 3, num_heads, D // num_heads).transpose(2, 0, 3, 1, 4)
            A, _ = F.softmax_forward(q @ k.swapaxes(-1, -2) / math.sqrt(D), -1)
            out, c3 = F.linear_forward(merge_heads(A @ v), w_out, b_out)
            return out, (c1, None, c3, num_heads)
    """),
    "missing_out_proj": ("multihead", """
        from minivit.ops import F
        def mhsa_forward(x, w_qkv, b_qkv, w_out, b_out, num_heads):
            B, T, D = x.shape
            qkv, c1 = F.linear_forward(x, w_qkv, b_qkv)
            q, k, v = qkv.reshape(B, T, 3, num_heads, D // num_heads).transpose(2, 0, 3, 1, 4)
            heads, c2 = F.attention_forward(q, k, v)
            return merge_heads(heads), (c1, c2, None, num_heads)
    """),
    "bias_grad_not_summed/mhsa": ("multihead", """
        _mb = mhsa_backward
        def mhsa_backward(dout, cache):
            dx, dwq, dbq, dwo, dbo = _mb(dout, cache)
            return dx, dwq, dbq, dwo, dout.sum(axis=0)
    """),
    "layernorm_dx_constant_stats": ("layernorm", """
        def layernorm_backward(dy, cache):
            xhat, rstd, gamma = cache
            lead = tuple(range(dy.ndim - 1))
            return dy * gamma * rstd, (dy * xhat).sum(axis=lead), dy.sum(axis=lead)
    """),
    "gamma_beta_swapped": ("layernorm", """
        _ln = layernorm_forward
        def layernorm_forward(x, gamma, beta, eps=1e-6):
            return _ln(x, beta, gamma, eps)
    """),
    "bias_grad_not_summed/dbeta": ("layernorm", """
        _lb = layernorm_backward
        def layernorm_backward(dy, cache):
            dx, dg, db = _lb(dy, cache)
            return dx, dg, dy.sum(axis=0)
    """),
    "gelu_sigmoid": ("mlp", """
        def gelu_forward(x, approximate="tanh"):
            return x / (1 + np.exp(-1.702 * x)), x
    """),
    "missing_activation": ("mlp", """
        from minivit.ops import F
        def mlp_forward(x, w1, b1, w2, b2, approximate="tanh"):
            h, c1 = F.linear_forward(x, w1, b1)
            out, c3 = F.linear_forward(h, w2, b2)
            return out, (c1, None, c3)
    """),
    "loss_not_averaged": ("loss", """
        _ce = cross_entropy_forward
        def cross_entropy_forward(logits, labels, label_smoothing=0.0):
            loss, cache = _ce(logits, labels, label_smoothing)
            return loss * logits.shape[0], cache
    """),
    "dloss_ignored": ("loss", """
        _cb = cross_entropy_backward
        def cross_entropy_backward(cache, dloss=1.0):
            return _cb(cache)
    """),
    "decay_after_update": ("optim", """
        def adamw_update(w, g, m, v, t, lr, b1=0.9, b2=0.999, eps=1e-8, weight_decay=0.0):
            m *= b1; m += (1 - b1) * g
            v *= b2; v += (1 - b2) * g * g
            w -= lr * (m / (1 - b1 ** t)) / (np.sqrt(v / (1 - b2 ** t)) + eps)
            w *= 1 - lr * weight_decay
    """),
    "eps_inside_sqrt": ("optim", """
        def adamw_update(w, g, m, v, t, lr, b1=0.9, b2=0.999, eps=1e-8, weight_decay=0.0):
            m *= b1; m += (1 - b1) * g
            v *= b2; v += (1 - b2) * g * g
            w -= lr * ((m / (1 - b1 ** t)) / np.sqrt(v / (1 - b2 ** t) + eps) + weight_decay * w)
    """),
    "cosine_progress": ("optim", """
        def warmup_cosine(step, total_steps, base_lr, warmup_steps=0, min_lr=0.0):
            if step < warmup_steps:
                return base_lr * (step + 1) / warmup_steps
            p = min(1.0, step / total_steps)
            return min_lr + 0.5 * (base_lr - min_lr) * (1 + math.cos(math.pi * p))
    """),
    "no_clamp": ("optim", """
        def warmup_cosine(step, total_steps, base_lr, warmup_steps=0, min_lr=0.0):
            if step < warmup_steps:
                return base_lr * (step + 1) / warmup_steps
            p = (step - warmup_steps) / max(1, total_steps - warmup_steps)
            return min_lr + 0.5 * (base_lr - min_lr) * (1 + math.cos(math.pi * p))
    """),
    "missing_residual": ("block", """
        from minivit.ops import F
        def encoder_block_forward(x, p, num_heads, eps=1e-6, approximate="tanh", dropout=0.0, drop_path=0.0,
                                  rng=None, train=False):
            h, _ = F.layernorm_forward(x, p["ln1_gamma"], p["ln1_beta"], eps)
            a, _ = F.mhsa_forward(h, p["w_qkv"], p["b_qkv"], p["w_out"], p["b_out"], num_heads)
            z1 = x + a
            h, _ = F.layernorm_forward(z1, p["ln2_gamma"], p["ln2_beta"], eps)
            m, _ = F.mlp_forward(h, p["w1"], p["b1"], p["w2"], p["b2"], approximate)
            return m, None
    """),
    "args_not_passed": ("block", """
        _bf = encoder_block_forward
        def encoder_block_forward(x, p, num_heads, eps=1e-6, approximate="tanh", dropout=0.0, drop_path=0.0,
                                  rng=None, train=False):
            return _bf(x, p, num_heads, 1e-6, "tanh", dropout, drop_path, rng, train)
    """),
    "cls_appended": ("tokens", """
        def cls_token_forward(x, cls):
            B, N, D = x.shape
            return np.concatenate([x, np.broadcast_to(cls, (B, 1, D))], axis=1), None
    """),
    "grads_wrong_order": ("patch", """
        _lb = linear_backward
        def linear_backward(dy, cache):
            dx, dw, db = _lb(dy, cache)
            return dx, db, dw
    """),
    "dw_transposed": ("patch", """
        _lb = linear_backward
        def linear_backward(dy, cache):
            dx, dw, db = _lb(dy, cache)
            return dx, dw.T, db
    """),
}


@pytest.mark.parametrize("case", sorted(PLANTED))
def test_planted_mistake_is_named(case, tmp_path):
    key = case.split("/")[0]
    topic, code = PLANTED[case]
    d = write_reference(tmp_path, topic, code)
    t = grade([topic], d)["topics"][topic]
    assert t["error"] is None, t["error"]
    assert t["points"] < t["max"], f"{case}: full marks for a wrong implementation"
    named = [c for c in t["checks"] if c["mistake"] == key]
    assert named, f"{case}: no check named the mistake:\n{grading.format_topic(topic, t)}"
    for c in named:
        assert c["points"] == 0 and c["status"] in ("fail", "error")
        assert grading.MISTAKES[key] in c["feedback"]


def test_every_listed_mistake_has_a_message():
    keys = set()
    for topic in TOPIC_NAMES:
        for P in (grading.PATCH, grading.LINEAR, grading.CLS, grading.POS, grading.SOFTMAX, grading.ATTENTION,
                  grading.MHSA, grading.LAYERNORM, grading.GELU, grading.MLP, grading.BLOCK):
            keys |= {k for k, _ in P.fwd_mistakes} | {k for k, _ in P.bwd_mistakes}
    keys |= {k for k, _ in grading.ADAMW_VARIANTS} | {k for k, _ in grading.WARMUP_VARIANTS}
    keys |= {k for k, _ in grading.LOSS_FWD_MISTAKES}
    assert keys <= set(grading.MISTAKES), keys - set(grading.MISTAKES)


# ====================================================================== broken learner files
def test_syntax_error_and_import_error_do_not_stop_other_topics(tmp_path):
    d = write_reference(tmp_path)
    (d / TOPIC_BY_NAME["attention"].file).write_text("def softmax_forward(x, axis=-1)\n    return x\n")
    (d / TOPIC_BY_NAME["layernorm"].file).write_text("import numpy as np\n\nnp.zeros(3)[7]\n")
    (d / TOPIC_BY_NAME["optim"].file).unlink()
    report = grade(["patch", "attention", "layernorm", "optim", "loss"], d)
    topics = report["topics"]
    assert topics["patch"]["points"] == topics["patch"]["max"]
    assert topics["loss"]["points"] == topics["loss"]["max"]
    att = topics["attention"]
    assert att["points"] == 0 and "SyntaxError" in att["error"] and "line 1" in att["error"]
    ln = topics["layernorm"]
    assert ln["points"] == 0 and "IndexError" in ln["error"] and "line 3" in ln["error"]
    assert all(c["status"] == "error" for c in ln["checks"])
    assert "not found" in topics["optim"]["error"]
    text = grading.format_report(report)
    assert "SyntaxError" in text and "IndexError" in text


def test_exception_in_learner_code_names_the_line(tmp_path):
    d = write_reference(tmp_path, "tokens", """
        def pos_embed_forward(x, pos):
            return x + pos.reshape(7, 7), None
    """)
    t = grade(["tokens"], d)["topics"]["tokens"]
    err = [c for c in t["checks"] if c["status"] == "error"]
    assert err and all("ValueError" in c["feedback"] for c in err)
    assert "ex02_tokens.py, line" in err[0]["feedback"] and "pos.reshape(7, 7)" in err[0]["feedback"]
    assert t["points"] == sum(c["max"] for c in t["checks"] if c["name"].startswith("cls_token"))


def test_renamed_function_and_wrong_return_type(tmp_path):
    d = write_reference(tmp_path, "layernorm", """
        del layernorm_backward

        def layernorm_forward(x, gamma, beta, eps=1e-6):
            return x
    """)
    t = grade(["layernorm"], d)["topics"]["layernorm"]
    fb = [c["feedback"] for c in t["checks"]]
    assert "must return a pair (out, cache)" in fb[0]
    assert any("layernorm_backward not found" in f for f in fb)
    assert t["points"] == 0


def test_endless_loop_times_out(tmp_path):
    d = write_reference(tmp_path, "optim", """
        def warmup_cosine(step, total_steps, base_lr, warmup_steps=0, min_lr=0.0):
            while True:
                pass
    """)
    t = grade(["optim"], d, timeout=10)["topics"]["optim"]      # the other checks pass well inside 10 s
    slow = [c for c in t["checks"] if c["name"].startswith("warmup_cosine")]
    assert all(c["status"] == "timeout" for c in slow)
    assert "timed out after 10 s in warmup_cosine" in slow[0]["feedback"]
    assert t["points"] == t["max"] - sum(c["max"] for c in slow)


# ================================================================================== CLI
def test_cli_grade_text_and_exit_status(stub_dir, capsys):
    assert cli.main(["grade", "--path", str(stub_dir)]) == 0
    out = capsys.readouterr().out
    assert "total" in out and f"0/{sum(grading.max_points().values())}" in out
    for t in TOPICS:
        assert t.file in out


def test_cli_grade_json(reference_dir, capsys):
    assert cli.main(["grade", "attention", "optim", "--path", str(reference_dir), "--json"]) == 0
    out = capsys.readouterr().out.strip()
    assert len(out.splitlines()) == 1
    r = json.loads(out)
    assert list(r["topics"]) == ["attention", "optim"]
    assert r["total"] == r["max"] == sum(t["max"] for t in r["topics"].values()) > 0
    for t in r["topics"].values():
        assert {"title", "file", "points", "max", "error", "checks"} <= set(t)
        for c in t["checks"]:
            assert {"name", "points", "max", "status", "feedback", "mistake"} <= set(c)


def test_cli_grade_list_and_unknown_topic(capsys):
    assert cli.main(["grade", "--list"]) == 0
    out = capsys.readouterr().out
    assert all(n in out for n in TOPIC_NAMES)
    assert cli.main(["grade", "nosuchtopic"]) == 2
    assert "unknown topic nosuchtopic" in capsys.readouterr().err


def test_train_with_unimplemented_exercises_fails_clearly(stub_dir, tmp_path, capsys):
    code = cli.main(["train", "--preset", "smoke", "--impl", "exercises", "--exercises-path", str(stub_dir),
                     "--out", str(tmp_path / "run"), "--device", "cpu"])
    assert code == 2
    err = capsys.readouterr().err
    assert "--impl exercises: no topic" in err and "python -m minivit grade" in err
    assert all(f"graded {t}" in err for t in TOPIC_NAMES)         # decided by the grader, topic by topic
    assert not (tmp_path / "run").exists()


def test_train_with_a_broken_exercise_runs_minivit_for_its_topic(tmp_path):
    d = write_reference(tmp_path / "ex", "mlp", """
        def gelu_forward(x, approximate="tanh"):
            return undefined_name * x, None
    """)
    impl = grading.exercises_impl(d)
    assert [t for t, who in impl.topics.items() if who == "minivit"] == ["mlp"]
    assert not any(hasattr(impl, f) for f in TOPIC_BY_NAME["mlp"].functions)   # the whole topic, not gelu alone
    assert hasattr(impl, "layernorm_backward") and "minivit's code for: mlp " in impl.describe()


# ============================================================================ training
@dataclass
class Tiny:
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    classes: list


def test_trainer_runs_on_exercise_functions(reference_dir, tmp_path):
    from minivit.train.trainer import RECIPES, TrainConfig, Trainer

    ns = grading.exercises_impl(reference_dir)
    calls = {}

    def counted(name, fn):
        def wrapper(*a, **k):
            calls[name] = calls.get(name, 0) + 1
            return fn(*a, **k)
        return wrapper

    impl = {name: counted(name, fn) for name, fn in vars(ns).items()}
    rng = np.random.default_rng(0)
    data = Tiny(rng.integers(0, 256, (32, 32, 32, 3), dtype=np.uint8), rng.integers(0, 3, 32),
                rng.integers(0, 256, (8, 32, 32, 3), dtype=np.uint8), rng.integers(0, 3, 8), ["a", "b", "c"])
    cfg = TrainConfig.from_dict({**RECIPES["smoke"].to_dict(), "epochs": 1, "batch_size": 16, "subset": None,
                                 "test_subset": None, "augment": {},
                                 "model": dict(RECIPES["smoke"].model, dim=16, depth=1, mlp_dim=16)})
    trainer = Trainer(cfg, tmp_path, device="cpu", dataset_obj=data, progress=False, impl=impl)
    history = trainer.fit()
    assert len(history) == 1 and np.isfinite(history[0]["train_loss"])
    for name in ("patchify_forward", "patchify_backward", "cls_token_forward", "pos_embed_backward",
                 "encoder_block_forward", "encoder_block_backward", "layernorm_forward", "linear_backward",
                 "adamw_update", "warmup_cosine"):
        assert calls.get(name, 0) > 0, name


def test_readme_states_the_current_maximum():
    text = (ROOT / "exercises" / "README.md").read_text()
    points = grading.max_points()
    expected = ", ".join(f"{n} {p}" for n, p in points.items()) + f" — total {sum(points.values())}"
    assert expected in " ".join(text.split()), f"update exercises/README.md: 'Maximum: {expected}.'"
