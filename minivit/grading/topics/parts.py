"""Diagnosing a gradient by its parts (topics patch, tokens, attention).

Mistakes are named by the engine's rule (``detect.sure_mistakes``: only when sure). When none is
named, :class:`PartsPair` adds the topic's diagnosis to the feedback: a least-squares fit of the
learner's gradient onto the reference's separate terms (:func:`fit_terms`) says which term is
missing, off in sign or in scale (:func:`describe_fit`), or which link of the chain breaks first.
"""
from __future__ import annotations

from dataclasses import dataclass

from minivit.grading.common import TOL64, Fail, _safe
from minivit.grading.detect import sure_mistakes
from minivit.grading.pair import Pair
from minivit.grading.topics.diagnosis import fit_terms as _fit_list


def fit_terms(got, terms):
    """Least-squares fit of ``got`` onto named terms (all of got's shape): the one solver of
    :func:`minivit.grading.topics.diagnosis.fit_terms`, by name.

    returns: ({term name: coefficient}, relative residual |got - fit| / |got|).
    """
    names = list(terms)
    coef, resid = _fit_list(got, [terms[n] for n in names])
    return dict(zip(names, coef.tolist())), resid


def describe_fit(grad, coefs, expected, resid, tol=1e-6):
    """One sentence saying which term of ``grad`` is missing, off in sign or in scale (or '' when the
    fit does not explain the result). coefs/expected: {term: coefficient}."""
    if resid > tol:
        return ""
    off = []
    for n, c in coefs.items():
        e = expected.get(n, 0.0)
        if abs(c - e) <= 1e-6 * max(1.0, abs(e)):
            continue
        if e == 0:
            off.append(f"the term [{n}] should not be there")
        elif abs(c) <= 1e-6:
            off.append(f"the term [{n}] is missing")
        elif abs(c + e) <= 1e-6 * abs(e):
            off.append(f"the term [{n}] has the wrong sign")
        else:
            off.append(f"the term [{n}] is scaled by {c / e:.4g} (expected 1x)")
    if not off:
        return ""
    return f" Your {grad} is exactly a combination of the right gradient's terms, but {'; '.join(off)}."


@dataclass
class PartsPair(Pair):
    """A Pair whose unnamed gradient failures also say which part of the gradient is off.

    explain(args, dout, ref_cache, ref, mine) -> str: the diagnosis by parts for one failing input
    (ref, mine: {grad name: array}); its sentence goes before the feedback's "Next step" line.
    learner_variants(args, dout, ref, mine) -> [(key, {grad name: array})]: wrong variants that
    depend on the learner's result too (e.g. "a rearrangement of dout"), judged by the same rule.
    Backward variants (bwd_mistakes) may give only the gradients their mistake changes.
    """

    explain: object = None
    learner_variants: object = None
    learner_fwd: object = None          # (args, out, want) -> [(key, out variant)], tried when nothing else fits

    def __post_init__(self):
        """Complete every backward variant with the reference's other gradients: a variant is then
        named only when the learner's other gradients are right too (one mistake, for sure)."""
        def full(variant):
            def complete(args, dout, ref_cache, ref):
                v = variant(args, dout, ref_cache, ref)
                return {**ref, **v} if v else None
            return complete
        self.bwd_mistakes = tuple((key, full(v)) for key, v in self.bwd_mistakes)

    def checks(self):
        """The Pair's checks; float32 in, float32 out grades the forward (where dtypes get promoted)."""
        out = super().checks()
        for c in out:
            if "float32 in, float32 out" in c.name:
                c.function = self.fwd
        return out

    def forward_mistakes(self, args, out, want, tol=TOL64):
        """The listed forward variants; when none fits, the learner-dependent ones (``learner_fwd``)."""
        keys = super().forward_mistakes(args, out, want, tol)
        if not keys and self.learner_fwd:
            keys = sure_mistakes(out, want, _safe(self.learner_fwd, args, out, want) or [], tol)
        return keys

    def backward_mistakes(self, args, dout, ref_cache, ref_grads, grads, tol=TOL64):
        keys = super().backward_mistakes(args, dout, ref_cache, ref_grads, grads, tol)
        ref, mine = dict(zip(self.grads, ref_grads)), dict(zip(self.grads, grads))
        if self.learner_variants:
            more = _safe(self.learner_variants, args, dout, ref, mine) or []
            keys = list(dict.fromkeys(list(keys) + sure_mistakes(mine, ref, more, tol)))
        self._hint = (_safe(self.explain, args, dout, ref_cache, ref, mine) or "") if self.explain else ""
        return keys

    def check_backward(self, ns):
        self._hint = ""
        try:
            super().check_backward(ns)
        except Fail as e:
            if e.mistake or not self._hint or FORWARD_BLAMED in str(e):
                raise
            raise Fail(insert_diagnosis(str(e), self._hint)) from None


FORWARD_BLAMED = "(its own check fails)"       # pair.forward_first: the backward's check blames the forward


def insert_diagnosis(text, diagnosis):
    """A failed check's text with a diagnosis by parts before its "Next step" / hint pointer lines."""
    ends = [i for i in (text.find("\nNext step:"), text.find("\nstuck?")) if i >= 0]
    at = min(ends) if ends else len(text)
    return text[:at] + diagnosis + text[at:]
