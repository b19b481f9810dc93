"""Exercise files that do none of the maths, for the tests of "no points without the maths".

    from do_nothing import write_do_nothing, KINDS
    write_do_nothing(folder, "zeros")      # every topic's file

Kinds: ``zeros`` (every forward returns zeros and caches its inputs, every backward returns zeros
shaped like them), ``identity`` (forwards return their first input, backwards return ``dout``
where the shape fits), ``inputs`` (backwards return the cached inputs themselves) and ``todo``
(every function raises NotImplementedError, as the stubs do). The optimizer's functions do the
same: nothing (``adamw_update`` leaves the arrays alone; ``warmup_cosine`` returns 0, the base
rate or the step).
"""
from __future__ import annotations

from pathlib import Path

from minivit.grading import TOPICS

KINDS = ("zeros", "identity", "inputs", "todo")

_HELPERS = '''
import numpy as np

KIND = {kind!r}


def _like(a, dout=None):
    if KIND == "zeros":
        return np.zeros_like(a)
    if KIND == "identity" and dout is not None and np.shape(dout) == np.shape(a):
        return dout
    return a


def _forward(*args, **kwargs):
    if KIND == "todo":
        raise NotImplementedError
    x = args[0]
    return _like(x), args


def _backward(dout, cache):
    if KIND == "todo":
        raise NotImplementedError
    parts = cache if isinstance(cache, tuple) else (cache,)
    arrays = [_like(a, dout) for a in parts if isinstance(a, np.ndarray)]
    dicts = [{{k: _like(v, dout) for k, v in d.items()}} for d in parts if isinstance(d, dict)]
    if dicts:
        return arrays[0], dicts[0]
    return arrays[0] if len(arrays) == 1 else tuple(arrays)


def _plain(x, *args, **kwargs):
    if KIND == "todo":
        raise NotImplementedError
    return _like(x)
'''


def _function(name):
    if name.endswith("_forward"):
        return f"def {name}(*args, **kwargs):\n    return _forward(*args, **kwargs)\n"
    if name.endswith("_backward") and name not in ("split_heads_backward", "merge_heads_backward"):
        return f"def {name}(dout, cache):\n    return _backward(dout, cache)\n"
    if name == "adamw_update":
        return ("def adamw_update(w, g, m, v, t, lr, b1=0.9, b2=0.999, eps=1e-8, weight_decay=0.0):\n"
                "    if KIND == 'todo':\n        raise NotImplementedError\n"
                "    if KIND == 'zeros':\n        w[...] = 0\n")
    if name == "warmup_cosine":
        return ("def warmup_cosine(step, total_steps, base_lr, warmup_steps=0, min_lr=0.0):\n"
                "    if KIND == 'todo':\n        raise NotImplementedError\n"
                "    return {'zeros': 0.0, 'identity': base_lr, 'inputs': float(step)}[KIND]\n")
    return f"def {name}(x, *args, **kwargs):\n    return _plain(x, *args, **kwargs)\n"


def write_do_nothing(folder, kind, topics=None):
    """Write every topic's exercise file (or those of ``topics``) doing nothing the ``kind`` way."""
    assert kind in KINDS, kind
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for t in TOPICS:
        if topics and t.name not in topics:
            continue
        src = _HELPERS.format(kind=kind) + "\n\n" + "\n\n".join(_function(f) for f in t.functions)
        (folder / t.file).write_text(src)
    return folder
