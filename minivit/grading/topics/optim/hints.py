"""Hints for exercise 9 (topic ``optim``): AdamW and the warmup-cosine schedule."""

HINTS = {
    "adamw_update": dict(
        approach="""\
Adam's two moment estimates, their bias correction, the step; the weight decay is decoupled: it
shrinks w directly and never enters m and v. Everything happens in place, on the caller's arrays.""",
        steps="""\
m: the moving average of g, v: of g^2, both w's shape, updated in place (m *= b1; m += ...).
m_hat = m / (1 - b1^t), v_hat = v / (1 - b2^t), t starting at 1 (so at t = 1, m_hat = g).
The step: lr * m_hat / (sqrt(v_hat) + eps); the decay: lr * weight_decay * w (the old w).
In place: w -= ...; `w = w - ...` only rebinds a local name and the caller never sees it.""",
        formula="""\
m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2;
w -= lr * (m_hat / (sqrt(v_hat) + eps) + weight_decay * w).""",
        given="w, g, m, v, t, lr, b1, b2, eps, weight_decay (the arrays before the step)",
        code="""\
m_new = b1 * m + (1 - b1) * g
v_new = b2 * v + (1 - b2) * g * g
m_hat = m_new / (1 - b1 ** t)
v_hat = v_new / (1 - b2 ** t)
w_new = w - lr * (m_hat / (np.sqrt(v_hat) + eps) + weight_decay * w)""",
        returns=("w_new", "m_new", "v_new")),
    "warmup_cosine": dict(
        approach="""\
A piecewise function of the step number: a linear ramp up to base_lr, then half a cosine from
base_lr down to min_lr, then min_lr.""",
        steps="""\
step is 0-based. Warmup, step < warmup_steps: base_lr * (step + 1) / warmup_steps (the first step
is not 0). After it: progress = (step - warmup_steps) / (total_steps - warmup_steps), in [0, 1]:
clamp it at 1 past the end; with no decay steps (warmup_steps == total_steps) it is 1 at once.
lr = min_lr + 0.5 (base_lr - min_lr) (1 + cos(pi * progress)): base_lr at 0, min_lr at 1.""",
        formula="""\
lr = base_lr (step + 1) / warmup_steps during warmup, else
min_lr + 0.5 (base_lr - min_lr) (1 + cos(pi * progress)), progress = min(1, (step - warmup_steps) / (total_steps - warmup_steps))
(progress = 1 when total_steps <= warmup_steps).""",
        given="step, total_steps, base_lr, warmup_steps, min_lr",
        code="""\
decay_steps = total_steps - warmup_steps
progress = min(1.0, (step - warmup_steps) / decay_steps) if decay_steps > 0 else 1.0
cosine = min_lr + 0.5 * (base_lr - min_lr) * (1 + math.cos(math.pi * progress))
lr = base_lr * (step + 1) / warmup_steps if step < warmup_steps else cosine""",
        returns=("lr",)),
}
