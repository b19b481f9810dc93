"""What every optimizer shares: its parameters by name, the learning rate, the step count and a
state (momenta, keyed by parameter name) that a checkpoint saves and loads back."""
from __future__ import annotations

import numpy as np

from minivit.backend import get_array_module, to_device, to_numpy


class Optimizer:
    """Common parts: parameter list, learning rate, state save/load."""

    def __init__(self, named_params, lr):
        self.params = dict(named_params)
        if not self.params:
            raise ValueError("optimizer got no parameters")
        self.lr = lr
        self.t = 0            # number of steps taken
        self.state = {}       # name -> dict of arrays

    def _check_grads(self):
        missing = [n for n, p in self.params.items() if p.grad is None]
        if missing:
            raise RuntimeError(f"no gradient for {missing[:3]}{'...' if len(missing) > 3 else ''}: "
                               "call model.backward(...) before optimizer.step()")

    def state_dict(self) -> dict:
        """Flat {key: NumPy array} suitable for an .npz file."""
        out = {"t": np.array(self.t), "lr": np.array(self.lr)}
        for name, st in self.state.items():
            for k, v in st.items():
                out[f"{name}/{k}"] = to_numpy(v).copy()       # a snapshot, not the live buffer
        return out

    def load_state_dict(self, d: dict):
        self.t = int(d["t"])
        self.lr = float(d["lr"])
        self.state = {}
        for key, value in d.items():
            if "/" not in key:
                continue
            name, k = key.rsplit("/", 1)
            if name not in self.params:
                raise KeyError(f"optimizer state for unknown parameter {name!r}")
            p = self.params[name].value
            if value.shape != p.shape:
                raise ValueError(f"optimizer state {key}: shape {value.shape}, parameter has {tuple(p.shape)}")
            value = np.array(to_numpy(value), dtype=p.dtype, copy=True)   # own buffers, never shared
            self.state.setdefault(name, {})[k] = to_device(value, get_array_module(p))
        return self
