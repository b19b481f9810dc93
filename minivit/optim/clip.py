"""Gradient clipping by the global norm: every gradient scaled so that the L2 norm of all of them
together is at most ``max_norm`` (``clip_grad_norm``), after the backward and before the optimizer step."""
from __future__ import annotations

import math

import numpy as np

from minivit.backend import get_array_module


def _grad_square_sum(params, xp):
    """sum over all parameters of sum(grad^2): a 0-d float64 array on the device."""
    total = xp.zeros((), dtype=np.float64)
    for p in params:
        total += xp.vdot(p.grad, p.grad)      # sum of squares without a temporary array
    return total


def global_grad_norm(params) -> float:
    """sqrt(sum over all parameters of sum(grad^2)), accumulated on the device in float64."""
    params = list(params)
    total = _grad_square_sum(params, get_array_module(params[0].grad))
    return math.sqrt(float(total))            # one device-to-host transfer


def clip_grad_norm(params, max_norm: float) -> float:
    """Scale every gradient by min(1, max_norm / global_norm). Returns the norm before clipping
    (on a GPU a 0-d device array: the scale is computed there, so the step never waits for the GPU)."""
    params = list(params)
    xp = get_array_module(params[0].grad)
    if xp is not np and max_norm:
        norm = xp.sqrt(_grad_square_sum(params, xp))
        scale = xp.where(norm > max_norm, max_norm / (norm + 1e-6), 1.0)
        for p in params:
            p.grad *= scale.astype(p.grad.dtype)
        return norm
    norm = global_grad_norm(params)
    if max_norm and norm > max_norm:
        scale = max_norm / (norm + 1e-6)
        for p in params:
            p.grad *= scale
    return norm
