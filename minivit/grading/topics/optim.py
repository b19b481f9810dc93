"""Grading topic `optim`: AdamW and the warmup-cosine schedule: its checks, wrong variants and
mistake messages."""

import math

import numpy as np

from minivit.grading.common import (MISTAKES, Check, Fail, REF, TOL32, TOL64, _fail_with, _kind, _matches,
    _mismatch, _rng)

MISTAKES.update({
    "not_in_place": "Not updated in place: `w = w - ...` (or `m = b1 * m + ...`) only rebinds a local name, and the "
                    "caller's array stays unchanged. Write into the arrays: w -= ..., m *= b1; m += ..., "
                    "or w[...] = ....",
    "coupled_weight_decay": "Coupled weight decay (L2 regularization): you added weight_decay * w to the gradient, "
                            "so Adam rescales it by 1/sqrt(v_hat). AdamW decays the weights directly: "
                            "w -= lr * (m_hat / (sqrt(v_hat) + eps) + weight_decay * w) - that is what decoupled means.",
    "missing_bias_correction": "The bias correction is missing: m_hat = m / (1 - b1^t), v_hat = v / (1 - b2^t). "
                               "Without it the first steps are far too small (m and v start at zero).",
    "decay_after_update": "The weight decay is applied after the Adam step, to the updated w. Decay the old w: "
                          "w -= lr * (m_hat / (sqrt(v_hat) + eps) + weight_decay * w).",
    "decay_without_lr": "The decay term is scaled by lr too: w -= lr * weight_decay * w.",
    "eps_inside_sqrt": "eps goes outside the square root: m_hat / (sqrt(v_hat) + eps).",
    "step_off_by_one": "The step count t is off by one: t starts at 1 (the first step divides by 1 - b1^1).",
    "weight_decay_ignored": "weight_decay is ignored: w -= lr * (m_hat / (sqrt(v_hat) + eps) + weight_decay * w).",
    "warmup_off_by_one": "Warmup off by one: `step` is 0-based and the first step should not have lr = 0; "
                         "lr = base_lr * (step + 1) / warmup_steps, reaching base_lr at step warmup_steps - 1.",
    "cosine_progress": "The cosine progress must count from the end of the warmup: "
                       "progress = (step - warmup_steps) / (total_steps - warmup_steps).",
    "min_lr_ignored": "min_lr is ignored: lr = min_lr + 0.5 (base_lr - min_lr) (1 + cos(pi * progress)).",
    "cosine_missing_half": "The factor 0.5 is missing: lr = min_lr + 0.5 (base_lr - min_lr) (1 + cos(pi * progress)).",
    "linear_decay": "That decays linearly; the schedule is a cosine: lr = min_lr + 0.5 (base_lr - min_lr) "
                    "(1 + cos(pi * progress)).",
    "no_clamp": "Past total_steps the rate must stay at min_lr: clamp progress at 1 (cos keeps going up otherwise).",
})


# -- AdamW -----------------------------------------------------------------------------------------------
def _adamw_variant(kind):
    def step(w, g, m, v, t, lr, b1=0.9, b2=0.999, eps=1e-8, wd=0.0):
        if kind == "coupled":
            g = g + wd * w
        if kind == "step_minus":
            t = t - 1
        if kind == "step_plus":
            t = t + 1
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        if kind == "no_bias_correction":
            mh, vh = m, v
        else:
            mh, vh = m / (1 - b1 ** t), v / (1 - b2 ** t)
        u = mh / (np.sqrt(vh + eps) if kind == "eps_inside" else np.sqrt(vh) + eps)
        if kind in ("coupled", "no_decay"):
            w = w - lr * u
        elif kind == "decay_after":
            w = (w - lr * u) * (1 - lr * wd)
        elif kind == "decay_no_lr":
            w = w - lr * u - wd * w
        else:
            w = w - lr * (u + wd * w)
        return w, m, v
    return step


ADAMW_VARIANTS = (("coupled_weight_decay", "coupled"), ("missing_bias_correction", "no_bias_correction"),
                  ("decay_after_update", "decay_after"), ("decay_without_lr", "decay_no_lr"),
                  ("eps_inside_sqrt", "eps_inside"), ("step_off_by_one", "step_minus"),
                  ("step_off_by_one", "step_plus"), ("weight_decay_ignored", "no_decay"))


def _adamw_run(ns, steps, shape=(5, 4), dtype=np.float64, label="adamw"):
    """Run the learner's adamw_update and the reference side by side over ``steps`` ([(g, t, hyper)])."""
    rng = _rng(label)
    w0 = rng.standard_normal(shape)
    w, m, v = w0.astype(dtype), np.zeros(shape, dtype), np.zeros(shape, dtype)
    rw, rm, rv = w0.copy(), np.zeros(shape), np.zeros(shape)
    history = [(w0.copy(), np.zeros(shape), np.zeros(shape))]
    for i, (g, t, hyper) in enumerate(steps):
        before = (w.copy(), m.copy(), v.copy())
        ns["adamw_update"](w, g.astype(dtype), m, v, t, *hyper)
        REF.adamw_update(rw, g, rm, rv, t, *hyper)
        yield i, (w, m, v), (rw, rm, rv), before, history
        history.append((rw.copy(), rm.copy(), rv.copy()))


def _adamw_detect(steps, i, mine, w0):
    for key, kind in ADAMW_VARIANTS:
        w, m, v = w0.copy(), np.zeros_like(w0), np.zeros_like(w0)
        with np.errstate(all="ignore"):
            for g, t, hyper in steps[:i + 1]:
                w, m, v = _adamw_variant(kind)(w, g, m, v, t, *hyper)
        if all(_matches(a, b) for a, b in zip(mine, (w, m, v))):
            return key
    return None


def _adamw_check(kind):
    def run(ns):
        rng = _rng("adamw-steps-" + kind)
        shape = (5, 4)
        if kind == "first":
            steps = [(rng.standard_normal(shape), 1, (0.1, 0.9, 0.999, 1e-8, 0.0))]
        elif kind == "decay":
            steps = [(rng.standard_normal(shape), t, (0.1, 0.8, 0.99, 1e-8, 0.5)) for t in range(1, 6)]
        elif kind == "small":
            steps = [(np.zeros(shape) if t == 1 else 1e-6 * rng.standard_normal(shape), t,
                      (0.01, 0.9, 0.999, 1e-8, 0.1)) for t in range(1, 5)]
        else:
            steps = [(rng.standard_normal(shape), t, (0.05, 0.9, 0.999, 1e-8, 0.1)) for t in range(1, 4)]
        dtype = np.float32 if kind == "float32" else np.float64
        tol = TOL32 if kind == "float32" else TOL64
        w0 = None
        for i, mine, ref, before, history in _adamw_run(ns, steps, shape, dtype, "adamw-" + kind):
            if w0 is None:
                w0 = history[0][0]
            g, t, hyper = steps[i]
            desc = (f"adamw_update step t={t} (lr={hyper[0]}, b1={hyper[1]}, b2={hyper[2]}, eps={hyper[3]}, "
                    f"weight_decay={hyper[4]}{', gradient 0' if not np.any(g) else ''})")
            for name, a, b, old, r_old in zip("wmv", mine, ref, before, history[-1]):
                if np.array_equal(a, old) and not np.array_equal(b, r_old):
                    _fail_with(f"{desc}: the caller's `{name}` did not change.", "not_in_place")
            if kind == "float32":
                for name, a in zip("wmv", mine):
                    if a.dtype != np.float32:
                        raise Fail(f"{desc}: `{name}` is no longer float32.")
            for name, a, b in zip("wmv", mine, ref):
                problem = _mismatch(name, a, b, tol)
                if problem:
                    where = f"{desc}: {problem}."
                    if kind != "float32":
                        key = _adamw_detect(steps, i, mine, w0)
                        if key:
                            _fail_with(where, key)
                        if not np.all(np.isfinite(a)) and not np.any(g):
                            raise Fail(where + " With a zero gradient m_hat = v_hat = 0: eps in the denominator "
                                       "keeps 0 / 0 away: m_hat / (sqrt(v_hat) + eps).")
                    raise Fail(where)
    return run


# -- warmup-cosine --------------------------------------------------------------------------------------
def _warmup_variant(kind):
    def f(step, total, base, warm=0, min_lr=0.0):
        if step < warm:
            if kind == "warm0":
                return base * step / warm
            if kind == "warm_plus":
                return base * (step + 1) / (warm + 1)
            return base * (step + 1) / warm
        if kind == "progress_total":
            progress = step / max(1, total)
        elif kind == "progress_total2":
            progress = (step - warm) / max(1, total)
        else:
            progress = (step - warm) / max(1, total - warm)
        if kind != "no_clamp":
            progress = min(1.0, progress)
        lo = 0.0 if kind == "no_min" else min_lr
        if kind == "linear":
            return lo + (base - lo) * (1 - progress)
        if kind == "no_half":
            return lo + (base - lo) * (1 + math.cos(math.pi * progress))
        return lo + 0.5 * (base - lo) * (1 + math.cos(math.pi * progress))
    return f


WARMUP_VARIANTS = (("warmup_off_by_one", "warm0"), ("warmup_off_by_one", "warm_plus"),
                   ("cosine_progress", "progress_total"), ("cosine_progress", "progress_total2"),
                   ("min_lr_ignored", "no_min"), ("cosine_missing_half", "no_half"), ("linear_decay", "linear"),
                   ("no_clamp", "no_clamp"))


def _warmup_check(kind):
    def run(ns):
        if kind == "warmup":
            calls = [(s, 100, 1e-3, 10, 1e-5) for s in range(10)] + [(s, 20, 0.5, 4) for s in range(4)]
        elif kind == "cosine":
            calls = [(s, 100, 1e-3, 10, 1e-5) for s in range(10, 101, 3)] + [(100, 100, 1e-3, 10, 1e-5)] + \
                    [(s, 20, 0.5, 4) for s in range(4, 21)]
        else:
            calls = ([(s, 50, 0.1, 0, 0.001) for s in (0, 1, 25, 49, 50)] + [(s, 100, 1e-3, 10, 1e-5) for s in (150, 400)]
                     + [(s, 10, 0.2, 10, 0.01) for s in (9, 10, 12)] + [(3, 8, 1.0)])
        for c in calls:
            try:
                got = ns["warmup_cosine"](*c)
            except ZeroDivisionError as e:
                raise Fail(f"warmup_cosine{c} (step, total_steps, base_lr, warmup_steps, min_lr) divides by zero "
                           f"({e}). With warmup_steps=0 there is no warmup phase (step < 0 never holds); when "
                           "warmup_steps == total_steps use max(1, total_steps - warmup_steps).")
            try:
                got = float(got)
            except Exception:
                raise Fail(f"warmup_cosine must return a number; it returned {_kind(got)}")
            want = REF.warmup_cosine(*c)
            if not abs(got - want) <= 1e-6 * max(abs(want), 1e-12):
                names = ("step", "total_steps", "base_lr", "warmup_steps", "min_lr")
                call = ", ".join(f"{n}={v}" for n, v in zip(names, c))
                where = f"warmup_cosine({call}) = {got:.8g}, expected {want:.8g}."
                for key, vk in WARMUP_VARIANTS:
                    try:
                        v = _warmup_variant(vk)(*c)
                    except ZeroDivisionError:
                        continue
                    if abs(got - v) <= 1e-6 * max(abs(v), 1e-12):
                        _fail_with(where, key)
                raise Fail(where)
    return run


def checks():
    """This topic's checks, in the order they run."""
    return [
        Check("adamw_update: first step (t=1), in place", ("adamw_update",), 1, _adamw_check("first")),
        Check("adamw_update: 5 steps with decoupled weight decay", ("adamw_update",), 2, _adamw_check("decay")),
        Check("adamw_update: tiny and zero gradients (where eps matters)", ("adamw_update",), 1,
              _adamw_check("small")),
        Check("adamw_update: float32 parameters stay float32", ("adamw_update",), 1, _adamw_check("float32")),
        Check("warmup_cosine: the warmup phase", ("warmup_cosine",), 1, _warmup_check("warmup")),
        Check("warmup_cosine: the cosine phase", ("warmup_cosine",), 1, _warmup_check("cosine")),
        Check("warmup_cosine: no warmup, past the end, warmup = total", ("warmup_cosine",), 1,
              _warmup_check("edges")),
    ]
