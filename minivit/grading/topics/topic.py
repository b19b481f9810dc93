"""What a topic is: one exercise file, the functions the learner writes in it, and the text the
stub generator (``minivit/grading/stubs.py``) puts at its top. Each topic's folder defines one
``TOPIC = Topic(...)`` in its ``__init__.py``; the list of topics is ``minivit/grading/topics/__init__.py``."""
from __future__ import annotations

import importlib
from dataclasses import dataclass, field

# Import lines that several stubs start with (a topic's IMPORTS is made of these and its own lines).
NUMPY = "import numpy as np\n\nfrom minivit.backend import get_array_module\n"
F_IMPORT = "from minivit.ops import F   # minivit's functions (with --impl exercises: yours, for the topics that pass)\n"


@dataclass(frozen=True)
class Topic:
    name: str          # what ``python -m minivit grade NAME`` takes, and the topic's folder under topics/
    file: str          # the exercise file in exercises/
    title: str
    functions: tuple   # the functions the learner writes (all are minivit functions of the same name)
    intro: str = field(default="", repr=False)     # the stub's introduction (its docstring's first paragraph)
    imports: str = field(default="", repr=False)   # the stub's import lines, right after its docstring

    def part(self, part):
        """One module of the topic's folder: ``checks`` (its checks, wrong variants and mistake messages),
        ``hints`` (``HINTS``: three levels per function) or ``steps`` (the notebook's scaffold steps)."""
        return importlib.import_module(f"minivit.grading.topics.{self.name}.{part}")
