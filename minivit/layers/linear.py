"""Linear (fully connected) layer: y = x W + b.

W has shape (D_in, D_out), as in the paper's ``x E`` and in the official Flax checkpoints,
so a row vector of features multiplies from the left. Leading axes (batch, tokens) are
flattened so the work is one big 2D matrix multiply (a single BLAS GEMM / cuBLAS call).
"""


def linear_forward(x, w, b):
    """y = x @ w + b, applied to every row of the leading axes (the patch embedding x_p E of eq. 1).

    x: (..., D_in)   w: (D_in, D_out)   b: (D_out,)
    returns: y (..., D_out), cache (what the backward needs)

    Keeps the input's dtype (float32 in, float32 out) and does not modify its inputs.

    Derivation:
        Flatten the leading axes: x.reshape(-1, D_in) @ w is one matrix multiply; reshape back.
    """
    if x.shape[-1] != w.shape[0]:
        raise ValueError(f"linear: input has {x.shape[-1]} features but the weight expects {w.shape[0]} (w: {tuple(w.shape)})")
    x2 = x.reshape(-1, x.shape[-1])          # (M, D_in), M = product of leading axes
    y = x2 @ w
    y += b
    return y.reshape(*x.shape[:-1], w.shape[1]), (x, w)


def linear_backward(dy, cache):
    """dy: (..., D_out) -> dx (..., D_in), dw (D_in, D_out), db (D_out,).

    The gradients of the loss with respect to x, w and b, given dy with respect to y.

    Keeps the dtype (float32 in, float32 out). Does not modify dy: the caller's array may be used
    elsewhere. Everything it needs comes from the cache (it may run after other forward calls). w and b
    are shared by every row of the leading axes (every token of every image): a parameter gradient adds
    up the contributions of all of them, in the parameter's own shape.

    Derivation:
        With x2 = x.reshape(-1, D_in) and dy2 = dy.reshape(-1, D_out):
        dx = dy2 @ w.T (reshaped like x), dw = x2.T @ dy2, db = dy2.sum(axis=0).
        dw sums over every leading axis (batch *and* tokens): each position used the same W.
    """
    x, w = cache
    dy2 = dy.reshape(-1, dy.shape[-1])       # (M, D_out)
    x2 = x.reshape(-1, x.shape[-1])          # (M, D_in)
    dx = (dy2 @ w.T).reshape(x.shape)
    dw = x2.T @ dy2
    db = dy2.sum(axis=0)
    return dx, dw, db
