"""Training: the Trainer (trainer.py) and what it is made of — recipes, the time budget and its plan,
checkpoints and the run folder, progress, evaluation, the opt-in options (EMA, TTA, resizing)."""
# first: without /proc, the import time of duration.py stands in for the process's start
from minivit.train.duration import process_started  # noqa: F401
from minivit.train.data import augment_config  # noqa: F401
from minivit.train.evaluation import evaluate  # noqa: F401
from minivit.train.recipes import RECIPES, TrainConfig, recipe  # noqa: F401
from minivit.train.trainer import Trainer  # noqa: F401
