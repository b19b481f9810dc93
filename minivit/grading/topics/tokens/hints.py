"""Hints for exercise 2 (topic ``tokens``): the class token and the position embeddings."""

HINTS = {
    "cls_token_forward": dict(
        approach="""\
No arithmetic: the output is x with one extra token in front, the same class token for every image.""",
        steps="""\
out (B, N+1, D), with x's dtype: out[:, 0] (B, D) gets cls[0, 0] (D,), broadcast over the batch;
out[:, 1:] (B, N, D) gets x. The backward needs nothing from the forward: the cache may be None.""",
        formula="""\
out = the concatenation along the token axis of cls (broadcast to (B, 1, D)) and x.""",
        given="x, cls",
        code="""\
out = np.concatenate([np.broadcast_to(cls, (x.shape[0], 1, x.shape[2])), x], axis=1)""",
        returns=("out",)),
    "cls_token_backward": dict(
        approach="""\
Positions 1..N of the output are x itself; position 0 is one cls copied into every image. A value
copied into several places receives the sum of the gradients of all its copies.""",
        steps="""\
dx (B, N, D): the part of dout at positions 1..N.
dcls (1, 1, D): the B rows dout[:, 0], summed over the batch, keeping the (1, 1, D) shape.""",
        formula="""\
dx = dout[:, 1:],  dcls = sum over b of dout[b, 0], as (1, 1, D).""",
        given="x, cls (the forward's inputs), dout",
        code="""\
dx = dout[:, 1:]
dcls = dout[:, :1].sum(axis=0, keepdims=True)""",
        returns=("dx", "dcls")),
    "pos_embed_forward": dict(
        approach="""\
An addition, with the (1, T, D) table broadcast over the batch.""",
        steps="""\
out (B, T, D) = x + pos: a new array (do not add into x in place). No cache needed.""",
        formula="""\
out = x + pos.""",
        given="x, pos",
        code="""\
out = x + pos""",
        returns=("out",)),
    "pos_embed_backward": dict(
        approach="""\
The derivative of a sum is 1 for each term. But pos was used once per image (broadcast), so, like
any value used several times, it collects the gradient of every use.""",
        steps="""\
dx (B, T, D): dout unchanged. dpos (1, T, D): dout summed over the batch axis, keeping the shape.""",
        formula="""\
dx = dout,  dpos = sum over b of dout[b], as (1, T, D).""",
        given="x, pos (the forward's inputs), dout",
        code="""\
dx = dout
dpos = dout.sum(axis=0, keepdims=True)""",
        returns=("dx", "dpos")),
}
