"""Generate the exercise stubs in ``exercises/`` from minivit's reference code.

    python -m minivit.stubs                 # write missing stubs, refresh untouched ones
    python -m minivit.stubs --check         # exit 1 if a committed stub differs from the generated one
    python -m minivit.stubs --out DIR       # write somewhere else
    python -m minivit.stubs --force         # also overwrite files a learner has already edited

Each stub function is built from the reference function of the same name (``minivit.layers``,
``minivit.optim``): its ``def`` line is copied verbatim from the source (``ast`` positions, so
defaults and line breaks stay exactly as written), its docstring is the *contract* part of the
reference docstring (everything before its ``Derivation:`` line) and a pointer to the hints
(``python -m minivit hint NAME``), and its body is ``raise NotImplementedError``. Stubs and
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
_F = "from minivit.ops import F   # minivit's functions (with --impl exercises: yours, for the topics that pass)\n"
IMPORTS = {
    "patch": _NP,
    "tokens": _NP,
    "attention": "import math\n\n" + _NP,
    "multihead": "import math\n\n" + _NP + _F,
    "layernorm": _NP,
    "mlp": "import math\n\n" + _NP + "from minivit.layers.activation import erf   # elementwise erf, NumPy and CuPy\n"
           + _F,
    "loss": _NP,
    "block": _F,
    "optim": "import math\n\n" + _NP,
}

# What a stub says about a function: the contract part of the reference docstring (everything
# before its "Derivation:" line: shapes, what is computed, what the cache and the gradients must
# be), then where the hints are. The derivation stays in minivit (it is the solution); the hints
# come on demand, one level at a time (minivit/grading/hints.py).
DERIVATION = "Derivation:"
_STUCK = "Stuck? python -m minivit hint {name}   (then --level 2, then 3: one at a time)"

HEADER = '''"""Exercise {number}: {title}.   Topic `{topic}`: python -m minivit grade {topic}

{intro}

Fill in every function below (replace `raise NotImplementedError`). Names and signatures are
those of minivit's own functions ({sources}).
Each docstring is their contract: the shapes, what the function computes and what it returns.
How to get there is yours to work out (derive each backward on paper first). A forward's
cache is whatever your backward needs; it comes back to it unchanged. The grader compares your
results with minivit's on random inputs, in float64 and float32, and checks your gradients with
finite differences. Read the feedback, fix, grade again.
Stuck? `python -m minivit hint FUNCTION` gives a hint in three levels, one at a time (the
approach, the intermediate results, the formula). Details: exercises/README.md.

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


def contract(doc):
    """The contract part of a reference docstring: the text before its ``Derivation:`` line."""
    kept = []
    for line in doc.splitlines():
        if line.strip().startswith(DERIVATION):
            break
        kept.append(line)
    return "\n".join(kept).rstrip()


def _docstring(doc, name):
    text = contract(doc) + "\n\n" + _STUCK.format(name=name)
    if '"""' in text or "\\" in text:
        raise ValueError("docstrings with triple quotes or backslashes are not supported")
    lines = text.splitlines()
    body = [lines[0]] + [("    " + ln) if ln.strip() else "" for ln in lines[1:]]
    return '    """' + "\n".join(body) + '\n    """'


def render_function(name):
    fn = _reference(name)
    header, doc = _def_lines(fn)
    return f'{header}\n{_docstring(doc, name)}\n    raise NotImplementedError("{name}: your code here")\n'


def _package_relative(source_file):
    """'layers/norm.py' for .../minivit/layers/norm.py, wherever the clone lives (even in a folder
    that is itself called minivit: the path is taken relative to the package, not split on a name)."""
    package_dir = Path(__file__).resolve().parents[1]
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
