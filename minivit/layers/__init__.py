"""The functional core: one forward/backward pair per operation, no hidden state.

Every ``*_forward`` returns ``(out, cache)`` and every ``*_backward`` takes ``(dout, cache)``
and returns the gradients of the forward's inputs, in the order the forward took them.
"""
from minivit.layers.activation import gelu_backward, gelu_forward
from minivit.layers.attention import (
    attention_backward, attention_forward, merge_heads, merge_heads_backward, mhsa_backward,
    mhsa_forward, softmax_backward, softmax_forward, split_heads, split_heads_backward,
)
from minivit.layers.block import BLOCK_PARAM_NAMES, encoder_block_backward, encoder_block_forward
from minivit.layers.dropout import drop_path_backward, drop_path_forward, dropout_backward, dropout_forward
from minivit.layers.head import tanh_backward, tanh_forward
from minivit.layers.pos2d import learned_2d_pos_backward, learned_2d_pos_forward
from minivit.layers.embedding import (
    cls_token_backward, cls_token_forward, pos_embed_backward, pos_embed_forward,
    sincos_2d_position_embedding,
)
from minivit.layers.linear import linear_backward, linear_forward
from minivit.layers.loss import cross_entropy_backward, cross_entropy_forward
from minivit.layers.mlp import mlp_backward, mlp_forward
from minivit.layers.norm import layernorm_backward, layernorm_forward
from minivit.layers.patch import patchify_backward, patchify_forward, unpatchify
from minivit.layers.pool import cls_pool_backward, cls_pool_forward, gap_backward, gap_forward
from minivit.layers.pos_resize import (
    pos_resize_backward, pos_resize_forward, table_resize_backward, table_resize_forward,
)
from minivit.layers.token_drop import token_drop_backward, token_drop_forward

# The names a swapped-in implementation (e.g. a learner's exercises) may provide.
FUNCTION_NAMES = (
    "patchify_forward", "patchify_backward",
    "linear_forward", "linear_backward",
    "cls_token_forward", "cls_token_backward",
    "pos_embed_forward", "pos_embed_backward",
    "learned_2d_pos_forward", "learned_2d_pos_backward",
    "softmax_forward", "softmax_backward",
    "attention_forward", "attention_backward",
    "split_heads", "merge_heads", "split_heads_backward", "merge_heads_backward",
    "mhsa_forward", "mhsa_backward",
    "layernorm_forward", "layernorm_backward",
    "gelu_forward", "gelu_backward",
    "mlp_forward", "mlp_backward",
    "dropout_forward", "dropout_backward",
    "drop_path_forward", "drop_path_backward",
    "encoder_block_forward", "encoder_block_backward",
    "cls_pool_forward", "cls_pool_backward",
    "gap_forward", "gap_backward",
    "tanh_forward", "tanh_backward",
    "cross_entropy_forward", "cross_entropy_backward",
    # training-only pieces (issue 15): patch dropout, position tables at another resolution
    "token_drop_forward", "token_drop_backward",
    "pos_resize_forward", "pos_resize_backward",
    "table_resize_forward", "table_resize_backward",
)
