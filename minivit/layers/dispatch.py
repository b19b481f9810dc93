"""``F``: the namespace through which modules, composite layers and optimizers call the functional core.

This module holds only the (initially empty) namespace and imports nothing from minivit, so that
every layer can import it without a cycle: ``minivit.ops`` imports the layers and the optimizer
updates and fills ``F`` with them (the reference implementations); the composite layers
(attention, MLP, block) and the optimizers call their pieces through ``F``, so a swapped-in piece
(``ops.use(my_functions)``) is used inside them too. ``minivit.ops.F`` is this same object; import
it from there (``from minivit.ops import F``) everywhere outside ``minivit/layers`` and ``optim``.

Dependencies run one way:  ops -> layers -> dispatch,  ops -> dispatch.
"""
import types


class _Functions(types.SimpleNamespace):
    """A SimpleNamespace whose missing names say who fills them."""

    def __getattr__(self, name):
        raise AttributeError(f"F.{name} is not set: minivit.ops fills F when it is imported "
                             f"(import minivit does), and only with the names in ops.FUNCTION_NAMES")


F = _Functions()
