"""Grading the exercises in ``exercises/``: ``python -m minivit grade [TOPIC ...]``.

Every exercise function has the name and signature of a function in minivit's functional core
(``minivit.layers``, ``minivit.optim``). The grader imports each topic file on its own (a
syntax error in one topic does not stop the others), then runs a battery of checks per topic:

* the forward output and the gradients match minivit's reference on random inputs of several
  shapes (float64, relative difference < 1e-6),
* float32 inputs give float32 results that match too (relative difference < 1e-4),
* the backward agrees with centered finite differences of the learner's own forward
  (``minivit.gradcheck``, float64),
* edge cases: huge scores (softmax, attention, cross-entropy), a zero-variance token
  (LayerNorm), |x| up to 100 (GELU), dropout in training mode (block), no warmup (schedule)...

Each check is worth a fixed number of points, all or nothing. When a check fails, the grader
compares the learner's result with known wrong variants computed here ("mistake detectors": the
attention without 1/sqrt(d), softmax over the wrong axis, unbiased variance...) and names the
mistake that matches. While grading, ``minivit.ops.F`` holds minivit's reference functions, so
a composite exercise (multi-head attention, the MLP, the block) that calls ``F.attention_forward``
is graded on its own, whatever the state of the learner's attention exercise.

API: :func:`load_exercises`, :func:`grade`, :func:`format_report`, :func:`exercises_impl`.
"""
from __future__ import annotations

import contextlib
import importlib.util
import inspect
import math
import signal
import sys
import threading
import traceback
import types
import warnings
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from minivit import gradcheck, ops
from minivit.backend import make_rng
from minivit.layers.activation import _erf
from minivit.layers.block import BLOCK_PARAM_NAMES

# --------------------------------------------------------------------------------- topics


@dataclass(frozen=True)
class Topic:
    name: str          # what ``python -m minivit grade NAME`` takes
    file: str          # the exercise file in exercises/
    title: str
    functions: tuple   # the functions the learner writes (all are minivit functions of the same name)


TOPICS = (
    Topic("patch", "ex01_patch_embedding.py", "Patchify + patch embedding (the linear layer)",
          ("patchify_forward", "patchify_backward", "linear_forward", "linear_backward")),
    Topic("tokens", "ex02_tokens.py", "Class token + position embeddings",
          ("cls_token_forward", "cls_token_backward", "pos_embed_forward", "pos_embed_backward")),
    Topic("attention", "ex03_attention.py", "Softmax + scaled dot-product attention",
          ("softmax_forward", "softmax_backward", "attention_forward", "attention_backward")),
    Topic("multihead", "ex04_multihead.py", "Multi-head self-attention",
          ("split_heads", "merge_heads", "split_heads_backward", "merge_heads_backward",
           "mhsa_forward", "mhsa_backward")),
    Topic("layernorm", "ex05_layernorm.py", "Layer normalization",
          ("layernorm_forward", "layernorm_backward")),
    Topic("mlp", "ex06_mlp.py", "GELU + the MLP block",
          ("gelu_forward", "gelu_backward", "mlp_forward", "mlp_backward")),
    Topic("loss", "ex07_loss.py", "Softmax cross-entropy with label smoothing",
          ("cross_entropy_forward", "cross_entropy_backward")),
    Topic("block", "ex08_block.py", "The pre-norm encoder block",
          ("encoder_block_forward", "encoder_block_backward")),
    Topic("optim", "ex09_optim.py", "AdamW + the warmup-cosine schedule",
          ("adamw_update", "warmup_cosine")),
)
TOPIC_NAMES = tuple(t.name for t in TOPICS)
TOPIC_BY_NAME = {t.name: t for t in TOPICS}
EXERCISE_FUNCTIONS = tuple(f for t in TOPICS for f in t.functions)

REF = ops.reference()          # minivit's own implementations, the answer key

TOL64 = 1e-6                   # float64: max |got - want| / max |want|
TOL32 = 1e-4                   # float32 results against the float64 reference
FD_TOL = 1e-6                  # relative error (gradcheck.rel_error) against finite differences
KEY_ZERO_TOL = 1e-8            # |gradient| of the key bias, which is exactly zero
CHECK_TIMEOUT_S = 60           # a learner's endless loop must not hang the grader

# ------------------------------------------------------------------------------- mistakes
# key -> what the learner sees. The detectors below compute each wrong variant and compare.
MISTAKES = {
    # patchify
    "patch_channel_first": "Each patch is flattened channel-first, in (C, P, P) order (the PyTorch (B, C, H, W) habit). "
                           "minivit's images are channels-last and a patch is flattened in (row, col, channel) order: "
                           "reshape to (B, H/P, P, W/P, P, C), transpose to (B, H/P, W/P, P, P, C), then reshape.",
    "patch_grid_column_major": "The patches are ordered column by column over the grid. Order them row-major, like "
                               "reading text: patch n sits at grid row n // (W/P), grid column n % (W/P) - the two grid "
                               "axes go in the order (H/P, W/P).",
    "patch_pixels_column_major": "Inside each patch the pixels are flattened column by column, (col, row, channel). "
                                 "Flatten them row by row: (row, col, channel).",
    "patch_no_transpose": "Patches flattened in the wrong order: a single reshape of (B, H, W, C) to (B, N, P*P*C) "
                          "does not cut the image into patches (it mixes pixels of different patches). Split H and W "
                          "into (H/P, P) and (W/P, P), bring the two grid axes together with a transpose "
                          "-> (B, H/P, W/P, P, P, C), then reshape.",
    # linear and every parameter shared over batch and tokens
    "bias_grad_not_summed": "A parameter's gradient is not summed over the batch and the tokens. Every position "
                            "(every token of every image) used the same parameter, so its gradient is the sum of all "
                            "their contributions: e.g. db = dy.reshape(-1, D_out).sum(axis=0), with the parameter's "
                            "own shape.",
    "grad_mean_not_sum": "A parameter's gradient is averaged over the batch/tokens instead of summed. The loss "
                         "already carries the 1/B; each use of a shared parameter adds its full contribution.",
    "missing_bias": "The bias is missing from the output: y = x W + b.",
    "dw_transposed": "dw has the shape of W transposed: dw = x^T dy, shape (D_in, D_out) like W.",
    # tokens
    "cls_appended": "The class token goes first (position 0 of every sequence), not last.",
    "cls_overwrites": "The class token must be prepended as an extra token (the output has N+1 tokens), not "
                      "written over the first patch.",
    "cls_dx_keeps_token": "dx must drop position 0, the class token's slot: dx = dout[:, 1:] (the input x had N "
                          "tokens, not N+1).",
    "cls_dx_wrong_slice": "dx takes the wrong N positions: the patches sit at positions 1..N, so dx = dout[:, 1:].",
    "param_grad_shape": "The parameter's gradient must have the parameter's own shape (keepdims=True keeps the "
                        "leading axis of size 1).",
    # softmax and attention
    "softmax_axis": "Softmax over the wrong axis: each slice along `axis` (for attention: each row of A, one "
                    "query's weights over all keys, the last axis) must sum to 1.",
    "softmax_keepdims": "keepdims=True is missing: x.max(axis=...) and e.sum(axis=...) drop the axis, so they "
                        "broadcast against the wrong axis. Use keepdims=True so each row uses its own max and sum.",
    "no_max_subtraction": "exp() overflowed for large inputs (inf or NaN in the result). Subtract the maximum "
                          "along the axis before exponentiating: softmax(x) = softmax(x - max(x)), and for a "
                          "log-softmax use s - max - log(sum(exp(s - max))) rather than log(softmax(s)).",
    "softmax_diagonal_jacobian": "Only the diagonal of the softmax Jacobian is used, dx = s (1 - s) dout. The "
                                 "off-diagonal terms -s_i s_j contribute too: dx = s * (dout - sum(dout * s, axis)).",
    "missing_scale": "The 1/sqrt(d) scale is missing: A = softmax(q k^T / sqrt(d)). Without it softmax saturates "
                     "for wide heads and its gradients vanish.",
    "scale_1_over_d": "The scores are divided by d; divide by sqrt(d): A = softmax(q k^T / sqrt(d)).",
    "scale_times_sqrt_d": "The scores are multiplied by sqrt(d); divide by it: A = softmax(q k^T / sqrt(d)).",
    "scale_model_width": "The scores are scaled by 1/sqrt(D), the model width. Each head works in its own "
                         "d = D / num_heads dimensions: scale by 1/sqrt(d).",
    "attention_transposed": "The attention matrix is transposed: out = A v with A[i, j] the weight of key j for "
                            "query i (rows sum to 1), not A^T v.",
    "missing_scale_backward": "dq and dk are missing the 1/sqrt(d) factor: S = q k^T / sqrt(d), so "
                              "dq = dS k / sqrt(d) and dk = dS^T q / sqrt(d).",
    "dk_not_transposed": "dk needs dS transposed: dk = scale * dS^T q (key j collects from every query i).",
    "dv_not_transposed": "dv needs A transposed: dv = A^T dout.",
    # heads
    "heads_reshape_only": "Reshaping (B, T, D) straight to (B, h, T, d) mixes features of different tokens in one "
                          "head. Reshape to (B, T, h, d), then transpose to (B, h, T, d) (and the reverse to merge).",
    "heads_interleaved": "Head j must take the contiguous block of features [j*d, (j+1)*d), not every h-th "
                         "feature: reshape to (B, T, h, d), not (B, T, d, h).",
    "qkv_layout": "The qkv columns are [q | k | v], each D wide and each split into heads: reshape the (B, T, 3D) "
                  "projection to (B, T, 3, h, d), not (B, T, h, 3, d).",
    "no_heads": "The heads are not split: you ran one attention over all D features. Split q, k, v into "
                "num_heads heads of width d = D / num_heads, attend in each, merge the heads.",
    "missing_out_proj": "The output projection is missing: MSA(z) = merge_heads(heads) W_out + b_out.",
    # layernorm
    "unbiased_variance": "Biased vs unbiased variance: you divided by D - 1 (np.var(..., ddof=1), torch.var's "
                         "default). LayerNorm uses the biased variance, mean((x - mu)^2): divide by D.",
    "eps_outside_sqrt": "eps belongs inside the square root: xhat = (x - mu) / sqrt(var + eps), not "
                        "(x - mu) / (sqrt(var) + eps).",
    "missing_eps": "eps is missing: xhat = (x - mu) / sqrt(var + eps). It keeps a token whose features are all "
                   "equal (var = 0) from dividing by zero.",
    "layernorm_axis": "Normalized over the wrong axis: LayerNorm normalizes each token's feature vector on its "
                      "own, with mean and variance over the last axis (D) only.",
    "gamma_beta_swapped": "gamma and beta are swapped: y = gamma * xhat + beta.",
    "layernorm_dx_constant_stats": "dx treats the mean and the variance as constants, but they depend on x too: "
                                   "dx = rstd * (g - mean(g) - xhat * mean(g * xhat)) with g = dy * gamma.",
    "layernorm_dx_no_variance_term": "dx is missing the variance term: dx = rstd * (g - mean(g) - xhat * "
                                     "mean(g * xhat)) with g = dy * gamma.",
    "dgamma_uses_x": "dgamma must use the normalized input: dgamma = sum(dy * xhat), not sum(dy * x).",
    # gelu and mlp
    "gelu_form_swapped": "Exact vs tanh GELU: you computed the other form than `approximate` asks for. "
                         "approximate='tanh': 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))); "
                         "approximate='none': x * Phi(x) = 0.5 x (1 + erf(x / sqrt(2))).",
    "gelu_sigmoid": "That is the sigmoid approximation x * sigmoid(1.702 x). minivit's GELU is the tanh form "
                    "(approximate='tanh') or the exact x * Phi(x) (approximate='none').",
    "gelu_square": "The tanh GELU's inner term is c (x + 0.044715 x^3), with x cubed.",
    "gelu_missing_half": "The factor 0.5 is missing: gelu(x) ~ 0.5 x (1 + tanh(...)).",
    "gelu_product_rule": "The product rule is incomplete: GELU is x times a function of x, so "
                         "d/dx [x * f(x)] = f(x) + x f'(x) (tanh form: f = 0.5 (1 + t); exact form: f = Phi, f' = phi).",
    "relu": "That is ReLU, not GELU.",
    "missing_activation": "The GELU between the two linear layers is missing: MLP(x) = GELU(x W1 + b1) W2 + b2.",
    "activation_position": "GELU goes between the two linear layers: MLP(x) = GELU(x W1 + b1) W2 + b2.",
    "missing_activation_backward": "The gradient must go back through GELU: dh = gelu_backward(da) before the first "
                                   "linear layer's backward.",
    # loss
    "loss_not_averaged": "The loss is summed over the batch; take the mean: loss = -(1/B) sum_b sum_k t_bk log p_bk.",
    "loss_mean_over_classes": "The loss is averaged over the classes too; sum over the classes, average over the "
                              "batch only.",
    "loss_sign": "The sign is flipped: the loss is minus the mean log-probability of the targets.",
    "missing_log": "The log is missing: cross-entropy is -mean(sum_k t_k log softmax(s)_k).",
    "label_smoothing_missing": "The label-smoothing term is missing: the target becomes "
                               "t = (1 - eps) * onehot + eps / K (eps = label_smoothing, K classes), in the loss and "
                               "in its gradient.",
    "label_smoothing_k_minus_1": "Label smoothing spreads eps over the K - 1 wrong classes here. minivit (like "
                                 "Szegedy et al. and PyTorch) spreads eps / K over all K classes, the true one "
                                 "included: t = (1 - eps) * onehot + eps / K.",
    "label_smoothing_no_uniform": "Label smoothing is half done: t = (1 - eps) * onehot + eps / K; the uniform "
                                  "part eps / K is missing.",
    "soft_targets_ignored": "(B, K) float labels are soft targets (mixup, cutmix): use them as the target "
                            "distribution t directly.",
    "dlogits_not_averaged": "dlogits is missing the 1/B of the batch mean: dlogits = (softmax(s) - t) / B.",
    "dlogits_sign": "The sign is flipped: dlogits = (softmax(s) - t) / B.",
    "dloss_ignored": "dloss is ignored: multiply by the upstream gradient, dlogits = dloss * (softmax(s) - t) / B.",
    # block
    "post_norm": "That is a post-norm block (LayerNorm after the residual add, as in the original Transformer). "
                 "ViT is pre-norm: z' = z + MSA(LN(z)), out = z' + MLP(LN(z')).",
    "missing_residual": "A residual connection is missing: z' = z + MSA(LN(z)) and out = z' + MLP(LN(z')).",
    "mlp_reads_input": "The MLP branch must read z' = x + MSA(LN(x)), the attention sub-block's output, not x.",
    "layernorm_params_shared": "The second LayerNorm must use its own parameters ln2_gamma, ln2_beta.",
    "args_not_passed": "Pass eps on to F.layernorm_forward and approximate on to F.mlp_forward: the block was "
                       "called with other values than the defaults.",
    "missing_residual_grad": "A residual's gradient is missing in the backward: a residual z' = z + f(z) sends "
                             "the upstream gradient both through f and straight to z, so add it (dz1 += dout, "
                             "dx += dz1).",
    # optimizer
    "not_in_place": "Not updated in place: `w = w - ...` (or `m = b1 * m + ...`) only rebinds a local name, and the "
                    "caller's array stays unchanged. Write into the arrays: w -= ..., m *= b1; m += ..., "
                    "or w[...] = ....",
    "coupled_weight_decay": "Coupled weight decay (L2 regularization): you added weight_decay * w to the gradient, "
                            "so Adam rescales it by 1/sqrt(v_hat). AdamW decays the weights directly: "
                            "w -= lr * (m_hat / (sqrt(v_hat) + eps) + weight_decay * w) - that is what decoupled means.",
    "missing_bias_correction": "The bias correction is missing: m_hat = m / (1 - b1^t), v_hat = v / (1 - b2^t). "
                               "Without it the first steps are far too small (m and v start at zero).",
    "decay_after_update": "The weight decay is applied after the Adam step, to the updated w. Decay the old w: "
                          "w -= lr * (m_hat / (sqrt(v_hat) + eps) + weight_decay * w).",
    "decay_without_lr": "The decay term is scaled by lr too: w -= lr * weight_decay * w.",
    "eps_inside_sqrt": "eps goes outside the square root: m_hat / (sqrt(v_hat) + eps).",
    "step_off_by_one": "The step count t is off by one: t starts at 1 (the first step divides by 1 - b1^1).",
    "weight_decay_ignored": "weight_decay is ignored: w -= lr * (m_hat / (sqrt(v_hat) + eps) + weight_decay * w).",
    "warmup_off_by_one": "Warmup off by one: `step` is 0-based and the first step should not have lr = 0; "
                         "lr = base_lr * (step + 1) / warmup_steps, reaching base_lr at step warmup_steps - 1.",
    "cosine_progress": "The cosine progress must count from the end of the warmup: "
                       "progress = (step - warmup_steps) / (total_steps - warmup_steps).",
    "min_lr_ignored": "min_lr is ignored: lr = min_lr + 0.5 (base_lr - min_lr) (1 + cos(pi * progress)).",
    "cosine_missing_half": "The factor 0.5 is missing: lr = min_lr + 0.5 (base_lr - min_lr) (1 + cos(pi * progress)).",
    "linear_decay": "That decays linearly; the schedule is a cosine: lr = min_lr + 0.5 (base_lr - min_lr) "
                    "(1 + cos(pi * progress)).",
    "no_clamp": "Past total_steps the rate must stay at min_lr: clamp progress at 1 (cos keeps going up otherwise).",
    # generic
    "float64_promotion": "float32 inputs gave a float64 result: something promoted the dtype - typically a NumPy "
                         "float64 scalar (1 / np.sqrt(d); use math.sqrt(d)) or an array created without a dtype "
                         "(np.zeros(shape) is float64; pass dtype=x.dtype).",
    "input_modified": "An input was modified in place (e.g. `x -= x.max(...)` or `x *= ...` on an argument): the "
                      "caller's array changed. Compute into a new array instead (x = x - ...).",
    "grads_wrong_order": "The gradients are returned in the wrong order.",
    "broadcast_keepdims": "Shapes that do not line up. A sum/max/mean over an axis drops that axis unless you pass "
                          "keepdims=True (x - x.max(axis=-1) fails or pairs the wrong numbers); otherwise an operand "
                          "needs a reshape or a transpose.",
}


class Fail(Exception):
    """A failed check; the message is the learner's feedback, ``mistake`` the detected mistake's key."""

    def __init__(self, message, mistake=None):
        super().__init__(message)
        self.mistake = mistake


class _Timeout(BaseException):   # not an Exception: detectors' `except Exception` must not swallow it
    pass


@dataclass
class Check:
    name: str                 # shown to the learner
    functions: tuple          # the learner's functions it calls
    points: int
    run: object               # run(ns: dict) -> None, raises Fail


# ------------------------------------------------------------------------------ helpers
def _rng(label):
    return np.random.default_rng(zlib.crc32(label.encode()))


def _copy(a):
    if isinstance(a, np.ndarray):
        return a.copy()
    if isinstance(a, dict):
        return {k: _copy(v) for k, v in a.items()}
    if isinstance(a, tuple):
        return tuple(_copy(v) for v in a)
    return a


def _cast(a, dtype):
    if isinstance(a, np.ndarray) and np.issubdtype(a.dtype, np.floating):
        return a.astype(dtype)
    if isinstance(a, dict):
        return {k: _cast(v, dtype) for k, v in a.items()}
    if isinstance(a, tuple):
        return tuple(_cast(v, dtype) for v in a)
    return a


def _same(a, b):
    if isinstance(a, np.ndarray):
        return isinstance(b, np.ndarray) and a.shape == b.shape and np.array_equal(a, b, equal_nan=True)
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    return True


def _kind(x):
    if isinstance(x, np.ndarray):
        return f"an array of shape {tuple(x.shape)}"
    if isinstance(x, (tuple, list)):
        return f"a {type(x).__name__} of {len(x)} items"
    if x is None:
        return "None"
    n = type(x).__name__
    return f"{'an' if n[0] in 'aeiou' else 'a'} {n}"


def _as_array(name, x):
    if isinstance(x, np.ndarray):
        return x
    raise Fail(f"{name} should be a NumPy array, got {_kind(x)}")


def _mismatch(name, got, want, tol=TOL64):
    """None when ``got`` matches ``want`` (same shape, relative difference < tol), else a description."""
    got = _as_array(name, got)
    if got.shape != want.shape:
        return f"{name} has shape {tuple(got.shape)}, expected {tuple(want.shape)}"
    g, w = got.astype(np.float64), want.astype(np.float64)
    if not np.all(np.isfinite(g)):
        return f"{name} contains NaN or inf" + ("" if np.all(np.isfinite(w)) else " (so does the reference)")
    if w.size == 0:
        return None
    diff = np.abs(g - w)
    scale = max(float(np.abs(w).max()), 1e-30)
    if float(diff.max()) <= tol * scale:
        return None
    if not np.any(g):
        return f"{name} is all zeros"
    ix = np.unravel_index(int(np.argmax(diff)), diff.shape)
    ix_s = tuple(int(i) for i in ix)
    return (f"{name} differs from the reference: largest difference {diff.max():.3g} at index {ix_s} "
            f"(expected {w[ix]:.6g}, got {g[ix]:.6g})")


def _matches(got, want, tol=1e-5):
    try:
        got = np.asarray(got, dtype=np.float64)
        want = np.asarray(want, dtype=np.float64)
    except Exception:
        return False
    if got.shape != want.shape or not np.all(np.isfinite(got)) or not np.all(np.isfinite(want)):
        return False
    return float(np.abs(got - want).max(initial=0.0)) <= tol * max(float(np.abs(want).max(initial=0.0)), 1e-30)


def _fail_with(message, mistake):
    raise Fail(f"{message}\n{MISTAKES[mistake]}", mistake)


def _signature_names(fname):
    return list(inspect.signature(getattr(REF, fname)).parameters)


def _describe_args(fname, args):
    names = _signature_names(fname)
    parts = []
    for n, a in zip(names, args):
        if isinstance(a, np.ndarray):
            parts.append(f"{n} {tuple(a.shape)}")
        elif isinstance(a, dict):
            parts.append(f"{n} (D={a['ln1_gamma'].shape[0]}, D_mlp={a['b1'].shape[0]})" if "b1" in a else n)
        elif isinstance(a, (int, float, str)) and not isinstance(a, bool):
            parts.append(f"{n}={a!r}")
    return ", ".join(parts)


def _check_inputs_unchanged(fname, before, after):
    names = _signature_names(fname)
    for n, b, a in zip(names, before, after):
        if not _same(b, a):
            _fail_with(f"{fname} changed its input `{n}`.", "input_modified")


def _call_forward(ns, fname, args):
    """Call the learner's forward on copies of ``args``; check it returns (out, cache) and leaves inputs alone."""
    mine = _copy(args)
    res = ns[fname](*mine)
    if not (isinstance(res, tuple) and len(res) == 2):
        raise Fail(f"{fname} must return a pair (out, cache); it returned {_kind(res)}")
    _check_inputs_unchanged(fname, args, mine)
    return res


def _grads_tuple(fname, res, names):
    """The learner's backward result as a list of arrays in the order of ``names``."""
    n = len(names)
    if n == 1:
        if isinstance(res, (tuple, list)) and len(res) == 1:
            res = res[0]
        if isinstance(res, (tuple, list)):
            raise Fail(f"{fname} must return one array ({names[0]}); it returned {_kind(res)}")
        return [_as_array(names[0], res)]
    if not isinstance(res, (tuple, list)) or len(res) != n:
        raise Fail(f"{fname} must return {n} gradients ({', '.join(names)}); it returned {_kind(res)}")
    return [_as_array(nm, g) for nm, g in zip(names, res)]


def _fd(forward, args, dout, arrays, names):
    """Finite-difference gradients of sum(forward(*args) * dout) w.r.t. ``arrays`` (objects inside args)."""
    out = {}
    for a, nm in zip(arrays, names):
        out[nm] = gradcheck.numerical_gradient(lambda: forward(*args), a, dout)
    return out


def _softmax(x, axis=-1):
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


# ----------------------------------------------------------------------- forward/backward pairs
@dataclass
class Pair:
    """A forward/backward pair graded the standard way: forward, backward, float32, finite differences.

    cases(): list of argument tuples (float64), small first. wrt(args): the arrays inside args the
    backward returns gradients for (in order), named ``grads``. fwd_mistakes: [(key, variant(*args) -> out)];
    bwd_mistakes: [(key, variant(args, dout, ref_cache, ref_grads) -> {grad name: array})]; ``derive``:
    grad names for which each forward mistake's gradient (by finite differences) is also tried.
    """

    fwd: str
    bwd: str
    grads: tuple
    cases: object
    fd_cases: object
    wrt: object = None
    unpack: object = None                  # backward result -> list of arrays (default: _grads_tuple)
    fwd_mistakes: tuple = ()
    bwd_mistakes: tuple = ()
    derive: tuple | None = None            # None: all grads
    known_zero: object = None              # args -> {grad name: index} of exactly-zero entries

    def arrays(self, args):
        if self.wrt is None:
            return [args[0]]
        return self.wrt(args)

    def learner_grads(self, res):
        if self.unpack is not None:
            return self.unpack(self.bwd, res, self.grads)
        return _grads_tuple(self.bwd, res, self.grads)

    def ref_grads(self, res):
        if self.unpack is not None:
            return self.unpack(self.bwd, res, self.grads)
        return list(res) if isinstance(res, tuple) else [res]

    # -- detectors ------------------------------------------------------------------------
    def detect_forward(self, args, out):
        for key, variant in self.fwd_mistakes:
            try:
                with np.errstate(all="ignore"):
                    v = variant(*_copy(args))
            except Exception:
                continue
            if v is not None and _matches(out, v):
                return key
        return None

    def detect_backward(self, args, dout, ref_cache, ref_grads, grads):
        mine = dict(zip(self.grads, grads))
        for key, variant in self.bwd_mistakes:
            try:
                with np.errstate(all="ignore"):
                    v = variant(_copy(args), dout, ref_cache, dict(zip(self.grads, ref_grads)))
            except Exception:
                continue
            if v and all(_matches(mine[k], a) for k, a in v.items()):
                return key
        # wrong order of the returned gradients
        if 1 < len(grads) <= 5 and any(_mismatch(n, g, r) for n, g, r in zip(self.grads, grads, ref_grads)):
            import itertools
            for perm in itertools.permutations(range(len(grads))):
                if list(perm) != list(range(len(grads))) and all(
                        _matches(grads[i], ref_grads[j]) for i, j in enumerate(perm)):
                    return "grads_wrong_order"
        # the gradient of a wrong forward
        names = self.derive if self.derive is not None else self.grads
        for key, variant in self.fwd_mistakes:
            a = _copy(args)
            try:
                with np.errstate(all="ignore"):
                    v = variant(*a)
                    if v is None or np.shape(v) != np.shape(dout) or not np.all(np.isfinite(v)):
                        continue
                    arrays = dict(zip(self.grads, self.arrays(a)))
                    num = _fd(variant, a, dout, [arrays[n] for n in names], names)
            except Exception:
                continue
            if all(_matches(mine[n], num[n], 1e-5) for n in names):
                return key
        return None

    # -- checks ----------------------------------------------------------------------------
    def checks(self):
        return [
            Check(f"{self.fwd}: matches the reference (float64, {len(self.cases())} inputs)", (self.fwd,), 2,
                  self.check_forward),
            Check(f"{self.bwd}: gradients match the reference (float64, {len(self.cases())} inputs)",
                  (self.fwd, self.bwd), 2, self.check_backward),
            Check(f"{self.fwd} / {self.bwd}: float32 in, float32 out", (self.fwd, self.bwd), 1, self.check_float32),
            Check(f"{self.bwd}: agrees with finite differences of your {self.fwd}", (self.fwd, self.bwd), 1,
                  self.check_fd),
        ]

    def check_forward(self, ns):
        for args in self.cases():
            out, _ = _call_forward(ns, self.fwd, args)
            want, _ = getattr(REF, self.fwd)(*_copy(args))
            problem = _mismatch("the output", out, want)
            if problem:
                where = f"{self.fwd}({_describe_args(self.fwd, args)}): {problem}."
                key = self.detect_forward(args, out)
                if key is None and not np.all(np.isfinite(np.asarray(out, dtype=np.float64))):
                    key = "no_max_subtraction" if self.fwd in ("softmax_forward", "attention_forward") else None
                if key:
                    _fail_with(where, key)
                raise Fail(where)

    def _backward_case(self, ns, args, seed):
        out, cache = _call_forward(ns, self.fwd, args)
        want, ref_cache = getattr(REF, self.fwd)(*_copy(args))
        dout = np.random.default_rng(seed).standard_normal(np.shape(want)).astype(np.asarray(want).dtype)
        res = ns[self.bwd](dout.copy(), cache)
        grads = self.learner_grads(res)
        ref = self.ref_grads(getattr(REF, self.bwd)(dout.copy(), ref_cache))
        return out, want, dout, ref_cache, grads, ref

    def check_backward(self, ns):
        for i, args in enumerate(self.cases()):
            out, want, dout, ref_cache, grads, ref = self._backward_case(ns, args, i)
            for name, g, r in zip(self.grads, grads, ref):
                problem = _mismatch(name, g, r)
                if not problem:
                    continue
                where = f"{self.bwd} after {self.fwd}({_describe_args(self.fwd, args)}): {problem}."
                if _mismatch("out", out, want):
                    where += f" (Your {self.fwd} gives a different output for this input too: fix it first.)"
                key = self.detect_backward(args, dout, ref_cache, ref, grads)
                if key:
                    _fail_with(where, key)
                raise Fail(where)

    def check_float32(self, ns):
        args64 = self.cases()[0]
        args = _cast(args64, np.float32)
        out, cache = _call_forward(ns, self.fwd, args)
        out = _as_array("the output", out)
        up = _cast(args, np.float64)
        want, ref_cache = getattr(REF, self.fwd)(*_copy(up))
        if out.dtype != np.float32:
            _fail_with(f"{self.fwd} returned {out.dtype} for float32 inputs.", "float64_promotion")
        problem = _mismatch("the output", out, want, TOL32)
        if problem:
            raise Fail(f"{self.fwd} in float32: {problem} (see the float64 checks).")
        dout = np.random.default_rng(7).standard_normal(np.shape(want))
        grads = self.learner_grads(ns[self.bwd](dout.astype(np.float32), cache))
        ref = self.ref_grads(getattr(REF, self.bwd)(dout, ref_cache))
        for name, g, r in zip(self.grads, grads, ref):
            if g.dtype != np.float32:
                _fail_with(f"{self.bwd} returned {name} as {g.dtype} for float32 inputs.", "float64_promotion")
            problem = _mismatch(name, g, r, TOL32)
            if problem:
                raise Fail(f"{self.bwd} in float32: {problem} (see the float64 checks).")

    def check_fd(self, ns):
        for args in self.fd_cases():
            args = _copy(args)
            out, cache = _call_forward(ns, self.fwd, args)
            out = _as_array("the output", out)
            dout = np.random.default_rng(11).standard_normal(out.shape)
            grads = self.learner_grads(ns[self.bwd](dout.copy(), cache))
            fwd = ns[self.fwd]
            num = _fd(lambda *a: fwd(*a)[0], args, dout, self.arrays(args), self.grads)
            zero = self.known_zero(args) if self.known_zero else {}
            bad = []
            for name, g in zip(self.grads, grads):
                n = num[name]
                if g.shape != n.shape:
                    bad.append(f"{name} has shape {tuple(g.shape)}, the input has {tuple(n.shape)}")
                    continue
                g = g.astype(np.float64)
                if name in zero:
                    mask = np.zeros(n.shape, bool)
                    mask[zero[name]] = True
                    z = float(max(np.abs(g[mask]).max(), np.abs(n[mask]).max()))
                    if z > KEY_ZERO_TOL:
                        bad.append(f"{name}: the key part should be exactly 0, largest |value| {z:.2e}")
                    g, n = g[~mask], n[~mask]
                err = gradcheck.rel_error(g, n)
                if not err < FD_TOL:
                    bad.append(f"{name}: relative error {err:.2e} (limit {FD_TOL:.0e})")
            if bad:
                raise Fail(f"{self.bwd} disagrees with centered finite differences of your {self.fwd}("
                           f"{_describe_args(self.fwd, args)}): " + "; ".join(bad) +
                           ". The forward and the backward do not describe the same function.")


def _bias_variants(name, dy, lead_axes):
    """Wrong gradients of a bias-like parameter broadcast over ``lead_axes`` of dy."""
    out = [("bias_grad_not_summed", {name: dy}),
           ("bias_grad_not_summed", {name: dy.sum(axis=0)}),
           ("grad_mean_not_sum", {name: dy.mean(axis=tuple(lead_axes))})]
    if len(lead_axes) > 1:
        out.append(("bias_grad_not_summed", {name: dy.sum(axis=lead_axes[-1])}))
    return out


# -- patch ------------------------------------------------------------------------------------
def _patch_variant(order):
    def f(x, P):
        B, H, W, C = x.shape
        gh, gw = H // P, W // P
        if order == "no_transpose":
            return x.reshape(B, gh * gw, P * P * C)
        y = x.reshape(B, gh, P, gw, P, C).transpose(*order)
        return y.reshape(B, gh * gw, P * P * C)
    return f


PATCH = Pair(
    "patchify_forward", "patchify_backward", ("dx",),
    cases=lambda: (lambda r: [(r((2, 8, 8, 3)), 4), (r((1, 6, 6, 1)), 2), (r((2, 12, 8, 2)), 4),
                              (r((1, 4, 4, 3)), 4), (r((2, 3, 3, 2)), 1)])(_rng("patch").standard_normal),
    fd_cases=lambda: [(_rng("patch-fd").standard_normal((1, 4, 6, 2)), 2)],
    fwd_mistakes=(
        ("patch_channel_first", _patch_variant((0, 1, 3, 5, 2, 4))),
        ("patch_grid_column_major", _patch_variant((0, 3, 1, 2, 4, 5))),
        ("patch_pixels_column_major", _patch_variant((0, 1, 3, 4, 2, 5))),
        ("patch_grid_column_major", _patch_variant((0, 3, 1, 4, 2, 5))),
        ("patch_no_transpose", _patch_variant("no_transpose")),
    ),
)


def _linear_bwd_mistakes():
    keys = ("bias_grad_not_summed", "bias_grad_not_summed", "grad_mean_not_sum", "bias_grad_not_summed")

    def make(k):
        def v(args, dout, rc, rg):
            cands = _bias_variants("db", dout, tuple(range(dout.ndim - 1)))
            return cands[k][1] if k < len(cands) else None
        return v
    return tuple((key, make(k)) for k, key in enumerate(keys)) + (
        ("dw_transposed", lambda args, dout, rc, rg: {"dw": rg["dw"].T}),)


LINEAR = Pair(
    "linear_forward", "linear_backward", ("dx", "dw", "db"),
    cases=lambda: (lambda r: [(r((2, 5, 6)), r((6, 4)) / 2, r(4)), (r((7, 3)), r((3, 5)), r(5)),
                              (r((1, 1, 4)), r((4, 4)), r(4)), (r((2, 3, 2, 6)), r((6, 3)), r(3))])(
        _rng("linear").standard_normal),
    fd_cases=lambda: (lambda r: [(r((2, 3, 4)), r((4, 5)), r(5))])(_rng("linear-fd").standard_normal),
    wrt=lambda a: [a[0], a[1], a[2]],
    fwd_mistakes=(("missing_bias", lambda x, w, b: x @ w),),
    bwd_mistakes=_linear_bwd_mistakes(),
)


# -- tokens -----------------------------------------------------------------------------------
def _cls_overwrite(x, cls):
    y = x.copy()
    y[:, 0] = cls[0, 0]
    return y


CLS = Pair(
    "cls_token_forward", "cls_token_backward", ("dx", "dcls"),
    cases=lambda: (lambda r: [(r((2, 4, 6)), r((1, 1, 6))), (r((1, 1, 3)), r((1, 1, 3))), (r((3, 9, 5)), r((1, 1, 5)))])(
        _rng("cls").standard_normal),
    fd_cases=lambda: (lambda r: [(r((2, 3, 4)), r((1, 1, 4)))])(_rng("cls-fd").standard_normal),
    wrt=lambda a: [a[0], a[1]],
    fwd_mistakes=(
        ("cls_appended", lambda x, c: np.concatenate([x, np.broadcast_to(c, (x.shape[0], 1, x.shape[2]))], axis=1)),
        ("cls_overwrites", _cls_overwrite),
    ),
    bwd_mistakes=(
        ("bias_grad_not_summed", lambda a, d, rc, rg: {"dcls": d[:, :1]}),
        ("grad_mean_not_sum", lambda a, d, rc, rg: {"dcls": d[:, :1].mean(axis=0, keepdims=True)}),
        ("param_grad_shape", lambda a, d, rc, rg: {"dcls": d[:, 0].sum(axis=0)}),
        ("param_grad_shape", lambda a, d, rc, rg: {"dcls": d[:, :1].sum(axis=0)}),
        ("cls_dx_keeps_token", lambda a, d, rc, rg: {"dx": d}),
        ("cls_dx_wrong_slice", lambda a, d, rc, rg: {"dx": d[:, :-1]}),
    ),
)

POS = Pair(
    "pos_embed_forward", "pos_embed_backward", ("dx", "dpos"),
    cases=lambda: (lambda r: [(r((2, 5, 6)), r((1, 5, 6))), (r((1, 1, 3)), r((1, 1, 3))), (r((4, 3, 2)), r((1, 3, 2)))])(
        _rng("pos").standard_normal),
    fd_cases=lambda: (lambda r: [(r((2, 3, 4)), r((1, 3, 4)))])(_rng("pos-fd").standard_normal),
    wrt=lambda a: [a[0], a[1]],
    bwd_mistakes=(
        ("bias_grad_not_summed", lambda a, d, rc, rg: {"dpos": d}),
        ("grad_mean_not_sum", lambda a, d, rc, rg: {"dpos": d.mean(axis=0, keepdims=True)}),
        ("param_grad_shape", lambda a, d, rc, rg: {"dpos": d.sum(axis=0)}),
    ),
)


# -- softmax and attention ----------------------------------------------------------------------
def _softmax_axis_variants():
    def make(k):
        def f(x, axis=-1):
            ax = axis % x.ndim
            if k >= x.ndim or k == ax:
                return None
            return _softmax(x, k)
        return f
    return tuple(("softmax_axis", make(k)) for k in range(4))


def _softmax_no_keepdims(x, axis=-1):
    e = np.exp(x - x.max(axis=axis))
    return e / e.sum(axis=axis)


SOFTMAX = Pair(
    "softmax_forward", "softmax_backward", ("dx",),
    cases=lambda: (lambda r: [(r((4, 7)), -1), (r((2, 3, 5)), -1), (r((2, 5, 3)), 1), (r((5, 5)), -1),
                              (r((3, 4)),), (r((3, 1)), -1)])(_rng("softmax").standard_normal),
    fd_cases=lambda: (lambda r: [(r((2, 3, 5)), -1), (r((2, 4, 3)), 1)])(_rng("softmax-fd").standard_normal),
    fwd_mistakes=_softmax_axis_variants() + (("softmax_keepdims", _softmax_no_keepdims),),
    bwd_mistakes=(
        ("softmax_diagonal_jacobian", lambda a, d, rc, rg: (lambda s: {"dx": s * (1 - s) * d})(
            _softmax(a[0], a[1] if len(a) > 1 else -1))),
    ),
)


def _attention_variant(scale="sqrt", axis=-1, transpose=False):
    def f(q, k, v):
        d = q.shape[-1]
        s = {"sqrt": 1 / math.sqrt(d), "none": 1.0, "d": 1 / d, "times": math.sqrt(d)}[scale]
        A = _softmax(q @ k.swapaxes(-1, -2) * s, axis)
        if transpose:
            A = A.swapaxes(-1, -2)
        return A @ v
    return f


def _attn_internal(args, dout, rc):
    q, k, v, A, scale = rc
    dA = dout @ v.swapaxes(-1, -2)
    dS = A * (dA - (dA * A).sum(axis=-1, keepdims=True))
    return q, k, v, A, scale, dS


ATTENTION = Pair(
    "attention_forward", "attention_backward", ("dq", "dk", "dv"),
    cases=lambda: (lambda r: [(r((2, 2, 5, 4)), r((2, 2, 5, 4)), r((2, 2, 5, 4))),
                              (r((3, 6, 8)), r((3, 6, 8)), r((3, 6, 8))),
                              (r((1, 1, 1, 4)), r((1, 1, 1, 4)), r((1, 1, 1, 4))),
                              (r((2, 1, 3, 2)), r((2, 1, 3, 2)), r((2, 1, 3, 2)))])(_rng("attention").standard_normal),
    fd_cases=lambda: (lambda r: [(r((2, 2, 3, 4)), r((2, 2, 3, 4)), r((2, 2, 3, 4)))])(
        _rng("attention-fd").standard_normal),
    wrt=lambda a: [a[0], a[1], a[2]],
    fwd_mistakes=(
        ("missing_scale", _attention_variant("none")),
        ("scale_1_over_d", _attention_variant("d")),
        ("scale_times_sqrt_d", _attention_variant("times")),
        ("softmax_axis", _attention_variant(axis=-2)),
        ("attention_transposed", _attention_variant(transpose=True)),
    ),
    bwd_mistakes=(
        ("missing_scale_backward", lambda a, d, rc, rg: {"dq": rg["dq"] * math.sqrt(a[0].shape[-1]),
                                                        "dk": rg["dk"] * math.sqrt(a[0].shape[-1])}),
        ("dk_not_transposed", lambda a, d, rc, rg: (lambda t: {"dk": t[4] * t[5] @ t[0]})(_attn_internal(a, d, rc))),
        ("dv_not_transposed", lambda a, d, rc, rg: {"dv": rc[3] @ d}),
        ("softmax_diagonal_jacobian", lambda a, d, rc, rg: (lambda q, k, v, A, s: {
            "dq": s * (A * (1 - A) * (d @ v.swapaxes(-1, -2))) @ k})(*rc)),
    ),
)


def _edge_case_check(ns, rng, op, args, grad_names, forward_what, backward_what, nonfinite_mistake):
    """Run the student's ``{op}_forward`` and ``{op}_backward`` on one edge-case input (huge scores,
    a zero-variance row...) and compare them with minivit's. ``forward_what`` / ``backward_what``
    describe the input in the failure message; a non-finite forward output is reported as the
    known mistake ``nonfinite_mistake`` (see ``MISTAKES``)."""
    out, cache = _call_forward(ns, f"{op}_forward", args)
    want, ref_cache = getattr(REF, f"{op}_forward")(*_copy(args))
    problem = _mismatch("the output", out, want)
    if problem:
        where = f"{op}_forward {forward_what}: {problem}."
        if not np.all(np.isfinite(np.asarray(out, dtype=np.float64))):
            _fail_with(where, nonfinite_mistake)
        raise Fail(where)
    dout = rng.standard_normal(want.shape)
    grads = _grads_tuple(f"{op}_backward", ns[f"{op}_backward"](dout.copy(), cache), grad_names)
    refs = getattr(REF, f"{op}_backward")(dout, ref_cache)
    refs = refs if isinstance(refs, tuple) else (refs,)
    for name, g, r in zip(grad_names, grads, refs):
        problem = _mismatch(name, g, r)
        if problem:
            raise Fail(f"{op}_backward {backward_what}: {problem}.")


def _large_softmax_check(ns):
    rng = _rng("softmax-large")
    cases = [(rng.uniform(-1e4, 1e4, (3, 6)), -1), (1e3 + rng.standard_normal((2, 4, 5)) * 10, -1),
             (rng.uniform(-5e3, 5e3, (4, 3)), 0)]
    for args in cases:
        _edge_case_check(ns, rng, "softmax", args, ("dx",), f"with scores up to {np.abs(args[0]).max():.0f}",
                         "after large scores", "no_max_subtraction")


def _large_attention_check(ns):
    rng = _rng("attention-large")
    r = rng.standard_normal
    q, k, v = 60 * r((2, 2, 4, 8)), 60 * r((2, 2, 4, 8)), r((2, 2, 4, 8))
    top = np.abs(q @ k.swapaxes(-1, -2)).max() / math.sqrt(8)
    _edge_case_check(ns, rng, "attention", (q, k, v), ("dq", "dk", "dv"),
                     f"with scores q.k/sqrt(d) up to ~{top:.0f}", "after large scores", "no_max_subtraction")


# -- heads ----------------------------------------------------------------------------------------
def _split_variant(kind):
    def f(x, h):
        B, T, D = x.shape
        d = D // h
        if kind == "reshape":
            return x.reshape(B, h, T, d)
        return x.reshape(B, T, d, h).transpose(0, 3, 1, 2)
    return f


def _merge_variant(kind):
    def f(x, *_):
        B, h, T, d = x.shape
        if kind == "reshape":
            return x.reshape(B, T, h * d)
        return x.transpose(0, 2, 3, 1).reshape(B, T, h * d)
    return f


HEAD_MISTAKES_SPLIT = (("heads_reshape_only", _split_variant("reshape")), ("heads_interleaved", _split_variant("inter")))
HEAD_MISTAKES_MERGE = (("heads_reshape_only", _merge_variant("reshape")), ("heads_interleaved", _merge_variant("inter")))


def _heads_cases(kind):
    r = _rng("heads-" + kind).standard_normal
    if kind in ("split", "merge_backward"):
        return [(r((2, 5, 8)), 2), (r((1, 3, 6)), 3), (r((2, 4, 6)), 1), (r((1, 1, 4)), 2)]
    if kind == "merge":
        return [(r((2, 2, 5, 4)),), (r((1, 3, 3, 2)),), (r((2, 1, 4, 6)),)]
    return [(r((2, 2, 5, 4)),), (r((1, 3, 3, 2)),), (r((2, 1, 4, 6)),)]   # split_backward(dout)


def _plain_check(fname, kind, mistakes, reference):
    def run(ns):
        for args in _heads_cases(kind):
            mine = _copy(args)
            out = _as_array("the output", ns[fname](*mine))
            _check_inputs_unchanged(fname, args, mine)
            want = reference(*_copy(args))
            problem = _mismatch("the output", out, want)
            if problem:
                where = f"{fname}({_describe_args(fname, args)}): {problem}."
                for key, variant in mistakes:
                    if _matches(out, variant(*_copy(args))):
                        _fail_with(where, key)
                raise Fail(where)
    return run


def _heads_fd_check(ns):
    r = _rng("heads-fd").standard_normal
    bad = []
    for fname, bname, fwd, bwd, x in (
            ("split_heads", "split_heads_backward", lambda x: (ns["split_heads"](x, 2), None),
             lambda d, c: ns["split_heads_backward"](d), r((2, 3, 4))),
            ("merge_heads", "merge_heads_backward", lambda x: (ns["merge_heads"](x), None),
             lambda d, c: ns["merge_heads_backward"](d, 2), r((2, 2, 3, 2)))):
        err = gradcheck.check_pair(fwd, bwd, [x], [0], ["dx"], seed=3)["dx"]
        if not err < FD_TOL:
            bad.append(f"{bname} is not the gradient of {fname}: relative error {err:.2e} against finite differences")
    if bad:
        raise Fail("; ".join(bad) + ". split_heads and merge_heads only move numbers around, so the gradient of "
                   "each is the other one (split_heads_backward = merge_heads, merge_heads_backward = split_heads).")


# -- multi-head self-attention ------------------------------------------------------------------
def _mhsa_variant(layout="3hd", scale="d", heads="split", proj=True):
    def f(x, wq, bq, wo, bo, h):
        B, T, D = x.shape
        d = D // h
        qkv = x @ wq + bq
        if heads == "none":
            q, k, v = qkv[..., :D][:, None], qkv[..., D:2 * D][:, None], qkv[..., 2 * D:][:, None]
            dd = D
        elif layout == "h3d":
            q, k, v = qkv.reshape(B, T, h, 3, d).transpose(3, 0, 2, 1, 4)
            dd = d
        elif layout == "reshape":
            q, k, v = (qkv[..., i * D:(i + 1) * D].reshape(B, h, T, d) for i in range(3))
            dd = d
        else:
            q, k, v = qkv.reshape(B, T, 3, h, d).transpose(2, 0, 3, 1, 4)
            dd = d
        s = {"d": 1 / math.sqrt(dd), "D": 1 / math.sqrt(D), "none": 1.0}[scale]
        o = _softmax(q @ k.swapaxes(-1, -2) * s) @ v
        if layout == "reshape" and heads != "none":
            merged = o.reshape(B, T, D)
        else:
            merged = o.transpose(0, 2, 1, 3).reshape(B, T, D)
        return merged @ wo + bo if proj else merged
    return f


def _mhsa_dqkv(rc, dout):
    qkv_cache, attn_cache, out_cache, h = rc
    dmerged, _, _ = REF.linear_backward(dout, out_cache)
    dq, dk, dv = REF.attention_backward(REF.merge_heads_backward(dmerged, h), attn_cache)
    B, h_, T, d = dq.shape
    return np.stack([dq, dk, dv]).transpose(1, 3, 0, 2, 4).reshape(B, T, 3 * h_ * d)


def _mhsa_cases():
    r = _rng("mhsa").standard_normal

    def case(B, T, D, h):
        return (r((B, T, D)), r((D, 3 * D)) / math.sqrt(D), 0.5 * r(3 * D), r((D, D)) / math.sqrt(D), 0.5 * r(D), h)
    return [case(2, 5, 8, 2), case(1, 4, 6, 3), case(2, 3, 4, 1), case(1, 1, 4, 2)]


def _mhsa_bwd_mistakes():
    out = []
    for name, lead in (("db_out", None), ("db_qkv", None)):
        for k, key in enumerate(("bias_grad_not_summed", "bias_grad_not_summed", "grad_mean_not_sum",
                                 "bias_grad_not_summed")):
            def v(a, d, rc, rg, name=name, k=k):
                dy = d if name == "db_out" else _mhsa_dqkv(rc, d)
                return _bias_variants(name, dy, (0, 1))[k][1]
            out.append((key, v))
    return tuple(out)


MHSA = Pair(
    "mhsa_forward", "mhsa_backward", ("dx", "dw_qkv", "db_qkv", "dw_out", "db_out"),
    cases=_mhsa_cases,
    fd_cases=lambda: (lambda r: [(r((2, 3, 4)), r((4, 12)) / 2, 0.5 * r(12), r((4, 4)) / 2, 0.5 * r(4), 2)])(
        _rng("mhsa-fd").standard_normal),
    wrt=lambda a: [a[0], a[1], a[2], a[3], a[4]],
    fwd_mistakes=(
        ("qkv_layout", _mhsa_variant(layout="h3d")),
        ("missing_scale", _mhsa_variant(scale="none")),
        ("scale_model_width", _mhsa_variant(scale="D")),
        ("no_heads", _mhsa_variant(heads="none")),
        ("heads_reshape_only", _mhsa_variant(layout="reshape")),
        ("missing_out_proj", _mhsa_variant(proj=False)),
    ),
    bwd_mistakes=_mhsa_bwd_mistakes(),
    derive=("dx",),
    known_zero=lambda a: {"db_qkv": slice(a[0].shape[-1], 2 * a[0].shape[-1])},
)


# -- layernorm --------------------------------------------------------------------------------------
def _ln_variant(ddof=0, eps_mode="inside", axis=-1, swap=False):
    def f(x, g, b, eps=1e-6):
        ax = axis if axis != "all" else None
        mu = x.mean(axis=ax, keepdims=True)
        var = ((x - mu) ** 2).sum(axis=ax, keepdims=True) / ((x.size if ax is None else x.shape[ax]) - ddof)
        if eps_mode == "inside":
            xhat = (x - mu) / np.sqrt(var + eps)
        elif eps_mode == "outside":
            xhat = (x - mu) / (np.sqrt(var) + eps)
        else:
            xhat = (x - mu) / np.sqrt(var)
        return xhat * b + g if swap else xhat * g + b
    return f


def _ln_internal(a, dout):
    x, g = a[0], a[1]
    eps = a[3] if len(a) > 3 else 1e-6
    mu = x.mean(axis=-1, keepdims=True)
    var = ((x - mu) ** 2).mean(axis=-1, keepdims=True)
    rstd = 1 / np.sqrt(var + eps)
    return (x - mu) * rstd, rstd, dout * g


LAYERNORM = Pair(
    "layernorm_forward", "layernorm_backward", ("dx", "dgamma", "dbeta"),
    cases=lambda: (lambda r: [(r((2, 5, 8)), 1 + 0.3 * r(8), 0.3 * r(8), 1e-6),
                              (r((3, 7)), 1 + 0.3 * r(7), 0.3 * r(7), 1e-5),
                              (0.05 * r((1, 2, 3, 16)), 1 + 0.3 * r(16), 0.3 * r(16), 1e-2),
                              (r((2, 3, 6)), 1 + 0.3 * r(6), 0.3 * r(6))])(_rng("layernorm").standard_normal),
    fd_cases=lambda: (lambda r: [(r((2, 3, 5)), 1 + r(5), r(5), 1e-6), (0.1 * r((2, 4)), 1 + r(4), r(4), 1e-2)])(
        _rng("layernorm-fd").standard_normal),
    wrt=lambda a: [a[0], a[1], a[2]],
    fwd_mistakes=(
        ("unbiased_variance", _ln_variant(ddof=1)),
        ("eps_outside_sqrt", _ln_variant(eps_mode="outside")),
        ("missing_eps", _ln_variant(eps_mode="none")),
        ("layernorm_axis", _ln_variant(axis=0)),
        ("layernorm_axis", _ln_variant(axis="all")),
        ("gamma_beta_swapped", _ln_variant(swap=True)),
    ),
    bwd_mistakes=(
        ("layernorm_dx_constant_stats", lambda a, d, rc, rg: (lambda xh, rs, g: {"dx": g * rs})(*_ln_internal(a, d))),
        ("layernorm_dx_no_variance_term", lambda a, d, rc, rg: (lambda xh, rs, g: {
            "dx": rs * (g - g.mean(axis=-1, keepdims=True))})(*_ln_internal(a, d))),
        ("dgamma_uses_x", lambda a, d, rc, rg: {"dgamma": (d * a[0]).reshape(-1, a[0].shape[-1]).sum(axis=0)}),
    ) + tuple((key, (lambda k: lambda a, d, rc, rg: _bias_variants("dbeta", d, tuple(range(d.ndim - 1)))[k][1])(k))
              for k, key in enumerate(("bias_grad_not_summed", "bias_grad_not_summed", "grad_mean_not_sum"))) + tuple(
        (key, (lambda k: lambda a, d, rc, rg: (lambda xh: _bias_variants("dgamma", d * xh, tuple(range(d.ndim - 1)))[k][1])(
            _ln_internal(a, d)[0]))(k))
        for k, key in enumerate(("bias_grad_not_summed", "bias_grad_not_summed", "grad_mean_not_sum"))),
)


def _layernorm_zero_variance_check(ns):
    rng = _rng("layernorm-const")
    x = rng.standard_normal((2, 3, 6))
    x[0, 1] = 0.7                         # one token whose features are all equal: var = 0
    x[1, 2] = 0.0
    args = (x, 1 + 0.3 * rng.standard_normal(6), 0.3 * rng.standard_normal(6), 1e-6)
    _edge_case_check(ns, rng, "layernorm", args, ("dx", "dgamma", "dbeta"),
                     "with a token whose features are all equal (variance 0)", "with a zero-variance token",
                     "missing_eps")


# -- gelu and mlp -----------------------------------------------------------------------------------
_C = math.sqrt(2 / math.pi)


def _gelu(x, form):
    if form == "tanh":
        return 0.5 * x * (1 + np.tanh(_C * (x + 0.044715 * x ** 3)))
    if form == "none":
        return 0.5 * x * (1 + _erf(x / math.sqrt(2)))
    if form == "sigmoid":
        return x / (1 + np.exp(-1.702 * x))
    if form == "square":
        return 0.5 * x * (1 + np.tanh(_C * (x + 0.044715 * x ** 2)))
    if form == "half":
        return x * (1 + np.tanh(_C * (x + 0.044715 * x ** 3)))
    if form == "relu":
        return np.maximum(x, 0)
    raise ValueError(form)


def _gelu_variant(form):
    def f(x, approximate="tanh"):
        if form == "swapped":
            return _gelu(x, "none" if approximate == "tanh" else "tanh")
        return _gelu(x, form)
    return f


def _gelu_product_rule(a, d, rc, rg):
    x = a[0]
    approx = a[1] if len(a) > 1 else "tanh"
    if approx == "tanh":
        return {"dx": d * 0.5 * (1 + np.tanh(_C * (x + 0.044715 * x ** 3)))}
    return {"dx": d * 0.5 * (1 + _erf(x / math.sqrt(2)))}


GELU = Pair(
    "gelu_forward", "gelu_backward", ("dx",),
    cases=lambda: (lambda r: [(2 * r((2, 5, 8)), "tanh"), (2 * r((3, 4)), "none"), (2 * r(6),), (3 * r((2, 3)), "none")])(
        _rng("gelu").standard_normal),
    fd_cases=lambda: (lambda r: [(r((2, 3, 4)), "tanh"), (r((2, 3, 4)), "none")])(_rng("gelu-fd").standard_normal),
    fwd_mistakes=(
        ("gelu_form_swapped", _gelu_variant("swapped")),
        ("gelu_sigmoid", _gelu_variant("sigmoid")),
        ("gelu_square", _gelu_variant("square")),
        ("gelu_missing_half", _gelu_variant("half")),
        ("relu", _gelu_variant("relu")),
    ),
    bwd_mistakes=(("gelu_product_rule", _gelu_product_rule),),
)


def _gelu_large_check(ns):
    x = np.array([[-100.0, -30.0, -10.0, -3.0, 0.0], [3.0, 10.0, 30.0, 100.0, -0.5]])
    for approx in ("tanh", "none"):
        args = (x, approx)
        out, cache = _call_forward(ns, "gelu_forward", args)
        want, ref_cache = REF.gelu_forward(*_copy(args))
        problem = _mismatch("the output", out, want)
        finite = np.all(np.isfinite(np.asarray(out, dtype=np.float64)))
        overflow = ("(See the checks above.)" if finite else
                    "Use np.tanh (a formula with exp overflows) and check large positive and negative x.")
        if problem:
            raise Fail(f"gelu_forward(x with |x| up to 100, approximate={approx!r}): {problem}. {overflow}")
        dout = np.ones_like(x)
        dx = _grads_tuple("gelu_backward", ns["gelu_backward"](dout.copy(), cache), ("dx",))[0]
        problem = _mismatch("dx", dx, REF.gelu_backward(dout, ref_cache))
        if problem:
            overflow = ("Use np.tanh (a formula with exp overflows)." if not np.all(np.isfinite(dx.astype(np.float64)))
                        else "(See the checks above.)")
            raise Fail(f"gelu_backward(|x| up to 100, approximate={approx!r}): {problem}. {overflow}")


def _mlp_variant(kind):
    def f(x, w1, b1, w2, b2, approximate="tanh"):
        h = x @ w1 + b1
        if kind == "swapped":
            return _gelu(h, "none" if approximate == "tanh" else "tanh") @ w2 + b2
        if kind == "none":
            return h @ w2 + b2
        if kind == "after":
            return _gelu(h @ w2 + b2, approximate)
        raise ValueError(kind)
    return f


def _mlp_bwd_mistakes():
    out = []

    def dh_of(rc, d):
        fc1, gelu_c, fc2 = rc
        da, _, _ = REF.linear_backward(d, fc2)
        return REF.gelu_backward(da, gelu_c), da

    for name in ("db2", "db1"):
        for k, key in enumerate(("bias_grad_not_summed", "bias_grad_not_summed", "grad_mean_not_sum",
                                 "bias_grad_not_summed")):
            def v(a, d, rc, rg, name=name, k=k):
                dy = d if name == "db2" else dh_of(rc, d)[0]
                return _bias_variants(name, dy, tuple(range(d.ndim - 1)))[k][1]
            out.append((key, v))

    def no_act(a, d, rc, rg):
        _, da = dh_of(rc, d)
        dx, dw1, db1 = REF.linear_backward(da, rc[0])
        return {"dx": dx, "dw1": dw1, "db1": db1}
    out.append(("missing_activation_backward", no_act))
    return tuple(out)


def _mlp_cases():
    r = _rng("mlp").standard_normal

    def case(B, T, D, M, *approx):
        return (r((B, T, D)), r((D, M)) / math.sqrt(D), 0.5 * r(M), r((M, D)) / math.sqrt(M), 0.5 * r(D), *approx)
    return [case(2, 5, 8, 12, "tanh"), case(1, 3, 4, 16, "none"), case(2, 4, 6, 6)]


MLP = Pair(
    "mlp_forward", "mlp_backward", ("dx", "dw1", "db1", "dw2", "db2"),
    cases=_mlp_cases,
    fd_cases=lambda: (lambda r: [(r((2, 3, 4)), r((4, 6)) / 2, 0.5 * r(6), r((6, 4)) / 2, 0.5 * r(4), a)
                                 for a in ("tanh", "none")])(_rng("mlp-fd").standard_normal),
    wrt=lambda a: [a[0], a[1], a[2], a[3], a[4]],
    fwd_mistakes=(
        ("gelu_form_swapped", _mlp_variant("swapped")),
        ("missing_activation", _mlp_variant("none")),
        ("activation_position", _mlp_variant("after")),
    ),
    bwd_mistakes=_mlp_bwd_mistakes(),
    derive=("dx",),
)


# -- the encoder block --------------------------------------------------------------------------------
def _block_params(r, D, M):
    return {
        "ln1_gamma": 1 + 0.2 * r(D), "ln1_beta": 0.2 * r(D),
        "w_qkv": r((D, 3 * D)) / math.sqrt(D), "b_qkv": 0.3 * r(3 * D),
        "w_out": r((D, D)) / math.sqrt(D), "b_out": 0.3 * r(D),
        "ln2_gamma": 1 + 0.2 * r(D), "ln2_beta": 0.2 * r(D),
        "w1": r((D, M)) / math.sqrt(D), "b1": 0.3 * r(M),
        "w2": r((M, D)) / math.sqrt(M), "b2": 0.3 * r(D),
    }


def _block_variant(kind):
    L = REF

    def f(x, p, h, eps=1e-6, approx="tanh", dropout=0.0, drop_path=0.0, rng=None, train=False):
        if kind == "defaults":
            eps2, approx2 = 1e-6, "tanh"
            if (eps2, approx2) == (eps, approx):
                return None
            eps, approx = eps2, approx2

        def ln(z, i):
            j = 1 if kind == "ln1_twice" else i
            return L.layernorm_forward(z, p[f"ln{j}_gamma"], p[f"ln{j}_beta"], eps)[0]

        def msa(z):
            return L.mhsa_forward(z, p["w_qkv"], p["b_qkv"], p["w_out"], p["b_out"], h)[0]

        def mlp(z):
            return L.mlp_forward(z, p["w1"], p["b1"], p["w2"], p["b2"], approx)[0]

        if kind == "post_norm":
            z1 = L.layernorm_forward(x + msa(x), p["ln1_gamma"], p["ln1_beta"], eps)[0]
            return L.layernorm_forward(z1 + mlp(z1), p["ln2_gamma"], p["ln2_beta"], eps)[0]
        a = msa(ln(x, 1))
        z1 = a if kind == "no_res1" else x + a
        m = mlp(ln(x if kind == "parallel" else z1, 2))
        return m if kind == "no_res2" else z1 + m
    return f


def _block_bwd_variant(kind):
    def f(a, dout, rc, rg):
        L = REF
        ln1, attn, drop1, path1, ln2, mlp, drop2, path2 = rc
        dh, *_ = L.mlp_backward(L.dropout_backward(L.drop_path_backward(dout, path2), drop2), mlp)
        dz1 = L.layernorm_backward(dh, ln2)[0]
        if kind != "no_res2":
            dz1 = dz1 + dout
        dh, *_ = L.mhsa_backward(L.dropout_backward(L.drop_path_backward(dz1, path1), drop1), attn)
        dx = L.layernorm_backward(dh, ln1)[0]
        if kind != "no_res1":
            dx = dx + dz1
        return {"dx": dx}
    return f


def _block_unpack(fname, res, names):
    if not (isinstance(res, (tuple, list)) and len(res) == 2 and isinstance(res[1], dict)):
        raise Fail(f"{fname} must return (dx, grads) with grads a dict keyed like the parameters; "
                   f"it returned {_kind(res)}")
    dx, g = res
    missing = [n for n in BLOCK_PARAM_NAMES if n not in g]
    if missing:
        raise Fail(f"{fname}: the grads dict has no {', '.join(missing)}")
    return [_as_array("dx", dx)] + [_as_array(n, g[n]) for n in BLOCK_PARAM_NAMES]


def _block_cases():
    r = _rng("block").standard_normal
    return [(r((2, 5, 8)), _block_params(r, 8, 12), 2, 1e-6, "tanh", 0.0, 0.0, None, False),
            (r((1, 3, 4)), _block_params(r, 4, 8), 1, 1e-5, "none", 0.0, 0.0, None, False),
            (r((2, 4, 6)), _block_params(r, 6, 12), 3, 1e-6, "tanh", 0.3, 0.3, None, False)]


BLOCK = Pair(
    "encoder_block_forward", "encoder_block_backward", ("dx",) + BLOCK_PARAM_NAMES,
    cases=_block_cases,
    fd_cases=lambda: (lambda r: [(r((2, 3, 4)), _block_params(r, 4, 8), 2, 1e-6, "tanh", 0.0, 0.0, None, False)])(
        _rng("block-fd").standard_normal),
    wrt=lambda a: [a[0]] + [a[1][n] for n in BLOCK_PARAM_NAMES],
    unpack=_block_unpack,
    fwd_mistakes=(
        ("post_norm", _block_variant("post_norm")),
        ("missing_residual", _block_variant("no_res1")),
        ("missing_residual", _block_variant("no_res2")),
        ("mlp_reads_input", _block_variant("parallel")),
        ("layernorm_params_shared", _block_variant("ln1_twice")),
        ("args_not_passed", _block_variant("defaults")),
    ),
    bwd_mistakes=(
        ("missing_residual_grad", _block_bwd_variant("no_res1")),
        ("missing_residual_grad", _block_bwd_variant("no_res2")),
        ("missing_residual_grad", _block_bwd_variant("no_res12")),
    ) + tuple((key, (lambda name, k: lambda a, d, rc, rg: _bias_variants(name, d, (0, 1))[k][1])(name, k))
              for name in ("b2",)
              for k, key in enumerate(("bias_grad_not_summed", "bias_grad_not_summed", "grad_mean_not_sum"))),
    derive=("dx",),
    known_zero=lambda a: {"b_qkv": slice(a[0].shape[-1], 2 * a[0].shape[-1])},
)


def _block_dropout_check(ns):
    r = _rng("block-dropout").standard_normal
    x, p = r((4, 3, 8)), _block_params(r, 8, 12)

    def args():
        return (x.copy(), _copy(p), 2, 1e-6, "tanh", 0.2, 0.3, make_rng(5, 3), True)
    out, cache = _call_forward(ns, "encoder_block_forward", args())
    want, ref_cache = REF.encoder_block_forward(*args())
    hint = ("Apply F.dropout_forward and then F.drop_path_forward (in this order, with the rng and train flag you "
            "were given) to each branch's output, MSA's and the MLP's, before adding it to the residual; in the "
            "backward undo them in reverse order (F.drop_path_backward, then F.dropout_backward).")
    problem = _mismatch("the output", out, want)
    if problem:
        raise Fail(f"encoder_block_forward with dropout=0.2, drop_path=0.3, train=True: {problem}.\n{hint}")
    dout = np.random.default_rng(2).standard_normal(want.shape)
    grads = _block_unpack("encoder_block_backward", ns["encoder_block_backward"](dout.copy(), cache), None)
    ref = _block_unpack("encoder_block_backward", REF.encoder_block_backward(dout, ref_cache), None)
    for name, g, rr in zip(("dx",) + BLOCK_PARAM_NAMES, grads, ref):
        problem = _mismatch(name, g, rr)
        if problem:
            raise Fail(f"encoder_block_backward with dropout and drop-path in training mode: {problem}.\n{hint}")


# -- cross-entropy --------------------------------------------------------------------------------------
def _ce_target(logits, labels, eps, kind="ok"):
    B, K = logits.shape
    if labels.ndim == 1:
        t = np.zeros((B, K))
        t[np.arange(B), labels] = 1.0
    else:
        t = labels.astype(np.float64).copy()
    if kind == "no_smoothing" or not eps:
        return t
    if kind == "k_minus_1":
        return t * (1 - eps) + (1 - t) * eps / (K - 1)
    if kind == "no_uniform":
        return t * (1 - eps)
    return t * (1 - eps) + eps / K


def _ce_loss_variant(kind):
    def f(logits, labels, eps=0.0):
        B, K = logits.shape
        tkind = kind if kind in ("no_smoothing", "k_minus_1", "no_uniform") else "ok"
        t = _ce_target(logits, labels, eps, tkind)
        logp = logits - logits.max(axis=1, keepdims=True)
        logp = logp - np.log(np.exp(logp).sum(axis=1, keepdims=True))
        loss = -(t * logp).sum()
        return {"sum": loss, "mean_all": loss / (B * K), "sign": loss / B,
                "no_log": -(t * np.exp(logp)).sum() / B}.get(kind, loss / B) * (-1 if kind == "sign" else 1)
    return f


LOSS_FWD_MISTAKES = (("label_smoothing_missing", _ce_loss_variant("no_smoothing")),
                     ("label_smoothing_k_minus_1", _ce_loss_variant("k_minus_1")),
                     ("label_smoothing_no_uniform", _ce_loss_variant("no_uniform")),
                     ("loss_not_averaged", _ce_loss_variant("sum")),
                     ("loss_mean_over_classes", _ce_loss_variant("mean_all")),
                     ("loss_sign", _ce_loss_variant("sign")),
                     ("missing_log", _ce_loss_variant("no_log")))


def _ce_cases(kind):
    rng = _rng("ce-" + kind)
    r = rng.standard_normal
    if kind == "int":
        return [(2 * r((4, 6)), rng.integers(0, 6, 4), 0.0), (2 * r((1, 3)), rng.integers(0, 3, 1), 0.0),
                (2 * r((8, 10)), rng.integers(0, 10, 8))]
    if kind == "smooth":
        return [(2 * r((4, 6)), rng.integers(0, 6, 4), 0.1), (2 * r((3, 5)), rng.dirichlet(np.ones(5), 3), 0.2),
                (2 * r((2, 10)), rng.integers(0, 10, 2), 0.3)]
    if kind == "soft":
        return [(2 * r((3, 5)), rng.dirichlet(np.ones(5), 3), 0.0),
                (2 * r((4, 4)), np.eye(4)[rng.integers(0, 4, 4)] * 0.7 + np.eye(4)[rng.integers(0, 4, 4)] * 0.3)]
    raise ValueError(kind)


def _ce_forward(ns, args):
    res = _call_forward(ns, "cross_entropy_forward", args)
    loss = res[0]
    try:
        value = float(np.asarray(loss, dtype=np.float64).reshape(()))
    except Exception:
        raise Fail(f"cross_entropy_forward must return (loss, cache) with loss a scalar; the loss was {_kind(loss)}")
    return value, res[1]


def _ce_loss_check(kind):
    def run(ns):
        for args in _ce_cases(kind):
            loss, _ = _ce_forward(ns, args)
            want, _ = REF.cross_entropy_forward(*_copy(args))
            if not abs(loss - want) <= TOL64 * max(abs(want), 1e-12):
                where = (f"cross_entropy_forward({_describe_args('cross_entropy_forward', args)}, "
                         f"labels {'soft (B, K)' if args[1].ndim == 2 else 'int (B,)'}): "
                         f"loss {loss:.6g}, expected {want:.6g}.")
                for key, variant in LOSS_FWD_MISTAKES:
                    v = variant(*_copy(args))
                    if abs(loss - v) <= 1e-6 * max(abs(v), 1e-12):
                        _fail_with(where, key)
                if kind == "soft":
                    _fail_with(where, "soft_targets_ignored")
                raise Fail(where)
    return run


def _ce_dlogits_variants(args, dloss):
    logits, labels = args[0], args[1]
    eps = args[2] if len(args) > 2 else 0.0
    B = logits.shape[0]
    p = _softmax(logits, 1)
    t = _ce_target(logits, labels, eps)
    return (("dlogits_not_averaged", dloss * (p - t)),
            ("label_smoothing_missing", dloss * (p - _ce_target(logits, labels, eps, "no_smoothing")) / B),
            ("label_smoothing_k_minus_1", dloss * (p - _ce_target(logits, labels, eps, "k_minus_1")) / B),
            ("dlogits_sign", dloss * (t - p) / B),
            ("dloss_ignored", (p - t) / B))


def _ce_backward_check(ns):
    cases = _ce_cases("int")[:2] + _ce_cases("smooth")[:2] + _ce_cases("soft")[:1]
    for i, args in enumerate(cases):
        for dloss in ((None, 2.5) if i in (0, 3) else (None,)):
            _, cache = _ce_forward(ns, args)
            _, ref_cache = REF.cross_entropy_forward(*_copy(args))
            res = ns["cross_entropy_backward"](cache) if dloss is None else ns["cross_entropy_backward"](cache, dloss)
            d = _grads_tuple("cross_entropy_backward", res, ("dlogits",))[0]
            want = REF.cross_entropy_backward(ref_cache, 1.0 if dloss is None else dloss)
            problem = _mismatch("dlogits", d, want)
            if problem:
                where = (f"cross_entropy_backward after cross_entropy_forward("
                         f"{_describe_args('cross_entropy_forward', args)}){'' if dloss is None else f', dloss={dloss}'}: "
                         f"{problem}.")
                for key, v in _ce_dlogits_variants(args, 1.0 if dloss is None else dloss):
                    if key == "dloss_ignored" and dloss is None:
                        continue
                    if key == "label_smoothing_missing" and not (args[2] if len(args) > 2 else 0):
                        continue
                    if _matches(d, v):
                        _fail_with(where, key)
                raise Fail(where)


def _ce_fd_check(ns):
    rng = _rng("ce-fd")
    for args in [(rng.standard_normal((3, 5)), rng.integers(0, 5, 3), 0.1),
                 (rng.standard_normal((2, 4)), rng.dirichlet(np.ones(4), 2), 0.0)]:
        logits = args[0].copy()
        _, cache = _ce_forward(ns, (logits,) + args[1:])
        d = _grads_tuple("cross_entropy_backward", ns["cross_entropy_backward"](cache), ("dlogits",))[0]
        num = gradcheck.numerical_gradient(lambda: _ce_forward(ns, (logits,) + args[1:])[0], logits)
        if d.shape != num.shape:
            raise Fail(f"dlogits has shape {tuple(d.shape)}, the logits have {tuple(num.shape)}")
        err = gradcheck.rel_error(d, num)
        if not err < FD_TOL:
            raise Fail(f"cross_entropy_backward disagrees with finite differences of your cross_entropy_forward "
                       f"(label_smoothing={args[2]}, {'soft' if args[1].ndim == 2 else 'integer'} labels): "
                       f"relative error {err:.2e} (limit {FD_TOL:.0e}).")


def _ce_float32_check(ns):
    rng = _rng("ce-32")
    args = (rng.standard_normal((4, 6)).astype(np.float32), rng.integers(0, 6, 4), 0.1)
    loss, cache = _ce_forward(ns, args)
    want, ref_cache = REF.cross_entropy_forward(args[0].astype(np.float64), args[1], 0.1)
    if not abs(loss - want) <= TOL32 * abs(want):
        raise Fail(f"cross_entropy_forward in float32: loss {loss:.6g}, expected {want:.6g} (see the float64 checks).")
    d = _grads_tuple("cross_entropy_backward", ns["cross_entropy_backward"](cache), ("dlogits",))[0]
    if d.dtype != np.float32:
        _fail_with(f"cross_entropy_backward returned dlogits as {d.dtype} for float32 logits.", "float64_promotion")
    problem = _mismatch("dlogits", d, REF.cross_entropy_backward(ref_cache), TOL32)
    if problem:
        raise Fail(f"cross_entropy_backward in float32: {problem} (see the float64 checks).")


def _ce_large_check(ns):
    rng = _rng("ce-large")
    logits = rng.uniform(-1e4, 1e4, (4, 6))
    labels = np.argmin(logits, axis=1)                        # the worst case: the target has the lowest score
    shifted = (1e3 + rng.standard_normal((3, 5)), rng.integers(0, 5, 3), 0.0)
    for args in ((logits, labels, 0.0), (logits, labels, 0.1), shifted):
        loss, cache = _ce_forward(ns, args)
        want, ref_cache = REF.cross_entropy_forward(*_copy(args))
        where = f"cross_entropy_forward with logits up to {np.abs(args[0]).max():.0f} (label_smoothing={args[2]}): "
        if not math.isfinite(loss):
            _fail_with(where + f"the loss is {loss}.", "no_max_subtraction")
        if not abs(loss - want) <= TOL64 * abs(want):
            raise Fail(where + f"loss {loss:.6g}, expected {want:.6g}.")
        d = _grads_tuple("cross_entropy_backward", ns["cross_entropy_backward"](cache), ("dlogits",))[0]
        problem = _mismatch("dlogits", d, REF.cross_entropy_backward(ref_cache))
        if problem:
            if not np.all(np.isfinite(np.asarray(d, dtype=np.float64))):
                _fail_with(f"cross_entropy_backward with large logits: {problem}.", "no_max_subtraction")
            raise Fail(f"cross_entropy_backward with large logits: {problem}.")


# -- AdamW -----------------------------------------------------------------------------------------------
def _adamw_variant(kind):
    def step(w, g, m, v, t, lr, b1=0.9, b2=0.999, eps=1e-8, wd=0.0):
        if kind == "coupled":
            g = g + wd * w
        if kind == "step_minus":
            t = t - 1
        if kind == "step_plus":
            t = t + 1
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        if kind == "no_bias_correction":
            mh, vh = m, v
        else:
            mh, vh = m / (1 - b1 ** t), v / (1 - b2 ** t)
        u = mh / (np.sqrt(vh + eps) if kind == "eps_inside" else np.sqrt(vh) + eps)
        if kind in ("coupled", "no_decay"):
            w = w - lr * u
        elif kind == "decay_after":
            w = (w - lr * u) * (1 - lr * wd)
        elif kind == "decay_no_lr":
            w = w - lr * u - wd * w
        else:
            w = w - lr * (u + wd * w)
        return w, m, v
    return step


ADAMW_VARIANTS = (("coupled_weight_decay", "coupled"), ("missing_bias_correction", "no_bias_correction"),
                  ("decay_after_update", "decay_after"), ("decay_without_lr", "decay_no_lr"),
                  ("eps_inside_sqrt", "eps_inside"), ("step_off_by_one", "step_minus"),
                  ("step_off_by_one", "step_plus"), ("weight_decay_ignored", "no_decay"))


def _adamw_run(ns, steps, shape=(5, 4), dtype=np.float64, label="adamw"):
    """Run the learner's adamw_update and the reference side by side over ``steps`` ([(g, t, hyper)])."""
    rng = _rng(label)
    w0 = rng.standard_normal(shape)
    w, m, v = w0.astype(dtype), np.zeros(shape, dtype), np.zeros(shape, dtype)
    rw, rm, rv = w0.copy(), np.zeros(shape), np.zeros(shape)
    history = [(w0.copy(), np.zeros(shape), np.zeros(shape))]
    for i, (g, t, hyper) in enumerate(steps):
        before = (w.copy(), m.copy(), v.copy())
        ns["adamw_update"](w, g.astype(dtype), m, v, t, *hyper)
        REF.adamw_update(rw, g, rm, rv, t, *hyper)
        yield i, (w, m, v), (rw, rm, rv), before, history
        history.append((rw.copy(), rm.copy(), rv.copy()))


def _adamw_detect(steps, i, mine, w0):
    for key, kind in ADAMW_VARIANTS:
        w, m, v = w0.copy(), np.zeros_like(w0), np.zeros_like(w0)
        with np.errstate(all="ignore"):
            for g, t, hyper in steps[:i + 1]:
                w, m, v = _adamw_variant(kind)(w, g, m, v, t, *hyper)
        if all(_matches(a, b) for a, b in zip(mine, (w, m, v))):
            return key
    return None


def _adamw_check(kind):
    def run(ns):
        rng = _rng("adamw-steps-" + kind)
        shape = (5, 4)
        if kind == "first":
            steps = [(rng.standard_normal(shape), 1, (0.1, 0.9, 0.999, 1e-8, 0.0))]
        elif kind == "decay":
            steps = [(rng.standard_normal(shape), t, (0.1, 0.8, 0.99, 1e-8, 0.5)) for t in range(1, 6)]
        elif kind == "small":
            steps = [(np.zeros(shape) if t == 1 else 1e-6 * rng.standard_normal(shape), t,
                      (0.01, 0.9, 0.999, 1e-8, 0.1)) for t in range(1, 5)]
        else:
            steps = [(rng.standard_normal(shape), t, (0.05, 0.9, 0.999, 1e-8, 0.1)) for t in range(1, 4)]
        dtype = np.float32 if kind == "float32" else np.float64
        tol = TOL32 if kind == "float32" else TOL64
        w0 = None
        for i, mine, ref, before, history in _adamw_run(ns, steps, shape, dtype, "adamw-" + kind):
            if w0 is None:
                w0 = history[0][0]
            g, t, hyper = steps[i]
            desc = (f"adamw_update step t={t} (lr={hyper[0]}, b1={hyper[1]}, b2={hyper[2]}, eps={hyper[3]}, "
                    f"weight_decay={hyper[4]}{', gradient 0' if not np.any(g) else ''})")
            for name, a, b, old, r_old in zip("wmv", mine, ref, before, history[-1]):
                if np.array_equal(a, old) and not np.array_equal(b, r_old):
                    _fail_with(f"{desc}: the caller's `{name}` did not change.", "not_in_place")
            if kind == "float32":
                for name, a in zip("wmv", mine):
                    if a.dtype != np.float32:
                        raise Fail(f"{desc}: `{name}` is no longer float32.")
            for name, a, b in zip("wmv", mine, ref):
                problem = _mismatch(name, a, b, tol)
                if problem:
                    where = f"{desc}: {problem}."
                    if kind != "float32":
                        key = _adamw_detect(steps, i, mine, w0)
                        if key:
                            _fail_with(where, key)
                        if not np.all(np.isfinite(a)) and not np.any(g):
                            raise Fail(where + " With a zero gradient m_hat = v_hat = 0: eps in the denominator "
                                       "keeps 0 / 0 away: m_hat / (sqrt(v_hat) + eps).")
                    raise Fail(where)
    return run


# -- warmup-cosine --------------------------------------------------------------------------------------
def _warmup_variant(kind):
    def f(step, total, base, warm=0, min_lr=0.0):
        if step < warm:
            if kind == "warm0":
                return base * step / warm
            if kind == "warm_plus":
                return base * (step + 1) / (warm + 1)
            return base * (step + 1) / warm
        if kind == "progress_total":
            progress = step / max(1, total)
        elif kind == "progress_total2":
            progress = (step - warm) / max(1, total)
        else:
            progress = (step - warm) / max(1, total - warm)
        if kind != "no_clamp":
            progress = min(1.0, progress)
        lo = 0.0 if kind == "no_min" else min_lr
        if kind == "linear":
            return lo + (base - lo) * (1 - progress)
        if kind == "no_half":
            return lo + (base - lo) * (1 + math.cos(math.pi * progress))
        return lo + 0.5 * (base - lo) * (1 + math.cos(math.pi * progress))
    return f


WARMUP_VARIANTS = (("warmup_off_by_one", "warm0"), ("warmup_off_by_one", "warm_plus"),
                   ("cosine_progress", "progress_total"), ("cosine_progress", "progress_total2"),
                   ("min_lr_ignored", "no_min"), ("cosine_missing_half", "no_half"), ("linear_decay", "linear"),
                   ("no_clamp", "no_clamp"))


def _warmup_check(kind):
    def run(ns):
        if kind == "warmup":
            calls = [(s, 100, 1e-3, 10, 1e-5) for s in range(10)] + [(s, 20, 0.5, 4) for s in range(4)]
        elif kind == "cosine":
            calls = [(s, 100, 1e-3, 10, 1e-5) for s in range(10, 101, 3)] + [(100, 100, 1e-3, 10, 1e-5)] + \
                    [(s, 20, 0.5, 4) for s in range(4, 21)]
        else:
            calls = ([(s, 50, 0.1, 0, 0.001) for s in (0, 1, 25, 49, 50)] + [(s, 100, 1e-3, 10, 1e-5) for s in (150, 400)]
                     + [(s, 10, 0.2, 10, 0.01) for s in (9, 10, 12)] + [(3, 8, 1.0)])
        for c in calls:
            try:
                got = ns["warmup_cosine"](*c)
            except ZeroDivisionError as e:
                raise Fail(f"warmup_cosine{c} (step, total_steps, base_lr, warmup_steps, min_lr) divides by zero "
                           f"({e}). With warmup_steps=0 there is no warmup phase (step < 0 never holds); when "
                           "warmup_steps == total_steps use max(1, total_steps - warmup_steps).")
            try:
                got = float(got)
            except Exception:
                raise Fail(f"warmup_cosine must return a number; it returned {_kind(got)}")
            want = REF.warmup_cosine(*c)
            if not abs(got - want) <= 1e-6 * max(abs(want), 1e-12):
                names = ("step", "total_steps", "base_lr", "warmup_steps", "min_lr")
                call = ", ".join(f"{n}={v}" for n, v in zip(names, c))
                where = f"warmup_cosine({call}) = {got:.8g}, expected {want:.8g}."
                for key, vk in WARMUP_VARIANTS:
                    try:
                        v = _warmup_variant(vk)(*c)
                    except ZeroDivisionError:
                        continue
                    if abs(got - v) <= 1e-6 * max(abs(v), 1e-12):
                        _fail_with(where, key)
                raise Fail(where)
    return run


# ------------------------------------------------------------------------------- the battery
def topic_checks(name):
    """The list of Checks for a topic."""
    if name == "patch":
        return PATCH.checks() + LINEAR.checks()
    if name == "tokens":
        return CLS.checks() + POS.checks()
    if name == "attention":
        return SOFTMAX.checks() + [
            Check("softmax: large inputs (scores up to 1e4) stay finite and correct",
                  ("softmax_forward", "softmax_backward"), 1, _large_softmax_check)] + ATTENTION.checks() + [
            Check("attention: large scores stay finite and correct", ("attention_forward", "attention_backward"), 1,
                  _large_attention_check)]
    if name == "multihead":
        return [
            Check("split_heads: matches the reference (incl. one head, batch 1)", ("split_heads",), 1,
                  _plain_check("split_heads", "split", HEAD_MISTAKES_SPLIT, REF.split_heads)),
            Check("merge_heads: matches the reference", ("merge_heads",), 1,
                  _plain_check("merge_heads", "merge", HEAD_MISTAKES_MERGE, REF.merge_heads)),
            Check("split_heads_backward: matches the reference", ("split_heads_backward",), 1,
                  _plain_check("split_heads_backward", "split_backward", HEAD_MISTAKES_MERGE, REF.split_heads_backward)),
            Check("merge_heads_backward: matches the reference", ("merge_heads_backward",), 1,
                  _plain_check("merge_heads_backward", "merge_backward", HEAD_MISTAKES_SPLIT, REF.merge_heads_backward)),
            Check("split/merge backward agree with finite differences",
                  ("split_heads", "merge_heads", "split_heads_backward", "merge_heads_backward"), 1, _heads_fd_check),
        ] + MHSA.checks()
    if name == "layernorm":
        return LAYERNORM.checks() + [
            Check("layernorm: a token with zero variance stays finite and correct",
                  ("layernorm_forward", "layernorm_backward"), 1, _layernorm_zero_variance_check)]
    if name == "mlp":
        return GELU.checks() + [
            Check("gelu: |x| up to 100 stays finite and correct (both forms)", ("gelu_forward", "gelu_backward"), 1,
                  _gelu_large_check)] + MLP.checks()
    if name == "loss":
        f, b = "cross_entropy_forward", "cross_entropy_backward"
        return [
            Check(f"{f}: integer labels (3 inputs, incl. batch size 1)", (f,), 2, _ce_loss_check("int")),
            Check(f"{f}: label smoothing (integer and soft targets)", (f,), 2, _ce_loss_check("smooth")),
            Check(f"{f}: soft (B, K) targets", (f,), 1, _ce_loss_check("soft")),
            Check(f"{b}: dlogits match the reference (incl. smoothing, soft targets, dloss)", (f, b), 2,
                  _ce_backward_check),
            Check(f"{b}: agrees with finite differences of your {f}", (f, b), 1, _ce_fd_check),
            Check(f"{f} / {b}: float32 in, float32 out", (f, b), 1, _ce_float32_check),
            Check("cross-entropy: logits up to 1e4 stay finite and correct", (f, b), 1, _ce_large_check),
        ]
    if name == "block":
        return BLOCK.checks() + [
            Check("encoder block: dropout and drop-path in training mode", ("encoder_block_forward",
                                                                             "encoder_block_backward"), 1,
                  _block_dropout_check)]
    if name == "optim":
        return [
            Check("adamw_update: first step (t=1), in place", ("adamw_update",), 1, _adamw_check("first")),
            Check("adamw_update: 5 steps with decoupled weight decay", ("adamw_update",), 2, _adamw_check("decay")),
            Check("adamw_update: tiny and zero gradients (where eps matters)", ("adamw_update",), 1,
                  _adamw_check("small")),
            Check("adamw_update: float32 parameters stay float32", ("adamw_update",), 1, _adamw_check("float32")),
            Check("warmup_cosine: the warmup phase", ("warmup_cosine",), 1, _warmup_check("warmup")),
            Check("warmup_cosine: the cosine phase", ("warmup_cosine",), 1, _warmup_check("cosine")),
            Check("warmup_cosine: no warmup, past the end, warmup = total", ("warmup_cosine",), 1,
                  _warmup_check("edges")),
        ]
    raise ValueError(f"unknown topic {name!r}; choose from {', '.join(TOPIC_NAMES)}")


# ------------------------------------------------------------------------------- loading
def default_path():
    """``./exercises`` when it exists, else the exercises folder next to the minivit package."""
    here = Path("exercises")
    if here.is_dir():
        return here
    beside = Path(__file__).resolve().parent.parent / "exercises"
    return beside if beside.is_dir() else here


def _where(tb_frames, folder):
    folder = Path(folder).resolve()
    mine = [f for f in tb_frames if _inside(f.filename, folder)]
    if not mine:
        return ""
    f = mine[-1]
    line = f" `{f.line.strip()}`" if f.line else ""
    return f" ({Path(f.filename).name}, line {f.lineno}, in {f.name}:{line})"


def _inside(filename, folder):
    try:
        return Path(filename).resolve().parent == folder
    except Exception:
        return False


def describe_exception(e, folder):
    """One line naming the exception and the line of the learner's file it came from."""
    if isinstance(e, SyntaxError):
        text = f" `{e.text.strip()}`" if e.text else ""
        return f"{type(e).__name__}: {e.msg} ({Path(e.filename or '?').name}, line {e.lineno}:{text})"
    msg = str(e)
    return f"{type(e).__name__}{': ' + msg if msg else ''}{_where(traceback.extract_tb(e.__traceback__), folder)}"


def load_exercises(path=None, topics=None):
    """Import each topic's file on its own.

    returns: (namespace, errors): a SimpleNamespace of the exercise functions found (usable with
    ``minivit.ops.use``), and {topic: message} for the files that are missing or fail to import.
    """
    path = Path(path) if path is not None else default_path()
    ns, errors = {}, {}
    for t in _topics(topics):
        file = path / t.file
        if not file.is_file():
            errors[t.name] = f"{file} not found"
            continue
        modname = f"minivit_exercises_{t.name}"
        spec = importlib.util.spec_from_file_location(modname, file)
        module = importlib.util.module_from_spec(spec)
        saved = sys.dont_write_bytecode
        sys.dont_write_bytecode = True        # no __pycache__ next to the learner's files, never a stale one
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                spec.loader.exec_module(module)
        except KeyboardInterrupt:
            raise
        except BaseException as e:   # SyntaxError, ImportError, SystemExit, anything at import time
            errors[t.name] = f"could not import {t.file}: {describe_exception(e, path)}"
            continue
        finally:
            sys.dont_write_bytecode = saved
        for fn in t.functions:
            f = getattr(module, fn, None)
            if callable(f):
                ns[fn] = f
    return types.SimpleNamespace(**ns), errors


def _topics(names):
    if names is None or len(names) == 0:
        return list(TOPICS)
    unknown = [n for n in names if n not in TOPIC_BY_NAME]
    if unknown:
        raise ValueError(f"unknown topic {', '.join(unknown)}; choose from {', '.join(TOPIC_NAMES)}")
    return [TOPIC_BY_NAME[n] for n in names]


@contextlib.contextmanager
def _time_limit(seconds):
    use = hasattr(signal, "SIGALRM") and threading.current_thread() is threading.main_thread()
    if not use:
        yield
        return

    def handler(signum, frame):
        raise _Timeout()

    old = signal.signal(signal.SIGALRM, handler)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def _run_check(check, ns, folder, file):
    """Run one check -> (status, points, feedback, mistake); status: ok, fail, todo, error."""
    missing = [f for f in check.functions if f not in ns]
    if missing:
        return "error", 0, f"{', '.join(missing)} not found in {file} (keep the function names of the stubs)", None
    try:
        with _time_limit(CHECK_TIMEOUT_S), np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            check.run(ns)
    except Fail as e:
        return "fail", 0, str(e), e.mistake
    except NotImplementedError as e:
        frames = [f for f in traceback.extract_tb(e.__traceback__) if _inside(f.filename, Path(folder).resolve())]
        who = frames[-1].name if frames else check.functions[-1]
        return "todo", 0, f"{who} is not implemented yet", None
    except _Timeout:
        return "error", 0, f"took longer than {CHECK_TIMEOUT_S} s (an endless loop?)", None
    except RecursionError as e:
        return "error", 0, describe_exception(e, folder) + " (a function calling itself?)", None
    except (Exception, SystemExit) as e:    # SystemExit: a learner's sys.exit() must not end the grading
        if isinstance(e, ValueError) and "broadcast" in str(e):
            key = "broadcast_keepdims"
            return "error", 0, describe_exception(e, folder) + "\n" + MISTAKES[key], key
        return "error", 0, describe_exception(e, folder), None
    return "ok", check.points, "", None


def grade(topics=None, path=None):
    """Grade the exercises in ``path`` (default: ``exercises``). Returns the report dict:

    {"path": str, "topics": {name: {"title", "file", "points", "max", "error", "checks": [
        {"name", "points", "max", "status", "feedback", "mistake"}]}}, "total": int, "max": int}
    """
    path = Path(path) if path is not None else default_path()
    chosen = _topics(topics)
    ns_obj, errors = load_exercises(path, [t.name for t in chosen])
    ns = vars(ns_obj)
    report = {"path": str(path), "topics": {}, "total": 0, "max": 0}
    with ops.use(ops.reference()):        # composite exercises calling F get minivit's reference pieces
        for t in chosen:
            checks = topic_checks(t.name)
            rows = []
            for c in checks:
                if t.name in errors:
                    status, pts, fb, mistake = "error", 0, errors[t.name], None
                else:
                    status, pts, fb, mistake = _run_check(c, ns, path, t.file)
                rows.append(dict(name=c.name, points=pts, max=c.points, status=status, feedback=fb, mistake=mistake))
            points = sum(r["points"] for r in rows)
            top = sum(r["max"] for r in rows)
            report["topics"][t.name] = dict(title=t.title, file=t.file, points=points, max=top,
                                            error=errors.get(t.name), checks=rows)
            report["total"] += points
            report["max"] += top
    return report


def max_points(topics=None):
    """{topic: maximum points} without grading anything."""
    return {t.name: sum(c.points for c in topic_checks(t.name)) for t in _topics(topics)}


# ------------------------------------------------------------------------------- reporting
def _indent(text, prefix):
    return "\n".join(prefix + line if line else line for line in text.splitlines())


def format_topic(name, t, verbose=False):
    lines = [f"{name} - {t['title']} ({t['file']}): {t['points']}/{t['max']}"]
    if t["error"]:
        lines.append(_indent(t["error"], "    "))
        return "\n".join(lines)
    if all(r["status"] == "todo" for r in t["checks"]):
        lines.append("    not implemented yet - start with the stubs in " + t["file"])
        return "\n".join(lines)
    if not verbose and all(r["status"] == "ok" for r in t["checks"]):
        lines.append(f"    all {len(t['checks'])} checks passed")
        return "\n".join(lines)
    for r in t["checks"]:
        mark = {"ok": "ok  ", "fail": "FAIL", "todo": "todo", "error": "ERR "}[r["status"]]
        lines.append(f"  {mark}  {r['name']}  [{r['points']}/{r['max']}]")
        if r["feedback"] and (verbose or r["status"] != "ok"):
            lines.append(_indent(r["feedback"], "          "))
    return "\n".join(lines)


def format_report(report, verbose=False):
    out = [f"Grading {report['path']}  (random inputs, float64 and float32; see exercises/README.md)", ""]
    for name, t in report["topics"].items():
        out.append(format_topic(name, t, verbose))
        out.append("")
    width = max(len(n) for n in report["topics"]) if report["topics"] else 5
    width = max(width, 5)
    out.append(f"{'topic':<{width}}  {'file':<24}  points")
    out.append("-" * (width + 36))
    for name, t in report["topics"].items():
        out.append(f"{name:<{width}}  {t['file']:<24}  {t['points']:>3}/{t['max']}")
    out.append("-" * (width + 36))
    out.append(f"{'total':<{width}}  {'':<24}  {report['total']:>3}/{report['max']}")
    return "\n".join(out)


# ----------------------------------------------------------------------- training with exercises
def _probe_calls():
    """(function, call(ns)) pairs that run every exercise function once on a tiny input."""
    r = np.random.default_rng(0).standard_normal

    probes = {}
    for P in (PATCH, LINEAR, CLS, POS, SOFTMAX, ATTENTION, MHSA, LAYERNORM, GELU, MLP, BLOCK):
        args = P.fd_cases()[0]
        probes[P.fwd] = (lambda P, args: lambda ns: ns[P.fwd](*_copy(args)))(P, args)
        probes[P.bwd] = (lambda P, args: lambda ns: ns[P.bwd](
            np.ones(np.shape(ns[P.fwd](*_copy(args))[0])), ns[P.fwd](*_copy(args))[1]))(P, args)
    x = r((2, 3, 4))
    probes["split_heads"] = lambda ns: ns["split_heads"](x, 2)
    probes["merge_heads"] = lambda ns: ns["merge_heads"](r((2, 2, 3, 2)))
    probes["split_heads_backward"] = lambda ns: ns["split_heads_backward"](r((2, 2, 3, 2)))
    probes["merge_heads_backward"] = lambda ns: ns["merge_heads_backward"](x, 2)
    logits, labels = r((2, 3)), np.array([0, 2])
    probes["cross_entropy_forward"] = lambda ns: ns["cross_entropy_forward"](logits, labels, 0.1)
    probes["cross_entropy_backward"] = lambda ns: ns["cross_entropy_backward"](
        ns["cross_entropy_forward"](logits, labels, 0.1)[1])
    probes["adamw_update"] = lambda ns: ns["adamw_update"](r(3), r(3), np.zeros(3), np.zeros(3), 1, 1e-3, 0.9, 0.999,
                                                           1e-8, 0.1)
    probes["warmup_cosine"] = lambda ns: ns["warmup_cosine"](3, 10, 1e-3, 2, 0.0)
    return probes


def _is_stub(fn):
    """True when fn's body is only a docstring and ``raise NotImplementedError``."""
    import ast
    import textwrap
    try:
        node = ast.parse(textwrap.dedent(inspect.getsource(fn))).body[0]
    except Exception:
        return False
    body = [s for s in node.body
            if not (isinstance(s, ast.Expr) and isinstance(getattr(s, "value", None), ast.Constant))]
    if len(body) != 1 or not isinstance(body[0], ast.Raise):
        return False
    exc = body[0].exc
    target = exc.func if isinstance(exc, ast.Call) else exc
    return isinstance(target, ast.Name) and target.id == "NotImplementedError"


def check_implemented(path=None):
    """Which exercise functions are missing, unimplemented or broken.

    returns: (namespace, problems) with problems a list of lines (empty when all run on a tiny input).
    """
    path = Path(path) if path is not None else default_path()
    ns_obj, errors = load_exercises(path)
    ns = vars(ns_obj)
    problems, todo = [], {}
    probes = _probe_calls()
    with ops.use(ops.reference()), np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for t in TOPICS:
            if t.name in errors:
                problems.append(errors[t.name])
                continue
            for fn in t.functions:
                if fn not in ns:
                    problems.append(f"{t.file}: {fn} is missing")
                    continue
                try:
                    probes[fn](ns)
                except NotImplementedError as e:
                    frames = [f for f in traceback.extract_tb(e.__traceback__) if _inside(f.filename, path.resolve())]
                    who = frames[-1].name if frames else fn
                    # a backward whose forward is not written yet counts only when it is still a stub
                    if who == fn or _is_stub(ns[fn]):
                        todo.setdefault(t.file, []).append(fn)
                except Exception as e:
                    problems.append(f"{t.file}: {fn} fails on a tiny input: {describe_exception(e, path)}")
    lines = [f"{file}: {', '.join(fns)} not implemented yet" for file, fns in todo.items()]
    return ns_obj, lines + problems


def exercises_impl(path=None):
    """The learner's functions, ready for ``Trainer(impl=...)``; RuntimeError naming what is missing."""
    path = Path(path) if path is not None else default_path()
    if not path.is_dir():
        raise FileNotFoundError(f"no exercises folder at {path} (run from the repository root, or pass "
                                "--exercises-path DIR)")
    ns, problems = check_implemented(path)
    if problems:
        raise RuntimeError(
            f"cannot train with --impl exercises: your exercises in {path} are not complete yet:\n  "
            + "\n  ".join(problems)
            + "\nImplement them (`python -m minivit grade` shows your progress), or train without --impl exercises.")
    return ns


if __name__ == "__main__":   # python -m minivit.grading [TOPIC ...] == python -m minivit grade
    from minivit.__main__ import main

    sys.exit(main(["grade", *sys.argv[1:]]))
