"""Topic `tokens`: its notebook's scaffold steps, the small fixed inputs (``INPUTS``) and each
step's reference value (``STEPS``), as ``minivit/yourturn/steps.py`` describes. Intermediates inside
minivit's functions are written out here: this is the solution side."""
import numpy as np

from minivit import layers as L


def _tokens():         # x (2, 3, 4) patch tokens, cls (1, 1, 4), pos (1, 4, 4), dout (2, 4, 4)
    r = np.random.default_rng(3)
    return (r.standard_normal((2, 3, 4)), r.standard_normal((1, 1, 4)), r.standard_normal((1, 4, 4)),
            r.standard_normal((2, 4, 4)))


INPUTS = {"tokens": _tokens}


STEPS = {
    "tokens_z": lambda: L.cls_token_forward(_tokens()[0], _tokens()[1])[0],
    "dcls": lambda: L.cls_token_backward(_tokens()[3], L.cls_token_forward(*_tokens()[:2])[1])[1],
    "tokens_dx": lambda: L.cls_token_backward(_tokens()[3], L.cls_token_forward(*_tokens()[:2])[1])[0],
    "dpos": lambda: L.pos_embed_backward(_tokens()[3], L.pos_embed_forward(_tokens()[3], _tokens()[2])[1])[1],
}
