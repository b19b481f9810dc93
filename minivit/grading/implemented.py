"""Training with the learner's functions: ``exercises_impl`` checks that every one runs first."""
from __future__ import annotations

import inspect
import traceback
import warnings
from pathlib import Path

import numpy as np

from minivit import ops
from minivit.grading.common import _copy
from minivit.grading.loading import _inside, default_path, describe_exception, load_exercises
from minivit.grading.topics import TOPICS
from minivit.grading.topics.attention import ATTENTION, SOFTMAX
from minivit.grading.topics.block import BLOCK
from minivit.grading.topics.layernorm import LAYERNORM
from minivit.grading.topics.mlp import GELU, MLP
from minivit.grading.topics.multihead import MHSA
from minivit.grading.topics.patch import LINEAR, PATCH
from minivit.grading.topics.tokens import CLS, POS


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
