"""``Pair``: a forward/backward pair graded the standard way (forward, backward, float32, finite
differences, with its mistake detectors), and the shared edge-case check."""
from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

from minivit import gradcheck
from minivit.grading.common import (Check, FD_TOL, Fail, KEY_ZERO_TOL, REF, TOL32, _as_array,
    _call_forward, _cast, _copy, _describe_args, _fail_with, _fd, _grads_tuple, _matches, _mismatch)


# ----------------------------------------------------------------------- forward/backward pairs
@dataclass
class Pair:
    """A forward/backward pair graded the standard way: forward, backward, float32, finite differences.

    cases(): list of argument tuples (float64), small first. wrt(args): the arrays inside args the
    backward returns gradients for (in order), named ``grads``. fwd_mistakes: [(key, variant(*args) -> out)];
    bwd_mistakes: [(key, variant(args, dout, ref_cache, ref_grads) -> {grad name: array})]; ``derive``:
    grad names for which each forward mistake's gradient (by finite differences) is also tried.
    """

    fwd: str
    bwd: str
    grads: tuple
    cases: object
    fd_cases: object
    wrt: object = None
    unpack: object = None                  # backward result -> list of arrays (default: _grads_tuple)
    fwd_mistakes: tuple = ()
    bwd_mistakes: tuple = ()
    derive: tuple | None = None            # None: all grads
    known_zero: object = None              # args -> {grad name: index} of exactly-zero entries

    def arrays(self, args):
        if self.wrt is None:
            return [args[0]]
        return self.wrt(args)

    def learner_grads(self, res):
        if self.unpack is not None:
            return self.unpack(self.bwd, res, self.grads)
        return _grads_tuple(self.bwd, res, self.grads)

    def ref_grads(self, res):
        if self.unpack is not None:
            return self.unpack(self.bwd, res, self.grads)
        return list(res) if isinstance(res, tuple) else [res]

    # -- detectors ------------------------------------------------------------------------
    def detect_forward(self, args, out):
        for key, variant in self.fwd_mistakes:
            try:
                with np.errstate(all="ignore"):
                    v = variant(*_copy(args))
            except Exception:
                continue
            if v is not None and _matches(out, v):
                return key
        return None

    def detect_backward(self, args, dout, ref_cache, ref_grads, grads):
        mine = dict(zip(self.grads, grads))
        for key, variant in self.bwd_mistakes:
            try:
                with np.errstate(all="ignore"):
                    v = variant(_copy(args), dout, ref_cache, dict(zip(self.grads, ref_grads)))
            except Exception:
                continue
            if v and all(_matches(mine[k], a) for k, a in v.items()):
                return key
        # wrong order of the returned gradients
        if 1 < len(grads) <= 5 and any(_mismatch(n, g, r) for n, g, r in zip(self.grads, grads, ref_grads)):
            for perm in itertools.permutations(range(len(grads))):
                if list(perm) != list(range(len(grads))) and all(
                        _matches(grads[i], ref_grads[j]) for i, j in enumerate(perm)):
                    return "grads_wrong_order"
        # the gradient of a wrong forward
        names = self.derive if self.derive is not None else self.grads
        for key, variant in self.fwd_mistakes:
            a = _copy(args)
            try:
                with np.errstate(all="ignore"):
                    v = variant(*a)
                    if v is None or np.shape(v) != np.shape(dout) or not np.all(np.isfinite(v)):
                        continue
                    arrays = dict(zip(self.grads, self.arrays(a)))
                    num = _fd(variant, a, dout, [arrays[n] for n in names], names)
            except Exception:
                continue
            if all(_matches(mine[n], num[n], 1e-5) for n in names):
                return key
        return None

    # -- checks ----------------------------------------------------------------------------
    def checks(self):
        return [
            Check(f"{self.fwd}: matches the reference (float64, {len(self.cases())} inputs)", (self.fwd,), 2,
                  self.check_forward),
            Check(f"{self.bwd}: gradients match the reference (float64, {len(self.cases())} inputs)",
                  (self.fwd, self.bwd), 2, self.check_backward),
            Check(f"{self.fwd} / {self.bwd}: float32 in, float32 out", (self.fwd, self.bwd), 1, self.check_float32),
            Check(f"{self.bwd}: agrees with finite differences of your {self.fwd}", (self.fwd, self.bwd), 1,
                  self.check_fd),
        ]

    def check_forward(self, ns):
        for args in self.cases():
            out, _ = _call_forward(ns, self.fwd, args)
            want, _ = getattr(REF, self.fwd)(*_copy(args))
            problem = _mismatch("the output", out, want)
            if problem:
                where = f"{self.fwd}({_describe_args(self.fwd, args)}): {problem}."
                key = self.detect_forward(args, out)
                if key is None and not np.all(np.isfinite(np.asarray(out, dtype=np.float64))):
                    key = "no_max_subtraction" if self.fwd in ("softmax_forward", "attention_forward") else None
                if key:
                    _fail_with(where, key)
                raise Fail(where)

    def _backward_case(self, ns, args, seed):
        out, cache = _call_forward(ns, self.fwd, args)
        want, ref_cache = getattr(REF, self.fwd)(*_copy(args))
        dout = np.random.default_rng(seed).standard_normal(np.shape(want)).astype(np.asarray(want).dtype)
        res = ns[self.bwd](dout.copy(), cache)
        grads = self.learner_grads(res)
        ref = self.ref_grads(getattr(REF, self.bwd)(dout.copy(), ref_cache))
        return out, want, dout, ref_cache, grads, ref

    def check_backward(self, ns):
        for i, args in enumerate(self.cases()):
            out, want, dout, ref_cache, grads, ref = self._backward_case(ns, args, i)
            for name, g, r in zip(self.grads, grads, ref):
                problem = _mismatch(name, g, r)
                if not problem:
                    continue
                where = f"{self.bwd} after {self.fwd}({_describe_args(self.fwd, args)}): {problem}."
                if _mismatch("out", out, want):
                    where += f" (Your {self.fwd} gives a different output for this input too: fix it first.)"
                key = self.detect_backward(args, dout, ref_cache, ref, grads)
                if key:
                    _fail_with(where, key)
                raise Fail(where)

    def check_float32(self, ns):
        args64 = self.cases()[0]
        args = _cast(args64, np.float32)
        out, cache = _call_forward(ns, self.fwd, args)
        out = _as_array("the output", out)
        up = _cast(args, np.float64)
        want, ref_cache = getattr(REF, self.fwd)(*_copy(up))
        if out.dtype != np.float32:
            _fail_with(f"{self.fwd} returned {out.dtype} for float32 inputs.", "float64_promotion")
        problem = _mismatch("the output", out, want, TOL32)
        if problem:
            raise Fail(f"{self.fwd} in float32: {problem} (see the float64 checks).")
        dout = np.random.default_rng(7).standard_normal(np.shape(want))
        grads = self.learner_grads(ns[self.bwd](dout.astype(np.float32), cache))
        ref = self.ref_grads(getattr(REF, self.bwd)(dout, ref_cache))
        for name, g, r in zip(self.grads, grads, ref):
            if g.dtype != np.float32:
                _fail_with(f"{self.bwd} returned {name} as {g.dtype} for float32 inputs.", "float64_promotion")
            problem = _mismatch(name, g, r, TOL32)
            if problem:
                raise Fail(f"{self.bwd} in float32: {problem} (see the float64 checks).")

    def check_fd(self, ns):
        for args in self.fd_cases():
            args = _copy(args)
            out, cache = _call_forward(ns, self.fwd, args)
            out = _as_array("the output", out)
            dout = np.random.default_rng(11).standard_normal(out.shape)
            grads = self.learner_grads(ns[self.bwd](dout.copy(), cache))
            fwd = ns[self.fwd]
            num = _fd(lambda *a: fwd(*a)[0], args, dout, self.arrays(args), self.grads)
            zero = self.known_zero(args) if self.known_zero else {}
            bad = []
            for name, g in zip(self.grads, grads):
                n = num[name]
                if g.shape != n.shape:
                    bad.append(f"{name} has shape {tuple(g.shape)}, the input has {tuple(n.shape)}")
                    continue
                g = g.astype(np.float64)
                if name in zero:
                    mask = np.zeros(n.shape, bool)
                    mask[zero[name]] = True
                    z = float(max(np.abs(g[mask]).max(), np.abs(n[mask]).max()))
                    if z > KEY_ZERO_TOL:
                        bad.append(f"{name}: the key part should be exactly 0, largest |value| {z:.2e}")
                    g, n = g[~mask], n[~mask]
                err = gradcheck.rel_error(g, n)
                if not err < FD_TOL:
                    bad.append(f"{name}: relative error {err:.2e} (limit {FD_TOL:.0e})")
            if bad:
                raise Fail(f"{self.bwd} disagrees with centered finite differences of your {self.fwd}("
                           f"{_describe_args(self.fwd, args)}): " + "; ".join(bad) +
                           ". The forward and the backward do not describe the same function.")



def _edge_case_check(ns, rng, op, args, grad_names, forward_what, backward_what, nonfinite_mistake):
    """Run the student's ``{op}_forward`` and ``{op}_backward`` on one edge-case input (huge scores,
    a zero-variance row...) and compare them with minivit's. ``forward_what`` / ``backward_what``
    describe the input in the failure message; a non-finite forward output is reported as the
    known mistake ``nonfinite_mistake`` (see ``MISTAKES``)."""
    out, cache = _call_forward(ns, f"{op}_forward", args)
    want, ref_cache = getattr(REF, f"{op}_forward")(*_copy(args))
    problem = _mismatch("the output", out, want)
    if problem:
        where = f"{op}_forward {forward_what}: {problem}."
        if not np.all(np.isfinite(np.asarray(out, dtype=np.float64))):
            _fail_with(where, nonfinite_mistake)
        raise Fail(where)
    dout = rng.standard_normal(want.shape)
    grads = _grads_tuple(f"{op}_backward", ns[f"{op}_backward"](dout.copy(), cache), grad_names)
    refs = getattr(REF, f"{op}_backward")(dout, ref_cache)
    refs = refs if isinstance(refs, tuple) else (refs,)
    for name, g, r in zip(grad_names, grads, refs):
        problem = _mismatch(name, g, r)
        if problem:
            raise Fail(f"{op}_backward {backward_what}: {problem}.")


