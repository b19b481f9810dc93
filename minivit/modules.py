"""Modules: thin stateful wrappers around the functional pairs.

A module owns its ``Parameter``s (a value and its gradient), keeps the cache of its last
forward, and calls the functional pair through ``ops.F``:

    y = module.forward(x)      # F.something_forward(x, params...) ; remembers the cache
    dx = module.backward(dy)   # F.something_backward(dy, cache) ; fills every param.grad

There is no autograd: a model's ``backward`` calls its modules' ``backward`` in reverse order.
"""
from __future__ import annotations

import math

import numpy as np

from minivit.backend import get_array_module, to_device, to_numpy
from minivit.ops import F


class Parameter:
    """A trainable array and its gradient.

    value: the array (NumPy or CuPy).  grad: same shape, filled by ``backward`` (None before).
    decay: whether AdamW's weight decay applies (False for biases, LayerNorm, position
    embeddings and the class token, as in common ViT practice).
    """

    def __init__(self, value, decay: bool = True):
        self.value = value
        self.grad = None
        self.decay = decay

    @property
    def shape(self):
        return self.value.shape

    def __repr__(self):
        return f"Parameter(shape={tuple(self.value.shape)}, dtype={self.value.dtype}, decay={self.decay})"


class Module:
    """Base class: finds Parameters and sub-Modules among its attributes (in definition order)."""

    training = False

    def named_parameters(self, prefix: str = ""):
        """Yield (dotted name, Parameter) for this module and its children, e.g. ``blocks.0.attn.qkv.weight``."""
        for name, attr in vars(self).items():
            if isinstance(attr, Parameter):
                yield prefix + name, attr
            elif isinstance(attr, Module):
                yield from attr.named_parameters(prefix + name + ".")
            elif isinstance(attr, (list, tuple)) and attr and all(isinstance(m, Module) for m in attr):
                for i, m in enumerate(attr):
                    yield from m.named_parameters(f"{prefix}{name}.{i}.")

    def parameters(self):
        return [p for _, p in self.named_parameters()]

    def modules(self):
        yield self
        for attr in vars(self).values():
            if isinstance(attr, Module):
                yield from attr.modules()
            elif isinstance(attr, (list, tuple)):
                for m in attr:
                    if isinstance(m, Module):
                        yield from m.modules()

    def train(self, mode: bool = True):
        for m in self.modules():
            m.training = mode
        return self

    def eval(self):
        return self.train(False)

    def zero_grad(self):
        for p in self.parameters():
            p.grad = None

    def num_parameters(self) -> int:
        return int(sum(p.value.size for p in self.parameters()))

    def state_dict(self) -> dict:
        """{name: NumPy array} of every parameter (copied to the host)."""
        return {name: to_numpy(p.value).copy() for name, p in self.named_parameters()}

    def load_state_dict(self, state: dict, strict: bool = True):
        """Copy arrays into the parameters, checking names and shapes (and keeping device and dtype)."""
        params = dict(self.named_parameters())
        missing = [n for n in params if n not in state]
        unexpected = [n for n in state if n not in params]
        if strict and (missing or unexpected):
            raise KeyError(f"state_dict does not match the model: missing {missing[:5]}{'...' if len(missing) > 5 else ''}, "
                           f"unexpected {unexpected[:5]}{'...' if len(unexpected) > 5 else ''}")
        for name, p in params.items():
            if name not in state:
                continue
            value = np.asarray(to_numpy(state[name]))
            if value.shape != p.value.shape:
                raise ValueError(f"parameter {name}: checkpoint has shape {value.shape}, model expects {tuple(p.value.shape)}")
            xp = get_array_module(p.value)
            p.value = to_device(value.astype(p.value.dtype), xp)
        return self

    def to(self, xp=None, dtype=None):
        """Move every parameter to ``xp``'s device (numpy or cupy) and/or cast it to ``dtype``."""
        for p in self.parameters():
            v = p.value
            if xp is not None:
                v = to_device(v, xp)          # handles both directions (host <-> GPU)
            if dtype is not None:
                v = v.astype(dtype)
            p.value = v
            p.grad = None
        for m in self.modules():
            m._moved(xp, dtype)
        return self

    def _moved(self, xp, dtype):
        """Hook for modules holding non-parameter arrays (e.g. fixed position embeddings)."""


# ----------------------------------------------------------------------------------- init
def xavier_uniform(rng, fan_in, fan_out, shape=None, dtype=np.float32):
    """Glorot/Xavier uniform: U(-a, a), a = sqrt(6 / (fan_in + fan_out)) (official ViT's dense init)."""
    a = math.sqrt(6.0 / (fan_in + fan_out))
    return rng.uniform(-a, a, size=shape or (fan_in, fan_out)).astype(dtype)


# -------------------------------------------------------------------------------- modules
class Linear(Module):
    """y = x W + b.   x: (..., D_in) -> (..., D_out).   W: (D_in, D_out), Xavier-uniform; b: zeros."""

    def __init__(self, d_in, d_out, rng, dtype=np.float32, zero_init=False):
        w = np.zeros((d_in, d_out), dtype) if zero_init else xavier_uniform(rng, d_in, d_out, dtype=dtype)
        self.weight = Parameter(w)
        self.bias = Parameter(np.zeros(d_out, dtype), decay=False)

    def forward(self, x):
        y, self.cache = F.linear_forward(x, self.weight.value, self.bias.value)
        return y

    def backward(self, dy):
        dx, self.weight.grad, self.bias.grad = F.linear_backward(dy, self.cache)
        return dx


class LayerNorm(Module):
    """LayerNorm over the last axis.  x: (..., D) -> (..., D).  gamma: ones, beta: zeros."""

    def __init__(self, dim, eps=1e-6, dtype=np.float32):
        self.gamma = Parameter(np.ones(dim, dtype), decay=False)
        self.beta = Parameter(np.zeros(dim, dtype), decay=False)
        self.eps = eps

    def forward(self, x):
        y, self.cache = F.layernorm_forward(x, self.gamma.value, self.beta.value, self.eps)
        return y

    def backward(self, dy):
        dx, self.gamma.grad, self.beta.grad = F.layernorm_backward(dy, self.cache)
        return dx


class GELU(Module):
    """GELU activation (tanh form by default).  Any shape."""

    def __init__(self, approximate="tanh"):
        self.approximate = approximate

    def forward(self, x):
        y, self.cache = F.gelu_forward(x, self.approximate)
        return y

    def backward(self, dy):
        return F.gelu_backward(dy, self.cache)


class Dropout(Module):
    """Inverted dropout with probability p; identity in eval mode.  Any shape."""

    def __init__(self, p=0.0):
        self.p = p

    def forward(self, x, rng=None):
        y, self.cache = F.dropout_forward(x, self.p, rng, self.training)
        return y

    def backward(self, dy):
        return F.dropout_backward(dy, self.cache)


class MLP(Module):
    """Linear(D, D_mlp) -> GELU -> Linear(D_mlp, D).   x: (B, T, D) -> (B, T, D)."""

    def __init__(self, dim, mlp_dim, rng, approximate="tanh", dtype=np.float32):
        self.fc1 = Linear(dim, mlp_dim, rng, dtype)
        self.fc2 = Linear(mlp_dim, dim, rng, dtype)
        self.approximate = approximate

    def forward(self, x):
        y, self.cache = F.mlp_forward(x, self.fc1.weight.value, self.fc1.bias.value,
                                      self.fc2.weight.value, self.fc2.bias.value, self.approximate)
        return y

    def backward(self, dy):
        dx, self.fc1.weight.grad, self.fc1.bias.grad, self.fc2.weight.grad, self.fc2.bias.grad = F.mlp_backward(dy, self.cache)
        return dx


class MultiHeadSelfAttention(Module):
    """MSA with a fused qkv projection (D -> 3D) and an output projection (D -> D).   x: (B, T, D)."""

    def __init__(self, dim, num_heads, rng, dtype=np.float32):
        if dim % num_heads:
            raise ValueError(f"width {dim} is not divisible by the number of heads {num_heads}")
        self.num_heads = num_heads
        self.qkv = Linear(dim, 3 * dim, rng, dtype)
        # Initialize q, k and v as three separate D x D Xavier matrices, as the official code does.
        self.qkv.weight.value = np.concatenate([xavier_uniform(rng, dim, dim, dtype=dtype) for _ in range(3)], axis=1)
        self.proj = Linear(dim, dim, rng, dtype)

    def forward(self, x):
        y, self.cache = F.mhsa_forward(x, self.qkv.weight.value, self.qkv.bias.value,
                                       self.proj.weight.value, self.proj.bias.value, self.num_heads)
        return y

    def backward(self, dy):
        dx, self.qkv.weight.grad, self.qkv.bias.grad, self.proj.weight.grad, self.proj.bias.grad = F.mhsa_backward(dy, self.cache)
        return dx


class EncoderBlock(Module):
    """Pre-norm encoder block, eqs. (2)-(3): z' = z + MSA(LN(z)); z = z' + MLP(LN(z')).   x: (B, T, D).

    The parameters live in the sub-modules (so their names read ``norm1.gamma``, ``attn.qkv.weight``,
    ``mlp.fc1.weight``...); the computation is one functional call, ``F.encoder_block_forward``.
    """

    def __init__(self, dim, num_heads, mlp_dim, rng, eps=1e-6, approximate="tanh",
                 dropout=0.0, drop_path=0.0, dtype=np.float32):
        self.norm1 = LayerNorm(dim, eps, dtype)
        self.attn = MultiHeadSelfAttention(dim, num_heads, rng, dtype)
        self.norm2 = LayerNorm(dim, eps, dtype)
        self.mlp = MLP(dim, mlp_dim, rng, approximate, dtype)
        self.num_heads, self.eps, self.approximate = num_heads, eps, approximate
        self.dropout, self.drop_path = dropout, drop_path

    def _param_map(self):
        """Functional parameter name -> Parameter (see layers.block.BLOCK_PARAM_NAMES)."""
        return {
            "ln1_gamma": self.norm1.gamma, "ln1_beta": self.norm1.beta,
            "w_qkv": self.attn.qkv.weight, "b_qkv": self.attn.qkv.bias,
            "w_out": self.attn.proj.weight, "b_out": self.attn.proj.bias,
            "ln2_gamma": self.norm2.gamma, "ln2_beta": self.norm2.beta,
            "w1": self.mlp.fc1.weight, "b1": self.mlp.fc1.bias,
            "w2": self.mlp.fc2.weight, "b2": self.mlp.fc2.bias,
        }

    def forward(self, x, rng=None):
        p = {name: param.value for name, param in self._param_map().items()}
        y, self.cache = F.encoder_block_forward(x, p, self.num_heads, self.eps, self.approximate,
                                                self.dropout, self.drop_path, rng, self.training)
        return y

    def backward(self, dy):
        dx, grads = F.encoder_block_backward(dy, self.cache)
        for name, param in self._param_map().items():
            param.grad = grads[name]
        return dx

