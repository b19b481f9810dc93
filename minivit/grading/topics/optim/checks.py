"""Grading topic `optim`: AdamW and the warmup-cosine schedule: its checks, wrong variants and
mistake messages. A wrong variant is named only when it matches the learner's w, m and v (AdamW) or
every learning rate of a check (schedule) within the check's tolerance and the reference is 100x
farther (``detect.sure_mistake``)."""

import math

import numpy as np

from minivit.grading.common import MISTAKES, Check, Fail, REF, TOL32, TOL64, _fail_with, _kind, _mismatch, _rng
from minivit.grading.detect import sure_mistake
from minivit.grading.topics.diagnosis import fit_terms

MISTAKES.update({
    "not_in_place": "Not updated in place: `w = w - ...` (or `m = b1 * m + ...`) only rebinds a local name, and the "
                    "caller's array stays unchanged. Write into the arrays themselves (in-place operators, or w[...] ="
                    " ...).",
    "coupled_weight_decay": "Coupled weight decay (L2 regularization): you added weight_decay * w to the gradient, so "
                            "Adam rescales it by 1/sqrt(v_hat). AdamW decays the weights directly, outside the "
                            "adaptive step - that is what decoupled means.",
    "missing_bias_correction": "The bias correction is missing (on m, on v, or both): m and v start at zero, so "
                               "without it the first steps have the wrong size.",
    "decay_after_update": "The weight decay is applied after the Adam step, to the updated w: both the step and the "
                          "decay use the w from before this step.",
    "decay_without_lr": "The decay term is not scaled by the learning rate: the step's lr scales the decoupled decay "
                        "too.",
    "eps_inside_sqrt": "eps goes outside the square root: it is added to sqrt(v_hat), not to v_hat.",
    "eps_hardcoded": "The eps argument is not used (a constant in its place): the caller may choose another one (1e-6 "
                     "in some recipes).",
    "missing_sqrt": "The square root of v_hat is missing: v is a mean of squared gradients; its square root has the "
                    "gradient's scale, so the step is about lr in size.",
    "step_off_by_one": "The step count t is off by one: t counts from 1 (the first update is step 1).",
    "weight_decay_ignored": "weight_decay is ignored: AdamW also shrinks w by its decoupled weight decay every step.",
    "warmup_off_by_one": "Warmup off by one: `step` is 0-based and the first step should not have lr = 0; the rate "
                         "reaches base_lr at step warmup_steps - 1.",
    "cosine_progress": "The cosine's progress must count from the end of the warmup, over the steps after it.",
    "cosine_end_off_by_one": "The cosine is one step off at its end: progress must be exactly 1 (lr = min_lr) at step "
                             "= total_steps; your denominator is one step larger or smaller.",
    "min_lr_not_subtracted": "The cosine's amplitude is base_lr - min_lr: yours starts at base_lr + min_lr.",
    "min_lr_ignored": "min_lr is ignored: the cosine goes from base_lr down to min_lr.",
    "cosine_missing_half": "The factor 0.5 of the cosine is missing: the rate moves between base_lr and min_lr, not "
                           "over twice that range.",
    "linear_decay": "That decays linearly; the schedule is a cosine (see the docstring).",
    "no_clamp": "Past total_steps the rate must stay at min_lr: the progress stops at 1 (the cosine goes back up "
                "otherwise).",
})


# -- AdamW -----------------------------------------------------------------------------------------------
def _adamw_variant(kind):
    """A wrong AdamW step (w, g, m, v, t, lr, b1, b2, eps, wd) -> new (w, m, v), not in place."""
    def step(w, g, m, v, t, lr, b1=0.9, b2=0.999, eps=1e-8, wd=0.0):
        if kind == "coupled":
            g = g + wd * w
        if kind == "step_minus":
            t = t - 1
        if kind == "step_plus":
            t = t + 1
        if kind.startswith("eps_fixed"):
            eps = float(kind.split(":")[1])
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        mh = m if kind in ("no_bias_correction", "no_bc_m") else m / (1 - b1 ** t)
        vh = v if kind in ("no_bias_correction", "no_bc_v") else v / (1 - b2 ** t)
        if kind == "eps_inside":
            u = mh / np.sqrt(vh + eps)
        elif kind == "no_sqrt":
            u = mh / (vh + eps)
        else:
            u = mh / (np.sqrt(vh) + eps)
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
                  ("missing_bias_correction", "no_bc_m"), ("missing_bias_correction", "no_bc_v"),
                  ("decay_after_update", "decay_after"), ("decay_without_lr", "decay_no_lr"),
                  ("eps_inside_sqrt", "eps_inside"), ("missing_sqrt", "no_sqrt"),
                  ("eps_hardcoded", "eps_fixed:1e-8"), ("eps_hardcoded", "eps_fixed:1e-6"),
                  ("eps_hardcoded", "eps_fixed:1e-5"), ("step_off_by_one", "step_minus"),
                  ("step_off_by_one", "step_plus"), ("weight_decay_ignored", "no_decay"))


ADAMW_NEXT_STEP = ("Next step: do this step by hand for a single number (w = 1, g = 0.5, m = v = 0, t = 1) and "
                   "compare your m, v, m_hat, v_hat and new w with the docstring's formulas.")


def _w_by_parts(w_new, w_old, ref, t, hyper):
    """Which part of w's update is off, or "": the learner's new w fitted (least squares) onto the
    old w and the Adam step lr * m_hat / (sqrt(v_hat) + eps) (all of w's shape). The old w's
    coefficient should be 1 - lr * weight_decay (the decay), the step's -1."""
    lr, b1, b2, eps, wd = hyper
    _, m, v = ref
    step = lr * (m / (1 - b1 ** t)) / (np.sqrt(v / (1 - b2 ** t)) + eps)
    terms = [w_old, -step] if np.any(step) else [w_old]
    c, resid = fit_terms(w_new, terms)
    if resid > TOL64:
        return ""
    notes = []
    if len(c) > 1 and abs(c[1] - 1) > 1e-4:
        notes.append("the Adam step is missing" if abs(c[1]) < 1e-4 else f"the Adam step is scaled by {c[1]:.4g}")
    if abs(c[0] - (1 - lr * wd)) > 1e-4:
        notes.append(f"w shrinks by the factor {c[0]:.6g} (expected {1 - lr * wd:.6g} with this lr and weight_decay)")
    if not notes:
        return ""
    return f"Your new w is exactly a combination of the old w and the Adam step, but {'; '.join(notes)}."


def _adamw_run(ns, steps, shape=(5, 4), dtype=np.float64, label="adamw"):
    """Run the learner's adamw_update and the reference side by side over ``steps`` ([(g, t, hyper)])."""
    rng = _rng(label)
    w0 = rng.standard_normal(shape)
    w, m, v = w0.astype(dtype), np.zeros(shape, dtype), np.zeros(shape, dtype)
    rw, rm, rv = w0.copy(), np.zeros(shape), np.zeros(shape)
    history = [(w0.copy(), np.zeros(shape), np.zeros(shape))]
    for i, (g, t, hyper) in enumerate(steps):
        before = (w.copy(), m.copy(), v.copy())
        mine_g = g.astype(dtype)
        ns["adamw_update"](w, mine_g, m, v, t, *hyper)
        if not np.array_equal(mine_g, g.astype(dtype)):
            _fail_with("adamw_update changed its input `g` in place (only w, m and v may change).", "input_modified")
        REF.adamw_update(rw, g, rm, rv, t, *hyper)
        yield i, (w, m, v), (rw, rm, rv), before, history
        history.append((rw.copy(), rm.copy(), rv.copy()))


def _adamw_trajectory(kind, steps, w0):
    """{"w", "m", "v"} after running the wrong step ``kind`` over ``steps`` ([(g, t, hyper)]) from w0."""
    w, m, v = w0.copy(), np.zeros_like(w0), np.zeros_like(w0)
    for g, t, hyper in steps:
        w, m, v = _adamw_variant(kind)(w, g, m, v, t, *hyper)
    return {"w": w, "m": m, "v": v}


def _adamw_detect(steps, i, mine, ref, w0, unchanged):
    """The mistake whose trajectory up to step i matches the learner's (w, m, v), when sure.
    unchanged: {name: value before the step} of the arrays the step left alone (not in place?)."""
    got, want = dict(zip("wmv", mine)), dict(zip("wmv", ref))
    candidates = [(key, (lambda kind: lambda: _adamw_trajectory(kind, steps[:i + 1], w0))(kind))
                  for key, kind in ADAMW_VARIANTS] + [("not_in_place", unchanged or None)]
    return sure_mistake(got, want, candidates, TOL64)


def _adamw_check(kind):
    def run(ns):
        rng = _rng("adamw-steps-" + kind)
        shape = (5, 4)
        if kind == "first":
            steps = [(rng.standard_normal(shape), 1, (0.1, 0.9, 0.999, 1e-8, 0.0))]
        elif kind == "decay":
            steps = [(rng.standard_normal(shape), t, (0.1, 0.8, 0.99, 1e-8, 0.5)) for t in range(1, 6)]
        elif kind == "small":           # tiny and zero gradients, then eps itself varied (1e-3, 0.1)
            steps = [(np.zeros(shape) if t == 1 else 1e-6 * rng.standard_normal(shape), t,
                      (0.01, 0.9, 0.999, 1e-8, 0.1)) for t in range(1, 5)]
            steps += [(1e-2 * rng.standard_normal(shape), t, (0.01, 0.9, 0.999, 1e-3 if t < 7 else 0.1, 0.1))
                      for t in range(5, 8)]
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
            unchanged = {name: old for name, a, b, old, r_old in zip("wmv", mine, ref, before, history[-1])
                         if np.array_equal(a, old) and not np.array_equal(b, r_old)}
            # with a zero gradient only the decay moves w: an unchanged w may be a forgotten decay instead
            if unchanged and np.any(g):
                _fail_with(f"{desc}: the caller's `{next(iter(unchanged))}` did not change.", "not_in_place")
            if kind == "float32":
                for name, a in zip("wmv", mine):
                    if a.dtype != np.float32:
                        raise Fail(f"{desc}: `{name}` is no longer float32.")
            for j in (1, 2, 0):             # m and v first: w's update is built from them
                name, a, b = "wmv"[j], mine[j], ref[j]
                problem = _mismatch(name, a, b, tol)
                if problem:
                    where = f"{desc}: {problem}."
                    if kind != "float32":
                        key = _adamw_detect(steps, i, mine, ref, w0, unchanged)
                        if key:
                            _fail_with(where, key)
                        if not np.all(np.isfinite(a)) and not np.any(g):
                            raise Fail(where + " With a zero gradient m_hat = v_hat = 0: eps in the denominator "
                                       "keeps 0 / 0 away: m_hat / (sqrt(v_hat) + eps).")
                        if name == "w":
                            parts = _w_by_parts(mine[0], history[-1][0], ref, t, hyper)
                            where += f" ({'m and v are right. ' + parts if parts else 'm and v are right.'})"
                    raise Fail(f"{where}\n{ADAMW_NEXT_STEP}")
    return run


# -- warmup-cosine --------------------------------------------------------------------------------------
def _warmup_variant(kind):
    """A wrong warmup_cosine(step, total, base, warm, min_lr) -> lr."""
    def f(step, total, base, warm=0, min_lr=0.0):
        if step < warm or (kind == "warm_le" and step == warm and warm):
            if kind == "warm0":
                return base * step / warm
            if kind == "warm_plus":
                return base * (step + 1) / (warm + 1)
            return base * (step + 1) / warm
        denominator = {"progress_total": total, "progress_total2": total, "end_minus": total - warm - 1,
                       "end_plus": total - warm + 1}.get(kind, total - warm)
        progress = (step - (0 if kind == "progress_total" else warm)) / max(1, denominator)   # as the mistakes write it
        if kind != "no_clamp":
            progress = min(1.0, progress)
        lo = 0.0 if kind == "no_min" else min_lr
        amplitude = base if kind == "min_not_subtracted" else base - lo
        if kind == "linear":
            return lo + amplitude * (1 - progress)
        if kind == "no_half":
            return lo + amplitude * (1 + math.cos(math.pi * progress))
        return lo + 0.5 * amplitude * (1 + math.cos(math.pi * progress))
    return f


WARMUP_VARIANTS = (("warmup_off_by_one", "warm0"), ("warmup_off_by_one", "warm_plus"),
                   ("warmup_off_by_one", "warm_le"),
                   ("cosine_progress", "progress_total"), ("cosine_progress", "progress_total2"),
                   ("cosine_end_off_by_one", "end_minus"), ("cosine_end_off_by_one", "end_plus"),
                   ("min_lr_ignored", "no_min"), ("min_lr_not_subtracted", "min_not_subtracted"),
                   ("cosine_missing_half", "no_half"), ("linear_decay", "linear"), ("no_clamp", "no_clamp"))

SCHEDULE_ARGS = ("step", "total_steps", "base_lr", "warmup_steps", "min_lr")


def _schedule_calls(kind):
    """The (step, total_steps, base_lr, warmup_steps[, min_lr]) calls of one schedule check."""
    if kind == "warmup":
        return [(s, 100, 1e-3, 10, 1e-5) for s in range(10)] + [(s, 20, 0.5, 4) for s in range(4)]
    if kind == "cosine":
        return [(s, 100, 1e-3, 10, 1e-5) for s in range(10, 101, 3)] + [(100, 100, 1e-3, 10, 1e-5)] + \
               [(s, 20, 0.5, 4) for s in range(4, 21)]
    return ([(s, 50, 0.1, 0, 0.001) for s in (0, 1, 25, 49, 50)] + [(s, 100, 1e-3, 10, 1e-5) for s in (150, 400)]
            + [(s, 10, 0.2, 10, 0.01) for s in (9, 10, 12)] + [(3, 8, 1.0)])


def _schedule_value(ns, c):
    try:
        got = ns["warmup_cosine"](*c)
    except ZeroDivisionError as e:
        raise Fail(f"warmup_cosine{c} (step, total_steps, base_lr, warmup_steps, min_lr) divides by zero "
                   f"({e}). With warmup_steps=0 there is no warmup phase (step < 0 never holds); with "
                   "warmup_steps == total_steps there are no decay steps: the schedule's end is reached when the warmup "
                   "ends (the docstring says what the rate is then).")
    try:
        return float(got)
    except Exception:
        raise Fail(f"warmup_cosine must return a number; it returned {_kind(got)}")


def _warmup_check(kind):
    def run(ns):
        calls = _schedule_calls(kind)
        got = [_schedule_value(ns, c) for c in calls]
        want = [REF.warmup_cosine(*c) for c in calls]
        bad = [i for i, (g, w) in enumerate(zip(got, want)) if not abs(g - w) <= TOL64 * max(abs(w), 1e-12)]
        if not bad:
            return
        c = calls[bad[0]]
        call = ", ".join(f"{n}={v}" for n, v in zip(SCHEDULE_ARGS, c))
        where = f"warmup_cosine({call}) = {got[bad[0]]:.8g}, expected {want[bad[0]]:.8g}."
        candidates = [(key, (lambda vk: lambda: {i: _warmup_variant(vk)(*c) for i, c in enumerate(calls)})(vk))
                      for key, vk in WARMUP_VARIANTS]
        key = sure_mistake(dict(enumerate(got)), dict(enumerate(want)), candidates, TOL64)
        if key:
            _fail_with(where, key)
        raise Fail(f"{where} ({len(bad)} of {len(calls)} calls differ.)\nNext step: print your rate for steps "
                   "0, 1, warmup_steps - 1, warmup_steps and total_steps of a small schedule (total 10, warmup 2) "
                   "and compare them with the docstring's formulas.")
    return run


def checks():
    """This topic's checks, in the order they run."""
    return [
        Check("adamw_update: first step (t=1), in place", ("adamw_update",), 1, _adamw_check("first")),
        Check("adamw_update: 5 steps with decoupled weight decay", ("adamw_update",), 2, _adamw_check("decay")),
        Check("adamw_update: tiny and zero gradients, eps varied (where eps matters)", ("adamw_update",), 1,
              _adamw_check("small")),
        Check("adamw_update: float32 parameters stay float32", ("adamw_update",), 1, _adamw_check("float32")),
        Check("warmup_cosine: the warmup phase", ("warmup_cosine",), 1, _warmup_check("warmup")),
        Check("warmup_cosine: the cosine phase", ("warmup_cosine",), 1, _warmup_check("cosine")),
        Check("warmup_cosine: no warmup, past the end, warmup = total", ("warmup_cosine",), 1,
              _warmup_check("edges")),
    ]
