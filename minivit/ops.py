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

from minivit import layers, optim
from minivit.layers import dispatch

# The optimizer updates and the schedule go through F too, so the AdamW exercise plugs in as well.
OPTIM_NAMES = ("sgd_update", "adamw_update", "warmup_cosine")
FUNCTION_NAMES = layers.FUNCTION_NAMES + OPTIM_NAMES


def reference():
    """A fresh namespace with minivit's reference implementations."""
    ref = {name: getattr(layers, name) for name in layers.FUNCTION_NAMES}
    ref.update({name: getattr(optim, name) for name in OPTIM_NAMES})
    return types.SimpleNamespace(**ref)


F = dispatch.F                 # the one namespace the layers and optimizers call through, too
F.__dict__.update(reference().__dict__)


def _functions_of(impl):
    items = impl.items() if isinstance(impl, dict) else ((n, getattr(impl, n, None)) for n in FUNCTION_NAMES)
    return {n: f for n, f in items if n in FUNCTION_NAMES and callable(f)}


def install(impl):
    """Replace the functions ``impl`` provides in ``F`` (the rest keep their current value)."""
    for name, fn in _functions_of(impl).items():
        setattr(F, name, fn)


def reset():
    """Put minivit's reference implementations back into ``F``."""
    F.__dict__.clear()
    F.__dict__.update(reference().__dict__)


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
