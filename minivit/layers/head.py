"""The classification head's optional hidden layer (paper Section 3.1, "pre-training head").

At pre-training the paper's head is an MLP with one hidden layer (the official code calls it
``pre_logits``: a Dense layer of width ``representation_size`` followed by tanh); at fine-tuning
it is a single linear layer (zero-initialized, K outputs). minivit builds the hidden layer from
a ``Linear`` module and the tanh pair below:

    y (B, D) --Linear--> (B, R) --tanh--> (B, R) --head--> logits (B, K)

This file is separate from ``activation.py`` (GELU) because tanh appears only here.
"""
from minivit.backend import get_array_module


def tanh_forward(x):
    """y = tanh(x), any shape. returns: y, cache (y itself: the derivative needs only y)."""
    xp = get_array_module(x)
    y = xp.tanh(x)
    return y, y


def tanh_backward(dout, cache):
    """dx = dout * (1 - tanh(x)^2) = dout * (1 - y^2)."""
    y = cache
    return dout * (1.0 - y * y)
