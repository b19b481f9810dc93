"""The notebooks' inline checks (checks.py: ``your_turn``, ``check``, ``inputs``), the scaffold steps'
small fixed inputs and reference values (steps.py) and the Your-turn solutions (solutions.py)."""
from minivit.yourturn.checks import check, inputs, your_turn  # noqa: F401
