"""Keeping minivit's own implementation out of reach while a topic's functions are graded.

Runs in the child process (``child.py``) *before* the learner's file is imported:

* every function object of minivit that implements one of the topic's functions (the reference in
  ``minivit.layers`` / ``minivit.optim``, the fast paths of ``minivit.fast``, ``fast_layers`` and
  ``fast_attention``, and ``minivit.fast.fused.ops``) gets its code replaced, in place, by a trap. Every route to it then reaches the trap: an import,
  ``F.layernorm_forward``, an alias captured at import time, ``getattr`` on a module, another
  module of the package that calls it. The trap records the hit (``reached``) and raises.
* an audit hook refuses to open the source or bytecode files of the modules that define those
  functions (and of the fast paths, the hint texts and the grader), wherever on the machine a copy
  of them is, so a fresh copy cannot be loaded (``importlib.reload``, ``spec_from_file_location``,
  ``inspect.getsource``, ``exec(open(...).read())``).

The functions of *other* topics stay as they are: a composite exercise keeps calling
``F.attention_forward``. The expected values never come from the child: the checks compute them in
the grader's process. ``originals`` keeps working copies for the grader's own "passes with the
reference X" re-runs (``swap``), which put them into the learner's module only on request.
"""
from __future__ import annotations

import contextlib
import importlib.util
import sys
import types
from pathlib import Path

# minivit modules holding other implementations of the exercise functions (fast paths, fused kernels)
OTHER_IMPLEMENTATIONS = ("minivit.fast", "minivit.fast.layers", "minivit.fast.attention", "minivit.fast.fused.ops")

reached = []            # the names of the trapped functions (or files) reached since the last ``take()``
active = [False]        # the audit hook refuses only while the learner's code runs (set by child.py)


class ReferenceReached(RuntimeError):
    """Raised by a trapped function: the learner's code reached minivit's own implementation."""


def _hit(name):
    reached.append(name)
    raise ReferenceReached(f"minivit's own {name} is not available while {name} is graded")


@contextlib.contextmanager
def armed():
    """The audit hook refuses while this runs (the learner's code), not while the grader works."""
    active[0] = True
    try:
        yield
    finally:
        active[0] = False


def take():
    """The names reached since the last call (each once, in order), and forget them."""
    out = list(dict.fromkeys(reached))
    reached.clear()
    return out


def _trap_code(name):
    """A code object that reports ``name`` as reached. It runs with the trapped function's globals,
    so it finds this module through ``sys.modules``, never through a global the learner can rebind."""
    src = (f"def {name}(*args, **kwargs):\n"
           f"    import sys\n"
           f"    sys.modules[{__name__!r}]._hit({name!r})\n")
    namespace = {}
    exec(compile(src, f"<minivit's {name}: not available while graded>", "exec"), namespace)
    return namespace[name].__code__


def _copy(fn, globals_):
    """``fn`` again, looking its global names up in ``globals_``."""
    new = types.FunctionType(fn.__code__, globals_, fn.__name__, fn.__defaults__, fn.__closure__)
    new.__kwdefaults__ = fn.__kwdefaults__
    new.__doc__, new.__qualname__ = fn.__doc__, fn.__qualname__
    return new


def _working_copies(ref, names):
    """{name: a copy of minivit's function} whose calls to the topic's other functions (by their
    module-level name, or through ``F``) reach the other copies, not the traps: the reference
    merge_heads_backward calls split_heads, attention_forward calls F.softmax_forward."""
    spaces = {}                                   # module name -> the copies' own globals
    copies = {}
    for name in names:
        fn = getattr(ref, name)
        copies[name] = _copy(fn, spaces.setdefault(fn.__module__, dict(fn.__globals__)))
    for space in spaces.values():
        space.update({n: c for n, c in copies.items() if n in space})
        if "F" in space:
            space["F"] = types.SimpleNamespace(**{**vars(space["F"]), **copies})
    return copies


def _minivit_modules():
    return [m for n, m in list(sys.modules.items())
            if (n == "minivit" or n.startswith("minivit.")) and isinstance(m, types.ModuleType)
            and not n.startswith("minivit.grading")]


def _defining_files(functions):
    """The files of minivit that hold the answer: the modules (outside the grader) that define one of
    ``functions``, the fast paths, the hint texts (level 3 is code) and the grader's own modules
    (its detectors compute variants of the reference) -> their paths relative to the folder above
    the package, e.g. ``minivit/layers/norm.py``, and their bytecode files."""
    import minivit

    root = Path(minivit.__file__).resolve().parent
    out = set()
    for path in root.rglob("*.py"):
        rel = path.relative_to(root)
        if rel.parts[0] in ("grading", "fast"):           # the grader and the hint texts; the fast paths
            hit = True
        else:
            try:
                text = path.read_text(encoding="utf-8")
            except OSError:
                continue
            hit = any(f"def {f}(" in text for f in functions)
        if hit:
            for p in (path, Path(importlib.util.cache_from_source(str(path)))):
                out.add(("minivit",) + p.relative_to(root).parts)
    return out


def arm(functions):
    """Trap every minivit implementation of ``functions`` (see the module docstring)
    -> {name: a working copy of the reference function} for the grader's swaps."""
    from minivit import ops

    functions = set(functions)
    ref = ops.reference()
    originals = _working_copies(ref, [f for f in functions if hasattr(ref, f)])
    for module in _minivit_modules():
        other = module.__name__ in OTHER_IMPLEMENTATIONS
        for attr, value in list(vars(module).items()):
            fn = value
            if not isinstance(fn, types.FunctionType) or not (fn.__module__ or "").startswith("minivit"):
                continue
            if fn.__name__ in functions or attr in functions or (other and fn.__module__ == module.__name__):
                name = fn.__name__ if fn.__name__ in functions else attr if attr in functions else fn.__name__
                fn.__code__ = _trap_code(name)
                fn.__defaults__ = fn.__kwdefaults__ = None
    sys.addaudithook(_refuse_opening(_defining_files(functions)))
    return originals


# The audit events of starting another program (subprocess, os.system, exec*, spawn*): a fresh Python
# started by the learner's code would import minivit's reference untrapped and hand back its results.
PROGRAM_EVENTS = frozenset({"subprocess.Popen", "os.system", "os.exec", "os.posix_spawn", "os.spawn", "pty.spawn"})


def _refuse_opening(blocked):
    """An audit hook refusing to open or compile the files ``blocked`` (relative paths), wherever
    they are: the installed package, or another copy of the repository on the same machine; and
    refusing to start another program (PROGRAM_EVENTS)."""
    by_name = {}
    for rel in blocked:
        by_name.setdefault(rel[-1], []).append(rel)

    def hook(event, args):
        if active[0] and event in PROGRAM_EVENTS:       # a fresh interpreter would import minivit untrapped
            reached.append(f"program {event}")
            raise ReferenceReached("starting another program is not allowed while graded")
        if not active[0] or event not in ("open", "compile") or len(args) < 2:
            return
        path = args[0] if event == "open" else args[1]
        if isinstance(path, bytes):
            path = path.decode("utf-8", "replace")
        if not isinstance(path, str) or Path(path).name not in by_name:
            return
        try:
            parts = Path(path).resolve().parts
        except Exception:
            return
        if any(parts[-len(rel):] == rel for rel in by_name[Path(path).name]):
            reached.append(f"file {'/'.join(parts[-3:])}")
            raise ReferenceReached(f"{Path(path).name} holds minivit's own code: it cannot be read while graded")
    return hook
