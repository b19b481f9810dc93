"""Progressive resizing: train the early steps at a lower resolution, the end at the full one.

Fewer pixels mean fewer patches: a 24x24 image in 4x4 patches is 36 tokens instead of the 64 of
a 32x32 one, so an early step costs a bit over half as much. FFCV's ResNet recipes and
"budgeted training" (Li, Yumer & Ramanan, ICLR 2020) use this; for a ViT the position embeddings
must follow the grid: the model keeps one table at the full grid and interpolates it to each
step's grid (``ViTConfig(flexible_resolution=True)``, ``minivit/layers/pos_resize.py``), so the
low-resolution steps train the same table.

A schedule is a list of stages ``(start, size)``: from the fraction ``start`` of the run's steps
on, images are resized to ``size`` x ``size`` (bilinear, ``minivit.interpolate``). The last stage
should be the model's own resolution, so the model is evaluated at the size it ended training on.

    ResizeSchedule(((0.0, 24), (0.5, 28), (0.75, 32))).size_at(step, total_steps)

The size is a pure function of (step, total_steps): nothing but the schedule itself (in the
run's configuration, JSON) and the step counter (in ``last.npz``'s meta) needs saving, and a
resumed run picks the same sizes. ``state_dict`` / ``load_state_dict`` store the stages as plain
arrays anyway, so a checkpoint can carry them like any other training state.
"""
from __future__ import annotations

import math

import numpy as np


class ResizeSchedule:
    """Training resolution per step.

    stages: ((start_fraction, size), ...) with start fractions increasing from 0.0, in [0, 1).
    patch_size: if given, every size must be divisible by it.
    """

    def __init__(self, stages, patch_size: int | None = None):
        stages = tuple((float(f), int(s)) for f, s in stages)
        if not stages or stages[0][0] != 0.0:
            raise ValueError(f"a resize schedule needs a first stage starting at 0.0, got {stages}")
        starts = [f for f, _ in stages]
        if any(b <= a for a, b in zip(starts, starts[1:])) or starts[-1] >= 1.0:
            raise ValueError(f"stage start fractions must increase and stay below 1, got {starts}")
        for _, size in stages:
            if size < 1 or (patch_size and size % patch_size):
                raise ValueError(f"size {size} is not a positive multiple of the patch size {patch_size}")
        self.stages = stages

    def size_at(self, step: int, total_steps: int) -> int:
        """The image size of step ``step`` (0-based) of a run of ``total_steps`` steps."""
        if total_steps < 1:
            raise ValueError(f"total_steps must be positive, got {total_steps}")
        size = self.stages[0][1]
        for i, (_, s) in enumerate(self.stages):
            if step >= self.first_step(i, total_steps):
                size = s
        return size

    def first_step(self, stage: int, total_steps: int) -> int:
        """The first step of stage ``stage``: the smallest step with step >= start * total_steps
        (up to float rounding: 0.7 * 10 is 7.000000000000001, and stage 0.7 of 10 steps starts at 7)."""
        return math.ceil(self.stages[stage][0] * total_steps - 1e-9)

    def step_counts(self, total_steps: int) -> dict:
        """{size: number of steps at that size} over a whole run (e.g. for a time plan)."""
        counts = {}
        bounds = [self.first_step(i, total_steps) for i in range(len(self.stages))] + [total_steps]
        for (_, size), lo, hi in zip(self.stages, bounds, bounds[1:]):
            counts[size] = counts.get(size, 0) + max(0, hi - lo)
        return counts

    def step_kinds(self) -> list:
        """The schedule's step kinds for a time budget's calibration (minivit/train/budget.py):
        [(kind, fraction of the steps), ...], one kind per size, e.g. [('24px', 0.5), ('32px', 0.5)].
        The fractions are the stages' lengths (a run's counts differ from them by a step at most)."""
        ends = [f for f, _ in self.stages[1:]] + [1.0]
        fractions: dict = {}
        for (start, size), end in zip(self.stages, ends):
            fractions[size] = fractions.get(size, 0.0) + end - start
        return [(f"{size}px", frac) for size, frac in fractions.items()]

    @staticmethod
    def size_of_kind(kind: str) -> int:
        """'24px' -> 24 (the inverse of the kinds' names in :meth:`step_kinds`)."""
        return int(kind[:-2])

    def relative_cost(self, total_steps: int, patch_size: int, full_size: int) -> float:
        """The run's token count relative to training every step at ``full_size`` (a rough cost:
        attention grows faster than the token count, so the saving is a bit larger)."""
        full = (full_size // patch_size) ** 2
        tokens = sum(n * (s // patch_size) ** 2 for s, n in self.step_counts(total_steps).items())
        return tokens / (full * total_steps)

    # -- saving ------------------------------------------------------------------------------
    def state_dict(self) -> dict:
        """{'starts': float64 (S,), 'sizes': int64 (S,)}: plain arrays for an .npz file."""
        return {"starts": np.array([f for f, _ in self.stages], dtype=np.float64),
                "sizes": np.array([s for _, s in self.stages], dtype=np.int64)}

    @classmethod
    def from_state_dict(cls, d: dict, patch_size: int | None = None) -> "ResizeSchedule":
        return cls(zip(np.asarray(d["starts"]).tolist(), np.asarray(d["sizes"]).tolist()), patch_size)

    def to_list(self) -> list:
        """[[start, size], ...], as a JSON configuration holds it."""
        return [[f, s] for f, s in self.stages]

    def __eq__(self, other):
        return isinstance(other, ResizeSchedule) and self.stages == other.stages

    def __repr__(self):
        return f"ResizeSchedule({self.stages})"
