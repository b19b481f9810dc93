"""The texts of ``minivit.grading.hints``: one module per topic (``patch.py`` ... ``optim.py``), each a dict
``HINTS = {function: dict(approach=..., steps=..., formula=..., given=..., code=..., returns=...)}``.

* ``approach`` (level 1): what depends on what, which rule applies;
* ``steps`` (level 2): the intermediate results and their shapes;
* ``formula`` (level 3): the formula, followed by ``code``: NumPy statements run in a namespace
  holding the names listed in ``given`` (the function's inputs and the upstream gradient, plus
  ``np``, ``math``, ``erf`` and minivit's ``F``); ``returns`` names the results, in the order the
  function returns them. ``tests/test_hints.py`` runs every ``code`` on random float64 inputs and
  compares it with minivit's own function.
"""
