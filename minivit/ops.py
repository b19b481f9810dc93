"""The one place modules reach the functional core through: ``ops.F``.

Modules never import ``layernorm_forward`` directly; they call ``F.layernorm_forward``.
``F`` starts out holding minivit's reference implementations (``minivit.layers``). Swapping
in another implementation of the same functions (a learner's exercises, say) changes what
every module runs, without touching the modules:

    from minivit import ops
    with ops.use(my_functions):        # a module or dict providing some of FUNCTION_NAMES
        logits = model.forward(x)      # runs my_functions where provided, reference elsewhere
"""
import contextlib
import types

from minivit import layers

F = types.SimpleNamespace(**{name: getattr(layers, name) for name in layers.FUNCTION_NAMES})


def reference():
    """A fresh namespace with minivit's reference implementations."""
    return types.SimpleNamespace(**{name: getattr(layers, name) for name in layers.FUNCTION_NAMES})


def _functions_of(impl):
    items = impl.items() if isinstance(impl, dict) else ((n, getattr(impl, n, None)) for n in layers.FUNCTION_NAMES)
    return {n: f for n, f in items if n in layers.FUNCTION_NAMES and callable(f)}


def install(impl):
    """Replace the functions ``impl`` provides in ``F`` (the rest keep their current value)."""
    for name, fn in _functions_of(impl).items():
        setattr(F, name, fn)


def reset():
    """Put minivit's reference implementations back into ``F``."""
    install(reference().__dict__)


@contextlib.contextmanager
def use(impl):
    """Temporarily run ``impl``'s functions in place of the current ones."""
    saved = dict(F.__dict__)
    install(impl)
    try:
        yield F
    finally:
        F.__dict__.clear()
        F.__dict__.update(saved)
