"""``Pair``: a forward/backward pair graded the standard way (forward, backward, float32, finite
differences, with its mistake detectors), and the shared edge-case check."""
from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

from minivit import gradcheck
from minivit.grading.common import (Check, FD_TOL, Fail, KEY_ZERO_TOL, REF, TOL32, TOL64, _as_array,
    _call_backward, _call_forward, _cast, _copy, _describe_args, _fail_with, _fd, _grads_tuple, _mismatch, pointer)
from minivit.grading.detect import next_step_backward, next_step_forward, sure_mistakes, where_feedback


# ----------------------------------------------------------------------- forward/backward pairs
PAIRS = {}          # forward name -> its Pair (once its checks were built): topics.pointers asks forward_right


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

    # -- detectors (named only when sure: detect.sure_mistakes) ----------------------------
    def forward_mistakes(self, args, out, want, tol=TOL64):
        """The keys of the wrong forward variants ``out`` surely matches."""
        return sure_mistakes(out, want, [(k, lambda v=v: v(*_copy(args))) for k, v in self.fwd_mistakes], tol)

    def backward_mistakes(self, args, dout, ref_cache, ref_grads, grads, tol=TOL64):
        """The keys of the wrong backward variants ``grads`` surely matches: the listed ones, the
        gradients in another order, and the gradient (by finite differences) of each wrong forward."""
        mine, ref = dict(zip(self.grads, grads)), dict(zip(self.grads, ref_grads))
        cands = [(k, lambda v=v: v(_copy(args), dout, ref_cache, dict(ref))) for k, v in self.bwd_mistakes]
        if 1 < len(grads) <= 5:
            cands += [("grads_wrong_order", {self.grads[i]: ref_grads[j] for i, j in enumerate(perm)})
                      for perm in itertools.permutations(range(len(grads))) if list(perm) != sorted(perm)]
        names = self.derive if self.derive is not None else self.grads

        def derived(variant):
            a = _copy(args)
            v = variant(*a)
            if v is None or np.shape(v) != np.shape(dout) or not np.all(np.isfinite(v)):
                return None
            arrays = dict(zip(self.grads, self.arrays(a)))
            return _fd(variant, a, dout, [arrays[n] for n in names], names)
        cands += [(k, lambda v=v: derived(v)) for k, v in self.fwd_mistakes]
        return sure_mistakes(mine, ref, cands, tol)

    # -- checks ----------------------------------------------------------------------------
    def checks(self):
        PAIRS[self.fwd] = self
        return [
            Check(f"{self.fwd}: matches the reference (float64, {len(self.cases())} inputs)", (self.fwd,), 2,
                  self.check_forward),
            Check(f"{self.bwd}: gradients match the reference (float64, {len(self.cases())} inputs)",
                  (self.fwd, self.bwd), 2, self.check_backward),
            Check(f"{self.fwd} / {self.bwd}: float32 in, float32 out", (self.fwd, self.bwd), 1, self.check_float32),
            Check(f"{self.bwd}: agrees with finite differences of your {self.fwd}", (self.fwd, self.bwd), 1,
                  self.check_fd, needs=(self.fwd,)),
        ]

    def _call(self, args):
        return f"{self.fwd}({_describe_args(self.fwd, args)})"

    def check_forward(self, ns):
        failures = []
        for args in self.cases():
            out, _ = _call_forward(ns, self.fwd, args)
            want, _ = getattr(REF, self.fwd)(*_copy(args))
            problem = _in_context(self._call(args), _mismatch, "the output", out, want)
            if problem:
                keys = self.forward_mistakes(args, out, want)
                if not keys and not np.all(np.isfinite(np.asarray(out, dtype=np.float64))) and \
                        self.fwd in ("softmax_forward", "attention_forward"):
                    keys = ["no_max_subtraction"]
                failures.append((self._call(args), problem, keys, next_step_forward(self.fwd), self.fwd))
        _fail_on(failures)

    def _backward(self, ns, args, cache, dout):
        res = _call_backward(ns, self.bwd, dout, cache)
        return _in_context(f"{self.bwd} after {self._call(args)}", self.learner_grads, res)

    def _first_problem(self, grads, ref):
        for name, g, r in zip(self.grads, grads, ref):
            problem = _mismatch(name, g, r)
            if problem:
                return name, problem
        return None, None

    def check_backward(self, ns):
        """Every forward first, then the backwards in reverse order (as a model with several blocks
        calls them): a backward that reads state kept outside its cache gets the wrong state."""
        runs = []
        for i, args in enumerate(self.cases()):
            out, cache = _call_forward(ns, self.fwd, args)
            want, ref_cache = getattr(REF, self.fwd)(*_copy(args))
            dout = np.random.default_rng(i).standard_normal(np.shape(want)).astype(np.asarray(want).dtype)
            runs.append((args, out, cache, want, ref_cache, dout))
        failures = []
        for i in reversed(range(len(runs))):
            args, out, cache, want, ref_cache, dout = runs[i]
            interleaved = i < len(runs) - 1         # other forwards ran after this one
            try:
                grads = self._backward(ns, args, cache, dout)
                name, problem = self._first_problem(grads, self.ref_grads(getattr(REF, self.bwd)(dout.copy(), ref_cache)))
            except Exception:
                if interleaved and self._passes_alone(ns, args, dout, ref_cache):
                    _fail_with(f"{self.bwd} after {self._call(args)} and other forward calls failed "
                               "(it passes when called right after its own forward).", "state_outside_cache")
                raise
            if not problem:
                continue
            where = f"{self.bwd} after {self._call(args)}"
            if interleaved and self._passes_alone(ns, args, dout, ref_cache):
                _fail_with(f"{where}, with other forward calls in between: {problem}. Called right after its "
                           "own forward it is right.", "state_outside_cache")
            ref = self.ref_grads(getattr(REF, self.bwd)(dout.copy(), ref_cache))
            if _mismatch("out", out, want):
                # the gradients go through the learner's own (wrong) forward: the evidence is against the forward
                failures.insert(0, (where, problem, [], forward_first(self.fwd), self.fwd))
                continue
            keys = self.backward_mistakes(args, dout, ref_cache, ref, grads)
            failures.insert(0, (where, problem, keys, next_step_backward(self.bwd, name), self.bwd))
        _fail_on(failures)

    def forward_right(self, ns):
        """The learner's forward matches the reference on every input of the float64 check (else a
        failure of the backward's checks is charged to the forward: "fix it first")."""
        try:
            for args in self.cases():
                out, _ = _call_forward(ns, self.fwd, args)
                if _mismatch("out", out, getattr(REF, self.fwd)(*_copy(args))[0]):
                    return False
        except Exception:
            return False
        return True

    def _passes_alone(self, ns, args, dout, ref_cache):
        """The backward called right after its own forward matches the reference."""
        try:
            _, cache = _call_forward(ns, self.fwd, args)
            grads = self._backward(ns, args, cache, dout)
            ref = self.ref_grads(getattr(REF, self.bwd)(dout.copy(), ref_cache))
            return self._first_problem(grads, ref)[1] is None
        except Exception:
            return False

    def check_float32(self, ns):
        args64 = self.cases()[0]
        args = _cast(args64, np.float32)
        out, cache = _call_forward(ns, self.fwd, args)
        call = f"{self.fwd} in float32"
        out = _in_context(call, _as_array, "the output", out)
        up = _cast(args, np.float64)
        want, ref_cache = getattr(REF, self.fwd)(*_copy(up))
        if out.dtype != np.float32:
            _fail_with(f"{self.fwd} returned {out.dtype} for float32 inputs.", "float64_promotion", at=self.fwd)
        problem = _mismatch("the output", out, want, TOL32)
        if problem:
            raise Fail(f"{call}: {problem} (see the float64 checks).\n{pointer(self.fwd)}")
        dout = np.random.default_rng(7).standard_normal(np.shape(want))
        res = _call_backward(ns, self.bwd, dout.astype(np.float32), cache)
        try:
            grads = _in_context(f"{self.bwd} in float32", self.learner_grads, res)
        except Fail as e:                   # the backward's result is not what it must return: its fault
            raise Fail(f"{e}" + ("" if "\nstuck?" in str(e) else f"\n{pointer(self.bwd)}"), e.mistake) from None
        ref = self.ref_grads(getattr(REF, self.bwd)(dout, ref_cache))
        for name, g, r in zip(self.grads, grads, ref):
            if g.dtype != np.float32:
                _fail_with(f"{self.bwd} returned {name} as {g.dtype} for float32 inputs.", "float64_promotion",
                           at=self.bwd)
            problem = _mismatch(name, g, r, TOL32)
            if problem:
                raise Fail(f"{self.bwd} in float32: {problem} (see the float64 checks).\n{pointer(self.bwd)}")

    def check_fd(self, ns):
        for args in self.fd_cases():
            args = _copy(args)
            out, cache = _call_forward(ns, self.fwd, args)
            out = _in_context(self._call(args), _as_array, "the output", out)
            dout = np.random.default_rng(11).standard_normal(out.shape)
            grads = self._backward(ns, args, cache, dout)
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
                if name in zero:              # entries that are 0 up to rounding: compare them absolutely
                    mask = np.zeros(n.shape, bool)
                    mask[zero[name]] = True
                    z = float(np.abs(g[mask] - n[mask]).max(initial=0.0))
                    if z > KEY_ZERO_TOL and not gradcheck.rel_error(g[mask], n[mask]) < FD_TOL:
                        bad.append(f"{name}: the key part differs from finite differences by up to {z:.2e}")
                    g, n = g[~mask], n[~mask]
                err = gradcheck.rel_error(g, n)
                if not err < FD_TOL:
                    bad.append(f"{name}: relative error {err:.2e} (limit {FD_TOL:.0e})")
            if bad:
                text = (f"{self.bwd} disagrees with centered finite differences of your {self._call(args)}: "
                        + "; ".join(bad) + ". The forward and the backward do not describe the same function.")
                if not self.forward_right(ns):       # then the forward is (at least) wrong: fix it first
                    raise Fail(f"{text}\nNext step: {forward_first(self.fwd, here=False)}\n{pointer(self.fwd)}")
                raise Fail(f"{text}\nNext step: {next_step_backward(self.bwd, bad[0].split(':')[0].split(' ')[0])}"
                           f"\n{pointer(self.bwd)}")


def forward_first(fwd, here=True):
    """The next step when a backward's check fails and the learner's forward is wrong too: on this
    input (here) or on some input of its own float64 check."""
    where = "gives a different output for this input" if here else "differs from the reference on its own inputs"
    return (f"your {fwd} {where} (its own check fails): fix {fwd} first - the backward's gradients go "
            f"through what your forward computed and cached.")


def _fail_on(failures):
    """Fail with the first failure (where, problem, mistake keys, next step, function at fault) that
    names one mistake for sure, else with the first failure's "where" feedback; nothing when there is none."""
    for where, problem, keys, _, at in failures:
        if len(keys) == 1:
            _fail_with(f"{where}: {problem}.", keys[0], at=at)
    if failures:
        where, problem, keys, step, at = failures[0]
        raise Fail(where_feedback(where, problem, step, keys) + f"\n{pointer(at)}")


def _in_context(call, fn, *args):
    """fn(*args), with ``call`` (which function, which inputs) put in front of a Fail's message."""
    try:
        return fn(*args)
    except Fail as e:
        raise Fail(f"{call}: {e}", e.mistake) from None


def _edge_case_check(ns, rng, op, args, grad_names, forward_what, backward_what, nonfinite_mistake, pair=None):
    """Run the student's ``{op}_forward`` and ``{op}_backward`` on one edge-case input (huge scores,
    a zero-variance row...) and compare them with minivit's. ``forward_what`` / ``backward_what``
    describe the input in the failure message; a non-finite forward output is reported as the
    known mistake ``nonfinite_mistake`` (see ``MISTAKES``). pair: the op's Pair; a backward that
    differs while the forward fails its own float64 check is charged to the forward."""
    out, cache = _call_forward(ns, f"{op}_forward", args)
    want, ref_cache = getattr(REF, f"{op}_forward")(*_copy(args))
    problem = _mismatch("the output", out, want)
    if problem:
        where = f"{op}_forward {forward_what}: {problem}."
        if not np.all(np.isfinite(np.asarray(out, dtype=np.float64))):
            _fail_with(where, nonfinite_mistake, at=f"{op}_forward")
        raise Fail(f"{where}\n{pointer(f'{op}_forward')}")
    dout = rng.standard_normal(want.shape)
    grads = _grads_tuple(f"{op}_backward", _call_backward(ns, f"{op}_backward", dout, cache), grad_names)
    refs = getattr(REF, f"{op}_backward")(dout, ref_cache)
    refs = refs if isinstance(refs, tuple) else (refs,)
    for name, g, r in zip(grad_names, grads, refs):
        problem = _mismatch(name, g, r)
        if problem:
            if pair is not None and not pair.forward_right(ns):
                raise Fail(f"{op}_backward {backward_what}: {problem}.\nNext step: "
                           f"{forward_first(f'{op}_forward', here=False)}"
                           f"\n{pointer(f'{op}_forward')}")
            raise Fail(f"{op}_backward {backward_what}: {problem}.\n{pointer(f'{op}_backward')}")


