"""The nine topics: one exercise file each, one grading file each (``topics/<name>.py``: its checks,
wrong variants and mistake messages)."""
from __future__ import annotations

import importlib
from dataclasses import dataclass


@dataclass(frozen=True)
class Topic:
    name: str          # what ``python -m minivit grade NAME`` takes
    file: str          # the exercise file in exercises/
    title: str
    functions: tuple   # the functions the learner writes (all are minivit functions of the same name)


TOPICS = (
    Topic("patch", "ex01_patch_embedding.py", "Patchify + patch embedding (the linear layer)",
          ("patchify_forward", "patchify_backward", "linear_forward", "linear_backward")),
    Topic("tokens", "ex02_tokens.py", "Class token + position embeddings",
          ("cls_token_forward", "cls_token_backward", "pos_embed_forward", "pos_embed_backward")),
    Topic("attention", "ex03_attention.py", "Softmax + scaled dot-product attention",
          ("softmax_forward", "softmax_backward", "attention_forward", "attention_backward")),
    Topic("multihead", "ex04_multihead.py", "Multi-head self-attention",
          ("split_heads", "merge_heads", "split_heads_backward", "merge_heads_backward",
           "mhsa_forward", "mhsa_backward")),
    Topic("layernorm", "ex05_layernorm.py", "Layer normalization",
          ("layernorm_forward", "layernorm_backward")),
    Topic("mlp", "ex06_mlp.py", "GELU + the MLP block",
          ("gelu_forward", "gelu_backward", "mlp_forward", "mlp_backward")),
    Topic("loss", "ex07_loss.py", "Softmax cross-entropy with label smoothing",
          ("cross_entropy_forward", "cross_entropy_backward")),
    Topic("block", "ex08_block.py", "The pre-norm encoder block",
          ("encoder_block_forward", "encoder_block_backward")),
    Topic("optim", "ex09_optim.py", "AdamW + the warmup-cosine schedule",
          ("adamw_update", "warmup_cosine")),
)
TOPIC_NAMES = tuple(t.name for t in TOPICS)
TOPIC_BY_NAME = {t.name: t for t in TOPICS}
EXERCISE_FUNCTIONS = tuple(f for t in TOPICS for f in t.functions)


def topic_module(name):
    """The grading module of a topic (``minivit.grading.topics.<name>``)."""
    if name not in TOPIC_BY_NAME:
        raise ValueError(f"unknown topic {name!r}; choose from {', '.join(TOPIC_NAMES)}")
    return importlib.import_module(f"{__name__}.{name}")


def topic_checks(name):
    """The list of Checks for a topic (an exception's feedback names the function that raised it:
    ``pointers.pointing``)."""
    from minivit.grading.topics.pointers import pointing
    return [pointing(c, TOPIC_BY_NAME[name].functions) for c in topic_module(name).checks()]


for _name in TOPIC_NAMES:          # every topic registers its mistakes in MISTAKES on import
    topic_module(_name)
