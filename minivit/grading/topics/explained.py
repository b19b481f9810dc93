"""A Pair whose failing backward is also explained by its parts (topics layernorm, mlp, multihead).

The engine's :class:`~minivit.grading.pair.Pair` names a mistake only when sure
(``minivit.grading.detect``). ``ExplainedPair`` adds one sentence to a failing backward's feedback,
named or not: ``explain(args, dout, ref_cache, mine, ref) -> str`` (mine, ref: {grad name: array}),
e.g. "your dx is exactly rstd*g + 1*[mean term] + 0*[variance term]: the term through the
variance is missing" (a least-squares fit onto the reference's terms, ``diagnosis.describe_terms``)
or which link of the chain breaks first. Not a topic itself.
"""
from __future__ import annotations

from dataclasses import dataclass

from minivit.grading.common import TOL64, Fail, _safe
from minivit.grading.pair import Pair
from minivit.grading.topics.parts import FORWARD_BLAMED, insert_diagnosis


def _prefer_backward(keys, backward_keys, forward_keys):
    """When one backward mistake and only the gradients of wrong forwards fit, the backward mistake:
    the learner's backward computes exactly that (e.g. a backward that skips GELU is also the
    gradient of an MLP without GELU), whatever their forward does."""
    mine = [k for k in keys if k in backward_keys]
    if len(keys) > 1 and len(mine) == 1 and all(k in forward_keys for k in keys if k not in mine):
        return mine
    return keys


@dataclass
class ExplainedPair(Pair):
    explain: object = None         # (args, dout, ref_cache, mine, ref) -> str ("" when it has nothing to say)

    def backward_mistakes(self, args, dout, ref_cache, ref_grads, grads, tol=TOL64):
        if self.explain is not None:     # an explanation must never turn a failed check into a crash
            self._why = _safe(self.explain, args, dout, ref_cache, dict(zip(self.grads, grads)),
                              dict(zip(self.grads, ref_grads))) or ""
        keys = super().backward_mistakes(args, dout, ref_cache, ref_grads, grads, tol)
        return _prefer_backward(keys, {k for k, _ in self.bwd_mistakes}, {k for k, _ in self.fwd_mistakes})

    def check_backward(self, ns):
        self._why = ""
        try:
            super().check_backward(ns)
        except Fail as e:
            why, self._why = self._why, ""
            if why and not e.mistake and FORWARD_BLAMED not in str(e):     # only for an unnamed backward failure
                raise Fail(insert_diagnosis(str(e), f"\n{why.strip()}"), e.mistake) from None
            raise
