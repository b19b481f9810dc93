"""Hints for exercise 1 (topic ``patch``): patchify and the linear layer."""

HINTS = {
    "patchify_forward": dict(
        approach="""\
patchify only rearranges numbers: no arithmetic. See the image as a grid of (H/P) x (W/P) tiles,
each P x P x C; you want the tiles in row-major order, each flattened. reshape and transpose do it
without loops: the question is in which order the axes must end up.""",
        steps="""\
Split each image axis into (grid index, offset inside the patch):
  (B, H, W, C) -> (B, H/P, P, W/P, P, C)
The output order wants the two grid axes side by side, then the in-patch row, column, channel:
  (B, H/P, W/P, P, P, C) -> merge the axes: (B, N, P*P*C)
Check on a small input: out[b, 1] must equal x[b, :P, P:2*P, :].ravel().
The cache: what the backward needs to undo this (x's shape and P).""",
        formula="""\
out = x.reshape(B, H/P, P, W/P, P, C), axes (0, 1, 3, 2, 4, 5), reshaped to (B, N, P*P*C).""",
        given="x, patch_size",
        code="""\
B, H, W, C = x.shape
P = patch_size
out = x.reshape(B, H // P, P, W // P, P, C).transpose(0, 1, 3, 2, 4, 5).reshape(B, -1, P * P * C)""",
        returns=("out",)),
    "patchify_backward": dict(
        approach="""\
patchify moves every input number to exactly one place of its output and does no arithmetic. So
each entry of dx is the one entry of dout that its pixel went to: the backward undoes the move.""",
        steps="""\
Undo the forward's steps in reverse order:
  dout (B, N, P*P*C) -> (B, H/P, W/P, P, P, C) -> swap the same two axes back
  -> (B, H/P, P, W/P, P, C) -> dx (B, H, W, C)
Your forward's cache must give you H, W, C and P.""",
        formula="""\
dx = dout.reshape(B, H/P, W/P, P, P, C), axes (0, 1, 3, 2, 4, 5), reshaped to (B, H, W, C).""",
        given="x, patch_size (the forward's inputs), dout",
        code="""\
B, H, W, C = x.shape
P = patch_size
dx = dout.reshape(B, H // P, W // P, P, P, C).transpose(0, 1, 3, 2, 4, 5).reshape(B, H, W, C)""",
        returns=("dx",)),
    "linear_forward": dict(
        approach="""\
Every position (each token of each image) goes through the same matrix: one matrix product over
the last axis, and the bias added by broadcasting.""",
        steps="""\
x2 = x as (M, D_in), M the product of the leading axes; y2 = x2 @ w + b: (M, D_out);
y = y2 reshaped to (..., D_out). The backward will need x and w: keep them in the cache.""",
        formula="""\
y = x.reshape(-1, D_in) @ w + b, reshaped to x.shape[:-1] + (D_out,).""",
        given="x, w, b",
        code="""\
y = (x.reshape(-1, x.shape[-1]) @ w + b).reshape(*x.shape[:-1], w.shape[1])""",
        returns=("y",)),
    "linear_backward": dict(
        approach="""\
Write one output entry: y_mj = sum_i x_mi w_ij + b_j. Then ask, for each input entry, which
outputs it touched: x_mi touches row m of y, w_ij column j of *every* row, b_j column j of every
row. The chain rule sums the upstream gradient over everything an input touched.""",
        steps="""\
Flatten: x2 (M, D_in), dy2 (M, D_out). You need dx2 (M, D_in), dw (D_in, D_out), db (D_out,):
each is a product of dy2 with x2 or with w (or a sum of dy2), and the shapes tell you which,
with which transpose. Reshape dx2 back like x.""",
        formula="""\
dx = dy w^T,  dw = x^T dy (summed over all M rows of every image),  db = the sum of dy's rows.""",
        given="x, w, b (the forward's inputs), dy",
        code="""\
x2 = x.reshape(-1, x.shape[-1])
dy2 = dy.reshape(-1, dy.shape[-1])
dx = (dy2 @ w.T).reshape(x.shape)
dw = x2.T @ dy2
db = dy2.sum(axis=0)""",
        returns=("dx", "dw", "db")),
}
