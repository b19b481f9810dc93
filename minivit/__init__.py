"""minivit: a Vision Transformer written from scratch in NumPy (and CuPy), every backward pass by hand.

Two levels (see DESIGN in README):

* ``minivit.layers`` — the functional core: one ``*_forward`` / ``*_backward`` pair per operation.
* ``minivit.modules`` / ``minivit.model`` — thin stateful wrappers that own parameters and call
  the functional pairs through ``minivit.ops.F`` (so a learner's implementation can be swapped in).

Everything else lives in a room named for its concern: ``data/``, ``train/``, ``optim/``, ``fast/``,
``storage/``, ``grading/``, ``yourturn/``, ``cli/`` (README: Layout; docs/architecture.md).
"""
__version__ = "0.1.0"

import importlib
import importlib.abc
import importlib.util
import sys

# Where the modules that once sat directly under minivit/ live now (issue 25). Their old names keep
# working (``import minivit.budget``, ``from minivit import tempfiles``, ``python -m minivit.stubs``):
# the old name is the same module object as the new one, imported on first use.
MOVED = {
    "augment": "data.augment",
    "bench": "fast.bench",
    "budget": "train.budget",
    "checkpoint": "storage.checkpoint",
    "cli_types": "cli.arguments",
    "commands": "cli.commands",
    "datapack": "data.pack",
    "dispatch": "layers.dispatch",
    "ema": "train.ema",
    "errors": "cli.errors",
    "evaluation": "train.evaluation",
    "fast_attention": "fast.attention",
    "fast_layers": "fast.layers",
    "finetune": "train.finetune",
    "fused": "fast.fused",
    "fused_kernels": "fast.fused.kernels",
    "fused_ops": "fast.fused.ops",
    "fused_verify": "fast.fused.verification",
    "hint_texts": "grading.topics",             # each topic's hints.py: grading/topics/<topic>/hints.py
    "hints": "grading.hints",
    "muon": "optim.muon",
    "parallel": "fast.parallel",
    "planned_run": "train.planned_run",
    "progress": "train.progress",
    "recipes": "train.recipes",
    "replan": "train.replan",
    "resize_schedule": "train.resize_schedule",
    "resume_check": "train.resume_check",
    "runfolder": "train.runfolder",
    "runstate": "train.runstate",
    "stubs": "grading.stubs",
    "tally": "train.tally",
    "tempfiles": "storage.tempfiles",
    "train_data": "train.data",
    "trainer_options": "train.options",
    "tta": "train.tta",
    "vit_config_check": "model_check",
    "vit_finetune": "model_resolution",
    "yourturn_solutions": "yourturn.solutions",
    "yourturn_steps": "yourturn.steps",
}


class MovedModules(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Finds ``minivit.OLD`` for each OLD in MOVED and hands out the module ``minivit.MOVED[OLD]``."""

    def find_spec(self, fullname, path=None, target=None):
        package, _, old = fullname.partition(".")
        if package != "minivit" or old not in MOVED:
            return None
        real = importlib.util.find_spec("minivit." + MOVED[old])
        return importlib.util.spec_from_loader(fullname, self, origin=real.origin,
                                               is_package=real.submodule_search_locations is not None)

    def create_module(self, spec):
        return importlib.import_module(self.new_name(spec.name))

    def exec_module(self, module):
        pass                                    # the module ran under its new name

    def get_code(self, fullname):               # ``python -m minivit.OLD`` runs the new module as __main__
        new = self.new_name(fullname)
        return importlib.util.find_spec(new).loader.get_code(new)

    @staticmethod
    def new_name(fullname):
        return "minivit." + MOVED[fullname.partition(".")[2]]


if not any(isinstance(f, MovedModules) for f in sys.meta_path):
    sys.meta_path.append(MovedModules())

from minivit.model import PRESETS, ViT, ViTConfig  # noqa: E402,F401
