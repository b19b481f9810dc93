"""From a sequence of token states to one image representation (eq. 4 and Appendix D.3).

* class token (the paper's default): y = z_L^0, the first token.
* global average pooling (GAP): y = mean over all tokens.
"""
from minivit.backend import get_array_module


def cls_pool_forward(x):
    """x: (B, T, D) -> (B, D): the class token's state, cache."""
    return x[:, 0], x.shape


def cls_pool_backward(dout, cache):
    """dout: (B, D) -> dx (B, T, D): only token 0 receives gradient."""
    xp = get_array_module(dout)
    dx = xp.zeros(cache, dtype=dout.dtype)
    dx[:, 0] = dout
    return dx


def gap_forward(x):
    """x: (B, T, D) -> (B, D): the mean over tokens, cache."""
    return x.mean(axis=1), x.shape


def gap_backward(dout, cache):
    """dout: (B, D) -> dx (B, T, D): each token gets 1/T of the gradient."""
    xp = get_array_module(dout)
    B, T, D = cache
    return xp.broadcast_to((dout / T)[:, None, :], (B, T, D)).copy()
