"""The transformer's MLP block: two linear layers with a GELU between them (eq. 3).

    MLP(x) = GELU(x W1 + b1) W2 + b2      W1: (D, D_mlp), W2: (D_mlp, D)

The pieces are called through ``F`` (``minivit.layers.dispatch``, filled by ``minivit.ops``), so a
swapped-in linear or GELU (a learner's, say) is used inside the MLP too.
"""
from minivit.layers.dispatch import F


def mlp_forward(x, w1, b1, w2, b2, approximate="tanh"):
    """x: (B, T, D)  w1: (D, M)  b1: (M,)  w2: (M, D)  b2: (D,) -> out (B, T, D), cache.

    out = GELU(x w1 + b1) w2 + b2 (the MLP of eq. 3), GELU of the form ``approximate``.

    Keeps the input's dtype (float32 in, float32 out) and does not modify its inputs.

    Derivation:
        h = F.linear_forward(x, w1, b1); a = gelu_forward(h, approximate); out = F.linear_forward(a, w2, b2).
        Keep the three caches.
    """
    h, fc1_cache = F.linear_forward(x, w1, b1)        # (B, T, D_mlp)
    a, gelu_cache = F.gelu_forward(h, approximate)
    out, fc2_cache = F.linear_forward(a, w2, b2)
    return out, (fc1_cache, gelu_cache, fc2_cache)


def mlp_backward(dout, cache):
    """dout: (B, T, D) -> dx (B, T, D), dw1 (D, M), db1 (M,), dw2 (M, D), db2 (D,).

    Keeps the dtype (float32 in, float32 out). Does not modify dout: the caller's array may be used
    elsewhere. Everything it needs comes from the cache (it may run after other forward calls). The
    weights and biases are shared by every token of every image: a parameter gradient adds up the
    contributions of all of them, in the parameter's own shape.

    Derivation:
        The three steps backwards: linear_backward (second layer), gelu_backward, linear_backward
        (first layer).
    """
    fc1_cache, gelu_cache, fc2_cache = cache
    da, dw2, db2 = F.linear_backward(dout, fc2_cache)
    dh = F.gelu_backward(da, gelu_cache)
    dx, dw1, db1 = F.linear_backward(dh, fc1_cache)
    return dx, dw1, db1, dw2, db2
