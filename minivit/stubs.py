"""Generate the exercise stubs in ``exercises/`` from minivit's reference code.

    python -m minivit.stubs                 # write missing stubs, refresh untouched ones
    python -m minivit.stubs --check         # exit 1 if a committed stub differs from the generated one
    python -m minivit.stubs --out DIR       # write somewhere else
    python -m minivit.stubs --force         # also overwrite files a learner has already edited

Each stub function is built from the reference function of the same name (``minivit.layers``,
``minivit.optim``): its ``def`` line is copied verbatim from the source (``ast`` positions, so
defaults and line breaks stay exactly as written), its docstring is the reference docstring
followed by the hints of :data:`HINTS`, and its body is ``raise NotImplementedError``. Stubs and
reference therefore cannot drift apart: change a signature or a docstring in minivit, rerun the
generator, and ``tests/test_grading.py::test_stubs_are_up_to_date`` keeps the two in step.

A file still counts as an untouched stub when every exercise function's body is only the
docstring and ``raise NotImplementedError``; anything else is a learner's work and is kept
unless ``--force`` is given.
"""
from __future__ import annotations

import argparse
import ast
import inspect
import sys
import textwrap
from pathlib import Path

from minivit import ops
from minivit.grading import TOPIC_BY_NAME, TOPICS

# ------------------------------------------------------------------------------------ the table
# Per topic: the exercise number, an introduction (the file's docstring) and the imports it starts with.
INTROS = {
    "patch": """\
The first step of a ViT (paper eq. 1): cut each image into P x P patches, flatten every patch into a
vector of P*P*C numbers, and map it to the model width D with a linear layer (the "patch embedding" E).
You write patchify (and its backward) and the linear layer (forward and backward).""",
    "tokens": """\
After the patch embedding, a learned class token is prepended to every sequence and learned position
embeddings are added (paper eq. 1):  z_0 = [x_class; x_p^1 E; ...; x_p^N E] + E_pos.""",
    "attention": """\
The core of the transformer (paper eqs. 5-7): a numerically stable softmax, and scaled dot-product
attention  out = softmax(q k^T / sqrt(d)) v,  forward and backward.""",
    "multihead": """\
Multi-head self-attention (paper eqs. 5-8): one fused projection to q, k, v; each split into h heads
of width d = D / h; attention in every head; heads merged and projected back to D.""",
    "layernorm": """\
Layer normalization, applied before every sub-block of the encoder (paper eqs. 2-3): each token's
feature vector is normalized on its own, then scaled and shifted by learned gamma and beta.""",
    "mlp": """\
The transformer's MLP block (paper eq. 3): two linear layers with a GELU between them. GELU comes in
two forms: the tanh approximation (the ViT default) and the exact x * Phi(x).""",
    "loss": """\
Softmax cross-entropy over the class logits, with optional label smoothing and soft targets (mixup,
cutmix). The forward returns a scalar loss; the backward gives dloss/dlogits.""",
    "block": """\
The pre-norm transformer encoder block (paper eqs. 2-3):  z' = z + MSA(LN(z)),  out = z' + MLP(LN(z')),
with optional dropout and drop-path on each residual branch.""",
    "optim": """\
Training: one AdamW step (Adam with decoupled weight decay) for one parameter, updated in place, and
the learning-rate schedule: linear warmup, then cosine decay.""",
}

_NP = "import numpy as np\n\nfrom minivit.backend import get_array_module\n"
_F = "from minivit.ops import F   # minivit's functions (yours when training with --impl exercises)\n"
IMPORTS = {
    "patch": _NP,
    "tokens": _NP,
    "attention": "import math\n\n" + _NP,
    "multihead": "import math\n\n" + _NP + _F,
    "layernorm": _NP,
    "mlp": "import math\n\n" + _NP + "from minivit.layers.activation import _erf as erf   # elementwise erf, NumPy and CuPy\n"
           + _F,
    "loss": _NP,
    "block": _F,
    "optim": "import math\n\n" + _NP,
}

_CACHE = "cache: anything your backward needs (a tuple of arrays, say); it comes back to it unchanged."
_F_NOTE = ("While grading, F holds minivit's reference functions (this exercise is graded on its own);\n"
           "with `train --impl exercises`, F holds yours.")

# Per function: the hints appended to the reference docstring.
HINTS = {
    "patchify_forward": f"""\
B, H, W, C = x.shape; P = patch_size; the grid is (H/P) x (W/P) patches.
Reshape to (B, H/P, P, W/P, P, C), transpose the two grid axes together ->
(B, H/P, W/P, P, P, C), reshape to (B, N, P*P*C). A single reshape is not enough.
No loops needed; the result may be a copy.
{_CACHE}""",
    "patchify_backward": """\
patchify only moves numbers: undo it. Reshape dout to (B, H/P, W/P, P, P, C), transpose back to
(B, H/P, P, W/P, P, C), reshape to (B, H, W, C). Keep x's shape in the cache.""",
    "linear_forward": f"""\
Flatten the leading axes: x.reshape(-1, D_in) @ w is one matrix multiply; reshape back.
{_CACHE}""",
    "linear_backward": """\
With x2 = x.reshape(-1, D_in) and dy2 = dy.reshape(-1, D_out):
dx = dy2 @ w.T (reshaped like x), dw = x2.T @ dy2, db = dy2.sum(axis=0).
Every token of every image used the same w and b: their gradients sum over all of them.""",
    "cls_token_forward": """\
Make a (B, N+1, D) array with the dtype of x (np.empty(..., dtype=x.dtype)), put cls in position 0
of every sequence, x in positions 1..N. (np.concatenate with np.broadcast_to works too.)""",
    "cls_token_backward": """\
dx is dout without position 0. dcls keeps the shape (1, 1, D): sum dout[:, :1] over the batch
(keepdims=True).""",
    "pos_embed_forward": """\
Broadcasting does the work: x + pos adds the same (T, D) table to every image.
Return a new array; do not modify x in place.""",
    "pos_embed_backward": """\
dx = dout. dpos: the same table was added to every image, so sum over the batch, keeping the
shape (1, T, D).""",
    "softmax_forward": f"""\
e = exp(x - max(x, axis, keepdims=True)); out = e / sum(e, axis, keepdims=True).
Without the max, exp overflows for scores of a few hundred (the grader tries 1e4).
keepdims=True keeps every row's max and sum lined up with its row.
{_CACHE}
(The output s is all the backward needs.)""",
    "softmax_backward": """\
dx = s * (dout - sum(dout * s, axis, keepdims=True)). Work it out from ds_i/dx_j = s_i (delta_ij - s_j):
the diagonal alone (s (1 - s)) is not enough.""",
    "attention_forward": f"""\
d = q.shape[-1]; S = q @ k.swapaxes(-1, -2) / sqrt(d)   (use math.sqrt: np.sqrt gives a float64
scalar that turns float32 arrays into float64); A = softmax over the last axis (your
softmax_forward above); out = A @ v. `@` batches over the leading axes.
{_CACHE}
(q, k, v, A and the scale.)""",
    "attention_backward": """\
Go backwards through out = A v, A = softmax(S), S = scale * q k^T:
dv = A^T dout, dA = dout v^T, dS = softmax backward of dA (your softmax_backward), dq = scale * dS k,
dk = scale * dS^T q. "^T" means swapaxes(-1, -2).""",
    "split_heads": """\
(B, T, D) -> reshape (B, T, h, D/h) -> transpose (0, 2, 1, 3) -> (B, h, T, d).
Head j gets the features [j*d, (j+1)*d).""",
    "merge_heads": """\
The inverse of split_heads: transpose (0, 2, 1, 3) back to (B, T, h, d), then reshape to (B, T, h*d).""",
    "split_heads_backward": """\
split_heads only moves numbers: its gradient moves them back, which is what merge_heads does.""",
    "merge_heads_backward": """\
The gradient of merge_heads is split_heads.""",
    "mhsa_forward": f"""\
1. qkv = F.linear_forward(x, w_qkv, b_qkv): (B, T, 3D).
2. reshape to (B, T, 3, h, d) and transpose to (3, B, h, T, d): q, k, v = qkv[0], qkv[1], qkv[2].
3. heads = F.attention_forward(q, k, v)   4. merged = merge_heads(heads)
5. out = F.linear_forward(merged, w_out, b_out).
Keep every step's cache.
{_F_NOTE}""",
    "mhsa_backward": """\
Run the forward's steps backwards: linear_backward of the output projection, merge_heads_backward,
attention_backward, stack dq, dk, dv and undo step 2's transpose/reshape to (B, T, 3D), then
linear_backward of the qkv projection. (The key part of db_qkv comes out exactly 0: see
minivit.gradcheck.KEY_BIAS_NOTE.)""",
    "layernorm_forward": f"""\
Over the last axis: mu = mean(x), var = mean((x - mu)^2) (divide by D: the *biased* variance;
np.var's default ddof=0 is right, ddof=1 is not), xhat = (x - mu) / sqrt(var + eps),
y = gamma * xhat + beta. Use keepdims=True.
{_CACHE}
(xhat, 1/sqrt(var + eps) and gamma are enough.)""",
    "layernorm_backward": """\
dgamma = sum of dy * xhat and dbeta = sum of dy over every token of every image (all axes but the last).
With g = dy * gamma: dx = rstd * (g - mean(g) - xhat * mean(g * xhat)), means over the last axis.
Derive it once on paper: mu and var both depend on x.""",
    "gelu_forward": f"""\
approximate='tanh': 0.5 x (1 + tanh(c (x + 0.044715 x^3))), c = math.sqrt(2 / math.pi).
approximate='none': x * Phi(x) = 0.5 x (1 + erf(x / sqrt(2))) (erf is imported above).
Keep the two forms apart: the grader tries both. np.tanh is safe for large |x|.
{_CACHE}""",
    "gelu_backward": """\
Product rule. tanh form, with t = tanh(c (x + 0.044715 x^3)):
d/dx = 0.5 (1 + t) + 0.5 x (1 - t^2) c (1 + 3 * 0.044715 x^2).
Exact form: d/dx = Phi(x) + x phi(x), phi(x) = exp(-x^2 / 2) / sqrt(2 pi).
Multiply by dout.""",
    "mlp_forward": f"""\
h = F.linear_forward(x, w1, b1); a = gelu_forward(h, approximate) (yours, above, or F.gelu_forward);
out = F.linear_forward(a, w2, b2). Pass `approximate` on. Keep the three caches.
{_F_NOTE}""",
    "mlp_backward": """\
The three steps backwards: linear_backward (second layer), gelu_backward, linear_backward (first layer).""",
    "cross_entropy_forward": f"""\
Build the target t (B, K): one-hot rows for integer labels, the labels themselves for soft (B, K)
targets; with label smoothing eps: t = (1 - eps) * t + eps / K.
Stable log-softmax: log_p = s - max(s) - log(sum(exp(s - max(s)))) (rows, keepdims=True); never
log(softmax(s)), which gives log(0) = -inf for very negative scores.
loss = -sum(t * log_p) / B, returned as a Python float (float(...)).
{_CACHE}""",
    "cross_entropy_backward": """\
dlogits = dloss * (softmax(s) - t) / B, with softmax(s) = exp(log_p). Return an array with the
logits' dtype.""",
    "encoder_block_forward": f"""\
Call the sub-operations through F, as minivit does, e.g.
    h, c1 = F.layernorm_forward(x, p["ln1_gamma"], p["ln1_beta"], eps)
Each branch: LayerNorm -> F.mhsa_forward (branch 1) or F.mlp_forward(..., approximate) (branch 2)
-> F.dropout_forward -> F.drop_path_forward (both with rng and train) -> add to the residual.
Keep every cache.
{_F_NOTE}""",
    "encoder_block_backward": """\
Backwards through eq. (3), then eq. (2). Each residual splits the gradient: the upstream gradient
goes through the sub-block *and* straight on, so add it: dz1 = (gradient through LN2/MLP) + dout,
dx = (gradient through LN1/MSA) + dz1. Undo drop_path before dropout (reverse order).
Return (dx, grads) with grads a dict keyed like p.""",
    "adamw_update": """\
Update w, m and v in place (w -= ..., m *= b1; m += ..., v[...] = ...): `w = w - ...` only rebinds
a local name and the caller's parameter never changes. Returns nothing.
Weight decay is decoupled: it does not enter m and v; it shrinks w directly by lr * weight_decay * w.
Bias correction uses t, which starts at 1.""",
    "warmup_cosine": """\
step is 0-based. Warmup (step < warmup_steps): base_lr * (step + 1) / warmup_steps.
Then progress = (step - warmup_steps) / max(1, total_steps - warmup_steps), clamped at 1, and
lr = min_lr + 0.5 (base_lr - min_lr) (1 + cos(pi * progress)). Return a float.""",
}

HEADER = '''"""Exercise {number}: {title}.   Topic `{topic}`: python -m minivit grade {topic}

{intro}

Fill in every function below (replace `raise NotImplementedError`). Names, signatures and
docstrings are those of minivit's own functions ({sources}):
the grader compares your results with them on random inputs, in float64 and float32, and checks
your gradients with finite differences. Read the feedback, fix, grade again.
Details: exercises/README.md.

Generated by `python -m minivit.stubs` from minivit's reference code. This file is yours to edit.
"""
'''


# ------------------------------------------------------------------------------------ rendering
def _reference(name):
    fn = getattr(ops.reference(), name)
    return fn


def _def_lines(fn):
    """The verbatim ``def ...:`` line(s) of a function, and its docstring."""
    src = textwrap.dedent(inspect.getsource(fn))
    node = ast.parse(src).body[0]
    lines = src.splitlines()
    first_body = node.body[0]
    header = "\n".join(lines[node.lineno - 1:first_body.lineno - 1]).rstrip()
    if not header.endswith(":"):
        raise ValueError(f"cannot find the end of the def line(s) of {fn.__name__}")
    doc = ast.get_docstring(node, clean=True) or ""
    return header, doc


def _docstring(doc, hints):
    text = doc.rstrip() + "\n\nHints:\n" + textwrap.indent(hints.rstrip(), "  ")
    if '"""' in text or "\\" in text:
        raise ValueError("docstrings with triple quotes or backslashes are not supported")
    lines = text.splitlines()
    body = [lines[0]] + [("    " + ln) if ln.strip() else "" for ln in lines[1:]]
    return '    """' + "\n".join(body) + '\n    """'


def render_function(name):
    fn = _reference(name)
    header, doc = _def_lines(fn)
    if name not in HINTS:
        raise KeyError(f"no hints for {name} in minivit.stubs.HINTS")
    return f'{header}\n{_docstring(doc, HINTS[name])}\n    raise NotImplementedError("{name}: your code here")\n'


def _package_relative(source_file):
    """'layers/norm.py' for .../minivit/layers/norm.py, wherever the clone lives (even in a folder
    that is itself called minivit: the path is taken relative to the package, not split on a name)."""
    package_dir = Path(__file__).resolve().parent
    return Path(source_file).resolve().relative_to(package_dir).as_posix()


def render_topic(topic_name):
    topic = TOPIC_BY_NAME[topic_name]
    number = [t.name for t in TOPICS].index(topic_name) + 1
    sources = sorted({_package_relative(inspect.getsourcefile(_reference(f))) for f in topic.functions})
    head = HEADER.format(number=number, title=topic.title, topic=topic.name, intro=INTROS[topic.name],
                         sources=", ".join("minivit/" + s for s in sources))
    parts = [head + IMPORTS[topic.name]]
    for f in topic.functions:
        parts.append(render_function(f))
    return "\n\n".join(parts)


def render_stubs():
    """{file name: text} for every topic."""
    return {t.file: render_topic(t.name) for t in TOPICS}


# ------------------------------------------------------------------------------------ writing
def is_untouched_stub(text, topic):
    """True when every exercise function in ``text`` is still only a docstring + raise NotImplementedError."""
    try:
        tree = ast.parse(text)
    except SyntaxError:
        return False
    funcs = {n.name: n for n in tree.body if isinstance(n, ast.FunctionDef)}
    for name in topic.functions:
        node = funcs.get(name)
        if node is None:
            return False
        body = node.body[1:] if (node.body and isinstance(node.body[0], ast.Expr)
                                 and isinstance(node.body[0].value, ast.Constant)) else node.body
        if len(body) != 1 or not isinstance(body[0], ast.Raise):
            return False
        exc = body[0].exc
        target = exc.func if isinstance(exc, ast.Call) else exc
        if not (isinstance(target, ast.Name) and target.id == "NotImplementedError"):
            return False
    return True


def stub_status(path):
    """{file: 'ok' | 'missing' | 'outdated' | 'edited'} comparing ``path`` with freshly generated stubs."""
    path = Path(path)
    out = {}
    for t in TOPICS:
        f = path / t.file
        want = render_topic(t.name)
        if not f.exists():
            out[t.file] = "missing"
            continue
        have = f.read_text()
        if have == want:
            out[t.file] = "ok"
        elif is_untouched_stub(have, t):
            out[t.file] = "outdated"
        else:
            out[t.file] = "edited"
    return out


def write_stubs(path, force=False):
    """Write the stubs into ``path``; keep edited files unless ``force``. Returns {file: action}."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    actions = {}
    for file, status in stub_status(path).items():
        if status == "ok":
            actions[file] = "unchanged"
        elif status == "edited" and not force:
            actions[file] = "kept (edited; --force overwrites)"
        else:
            topic = next(t for t in TOPICS if t.file == file)
            (path / file).write_text(render_topic(topic.name))
            actions[file] = "written" if status == "missing" else ("overwritten" if status == "edited" else "updated")
    return actions


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m minivit.stubs", description=__doc__.split("\n")[0])
    p.add_argument("--out", default="exercises", help="the exercises folder (default: exercises)")
    p.add_argument("--force", action="store_true", help="also overwrite files a learner has edited")
    p.add_argument("--check", action="store_true",
                   help="write nothing; exit 1 when a stub is missing or differs from the generated one")
    args = p.parse_args(argv)
    if args.check:
        status = stub_status(args.out)
        for file, s in status.items():
            print(f"{file:<26} {s}")
        bad = [f for f, s in status.items() if s in ("missing", "outdated")]
        if bad:
            print(f"\n{len(bad)} stub(s) out of date: run python -m minivit.stubs --out {args.out}")
            return 1
        return 0
    for file, action in write_stubs(args.out, args.force).items():
        print(f"{file:<26} {action}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
