"""Whether a checkpoint can resume this run (``train --resume``): the same run, only further along.

A checkpoint resumes a Trainer only if its meta_json holds the whole training position
(``RESUME_KEYS``), the same exercise topics ran the learner's code, and the training configuration
is the one of this run (compared as this version writes it, so that a run begun before a field was
added still resumes with that field's default). Anything else is a :class:`CheckpointError` naming
the difference: a resumed run would otherwise silently not be the run it continues.
"""
from __future__ import annotations

import json

from minivit.storage.checkpoint import CheckpointError
from minivit.model import ViTConfig
from minivit.train.recipes import TrainConfig


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


# config.json's sections and the checkpoint's meta_json keys they must agree with (minivit/train/trainer.py writes both)
CONFIG_SECTIONS = {"train": "train_config", "model": "model_config", "exercises": "exercises", "plan": "plan"}


def _flat(value, prefix: str, out: dict) -> dict:
    """{'train.lr': 0.001, 'train.model.dim': 64, ...}: every leaf of a JSON value under its dotted name."""
    if isinstance(value, dict) and value:
        for k, v in value.items():
            _flat(v, f"{prefix}.{k}", out)
    else:
        out[prefix] = value
    return out


def config_differences(config: dict, meta: dict) -> list[str]:
    """The fields of a run's config.json that differ from its checkpoint's meta_json, as
    'train.lr: config.json 0.01, checkpoint 0.002' (a section the checkpoint lacks is not compared).
    The plan's re-plans (plan.horizons, plan.replans: minivit/train/budget.py) may differ in number, since
    the two files are written one after the other: only the re-plans both hold are compared."""
    diffs = []
    for section, key in CONFIG_SECTIONS.items():
        if key not in meta:
            continue
        saved, edited = meta[key], config.get(section)
        if section == "train":
            saved, edited = as_written_now(saved), as_written_now(edited) if isinstance(edited, dict) else edited
        if section == "plan" and isinstance(saved, dict) and isinstance(edited, dict):
            saved, edited = _common_replans(saved, edited)
        a, b = _flat(json.loads(json.dumps(saved)), section, {}), _flat(edited, section, {})
        for name in sorted(set(a) | set(b)):
            if a.get(name, "(absent)") != b.get(name, "(absent)"):
                diffs.append(f"{name}: config.json {b.get(name, '(absent)')}, checkpoint {a.get(name, '(absent)')}")
    return diffs


def _common_replans(saved: dict, edited: dict):
    """Two plans cut to the re-plans both hold (the later ones, and what follows from the latest, left out)."""
    lists = ("horizons", "replans")
    n = {k: min(len(saved.get(k) or []), len(edited.get(k) or [])) for k in lists}
    if all(len(saved.get(k) or []) == len(edited.get(k) or []) for k in lists):
        return saved, edited
    derived = ("steps", "evaluations")        # follow from the latest re-plan

    def cut(plan):
        return {k: (v[:n[k]] if k in lists and isinstance(v, list) else v) for k, v in plan.items() if k not in derived}

    return cut(saved), cut(edited)


def check_config_file(folder, meta: dict, ckpt_path) -> str | None:
    """--resume: refuse (CheckpointError) a config.json edited by hand, naming each field that differs
    from the checkpoint (a resumed run follows the checkpoint, so the edits would be silently lost).
    A missing or unreadable (e.g. truncated) config.json is not refused: the run rewrites it from the
    checkpoint; the notice to print is returned (None: config.json agrees)."""
    from pathlib import Path

    path = Path(folder) / "config.json"
    try:
        config = json.loads(path.read_text())
        if not isinstance(config, dict):
            raise ValueError("not a JSON object")
    except FileNotFoundError:
        return f"notice: {path} is missing; it is written again from {ckpt_path}"
    except (ValueError, UnicodeDecodeError) as e:
        return f"notice: {path} is unreadable ({e}); it is written again from {ckpt_path}"
    diffs = config_differences(config, meta)
    if diffs:
        raise CheckpointError(
            f"{path} was edited after {ckpt_path} was written ({'; '.join(diffs)}): --resume continues the "
            "checkpoint's run and would discard the edits; undo them, or start a new --out folder with the "
            "options you want")
    return None
