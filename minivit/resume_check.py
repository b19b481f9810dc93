"""Whether a checkpoint can resume this run (``train --resume``): the same run, only further along.

A checkpoint resumes a Trainer only if its meta_json holds the whole training position
(``RESUME_KEYS``), the same exercise topics ran the learner's code, and the training configuration
is the one of this run (compared as this version writes it, so that a run begun before a field was
added still resumes with that field's default). Anything else is a :class:`CheckpointError` naming
the difference: a resumed run would otherwise silently not be the run it continues.
"""
from __future__ import annotations

import json

from minivit.checkpoint import CheckpointError
from minivit.model import ViTConfig
from minivit.recipes import TrainConfig


# What a checkpoint's meta_json must hold for --resume (Trainer._meta writes them).
RESUME_KEYS = ("train_config", "epoch", "step_in_epoch", "global_step", "partial", "history", "best_acc", "elapsed")


def as_written_now(train_config: dict) -> dict:
    """A training configuration as this version writes it (JSON: tuples -> lists): fields added since
    a run began (e.g. ema_decay, a model's token_drop) take their defaults, so an older run resumes."""
    d = TrainConfig.from_dict(train_config).to_dict()
    try:
        d["model"] = ViTConfig.from_dict(d["model"]).to_dict()
    except (TypeError, ValueError):          # not a valid model configuration: compared as it is
        pass
    return json.loads(json.dumps(d))


def yours_topics(exercises):
    """The topics running the learner's code, from a run's ``exercises`` record (None: none)."""
    return sorted(t for t, who in ((exercises or {}).get("topics") or {}).items() if who == "yours")



def check_resumable(path, meta: dict, cfg: TrainConfig, exercises) -> None:
    """Raise CheckpointError unless checkpoint ``path`` (its ``meta``) continues a run of ``cfg`` with
    the learner's code for the same topics (``exercises``: the Trainer's record, None: none)."""
    missing = [k for k in RESUME_KEYS if k not in meta]
    if missing:
        raise CheckpointError(f"{path}: cannot resume from it: meta_json lacks {missing} "
                              "(not a complete minivit training checkpoint)")
    if "exercises" in meta and yours_topics(meta["exercises"]) != yours_topics(exercises):
        raise CheckpointError(
            f"{path} was trained with your code for {', '.join(yours_topics(meta['exercises'])) or 'no topic'} "
            f"(minivit's for the rest), now it would be {', '.join(yours_topics(exercises)) or 'no topic'}: "
            "the run would switch code midway; resume with the same topics passing, or start a new --out folder")
    saved = as_written_now(meta["train_config"])        # an older run lacks the newer (default) fields
    now = as_written_now(cfg.to_dict())
    if saved != now:
        diff = {k: (saved.get(k), v) for k, v in now.items() if saved.get(k) != v}
        raise CheckpointError(f"{path} was trained with a different configuration {diff} (saved, now); "
                              "resume with the same options, or start a new --out folder")
