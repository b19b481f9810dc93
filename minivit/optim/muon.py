"""Muon: momentum orthogonalized by a Newton-Schulz iteration, for the 2D weight matrices.

Muon (Jordan et al. 2024, "Muon: An optimizer for hidden layers in neural networks",
kellerjordan.github.io/posts/muon; used in the modded-nanogpt speed records) keeps SGD momentum
for each weight matrix W and steps along an *orthogonalized* momentum: with the momentum's SVD
M = U S V^T it would step along U V^T -- every singular direction moved by the same amount,
instead of the few dominant ones that a plain gradient step mostly moves. The SVD is too slow on
an accelerator, so U V^T is approximated by an odd matrix polynomial iterated a few times:

    X_0 = M / (||M||_F + eps)                           singular values now in (0, 1]
    X_{k+1} = a X_k + b (X_k X_k^T) X_k + c (X_k X_k^T)^2 X_k

Because X X^T = U S^2 U^T, one step maps X = U S V^T to U p(S) V^T with the scalar polynomial
p(s) = a s + b s^3 + c s^5 applied to each singular value: the iteration only reshapes the
singular values, never the singular vectors. (Tested exactly so, against an SVD.)

* ``QUINTIC`` (3.4445, -4.7750, 2.0315), Jordan's coefficients, chosen to raise small singular
  values fast (p'(0) = 3.4445) in 5 steps. They do **not** converge to U V^T: p(1) = 0.701, so 1
  is not a fixed point; iterated, the singular values settle in the band [m, p(m)] = [0.682, 1.134]
  (m = 0.682 is p's local minimum value, at s = 1.050; p maps the band onto itself) and keep
  moving inside it. That is deliberate: the step only needs to be roughly orthogonal.
* ``CUBIC`` (1.5, -0.5, 0): the classical Newton-Schulz iteration p(s) = (3 s - s^3) / 2. It
  converges to 1 for every s in (0, sqrt(3)), so iterated it approaches U V^T (slowly for small s).

The update of one matrix (Nesterov momentum, as in the reference implementation):

    buf = mu buf + g;   u = g + mu buf (nesterov) or buf;   O = NS(u)
    W  *= 1 - lr * weight_decay;   W -= lr * scale * O,   scale = 0.2 sqrt(max(rows, cols))

``scale`` is the rule of Liu et al. 2025 ("Muon is Scalable for LLM Training"): it gives the
update the RMS of a typical AdamW update (~0.2), so Muon can share AdamW's learning rate and
schedule -- what lets ``Muon`` drop into the trainer, which sets one ``opt.lr`` per step.
Everything that is not a 2D weight matrix inside the encoder blocks (biases, LayerNorm, class
token, position embeddings) and, as in the reference, the input embedding and the classifier
head is updated by AdamW (``minivit.optim.adamw.adamw_update``).
"""
from __future__ import annotations

import math

from minivit.backend import get_array_module
from minivit.layers.dispatch import F
from minivit.optim.base import Optimizer

QUINTIC = (3.4445, -4.7750, 2.0315)     # Jordan's coefficients: fast, but not convergent to U V^T
CUBIC = (1.5, -0.5, 0.0)                # the classical iteration: converges to U V^T


def newton_schulz(g, steps: int = 5, coeffs=QUINTIC, eps: float = 1e-7):
    """Approximately orthogonalize a matrix: U p^steps(S / (||g||_F + eps)) V^T for g = U S V^T.

    g: (m, n) float array (NumPy or CuPy)   returns: (m, n), same dtype.
    The iteration runs on the wide orientation (m <= n), so X X^T is the smaller Gram matrix.
    """
    if g.ndim != 2:
        raise ValueError(f"newton_schulz expects a 2D matrix, got shape {tuple(g.shape)}")
    xp = get_array_module(g)
    a, b, c = coeffs
    tall = g.shape[0] > g.shape[1]
    x = g.T if tall else g
    x = x / (xp.linalg.norm(x) + eps)            # Frobenius norm >= the largest singular value
    for _ in range(steps):
        gram = x @ x.T                          # (m, m) = U S^2 U^T
        poly = b * gram + c * (gram @ gram) if c else b * gram
        x = a * x + poly @ x                    # U (a S + b S^3 + c S^5) V^T
    return (x.T if tall else x).astype(g.dtype, copy=False)


def muon_update(w, g, buf, lr, momentum=0.95, nesterov=True, weight_decay=0.0, ns_steps=5, coeffs=QUINTIC):
    """One Muon step for one 2D weight matrix, in place.

    w: (m, n) weights, g: gradient, buf: momentum buffer (same shape; updated in place).
    """
    buf *= momentum
    buf += g
    u = g + momentum * buf if nesterov else buf
    o = newton_schulz(u, ns_steps, coeffs)
    if weight_decay:
        w *= 1.0 - lr * weight_decay
    w -= (lr * 0.2 * math.sqrt(max(w.shape))) * o


def default_muon_filter(name: str, param) -> bool:
    """Which parameters Muon updates: the 2D weight matrices of the encoder blocks (attention's qkv
    and output projections, the MLP's two layers); the rest go to AdamW."""
    return name.startswith("blocks.") and param.value.ndim == 2


class Muon(Optimizer):
    """Muon for the blocks' 2D weight matrices, AdamW for every other parameter.

    named_params: ``model.named_parameters()``. lr: the learning rate of both (see the module
    docstring's ``scale``). momentum, nesterov, ns_steps, coeffs: Muon's. betas, eps: AdamW's.
    weight_decay: decoupled, for every parameter with ``decay=True`` (Muon's and AdamW's).
    muon_filter(name, param) -> bool: which parameters Muon updates.

    State, keyed by parameter name as in ``minivit.optim`` (so ``state_dict`` /
    ``load_state_dict`` and checkpoints work unchanged): 'mom' for a Muon matrix, 'm' and 'v' for
    an AdamW parameter; ``t`` counts steps (AdamW's bias correction).
    """

    def __init__(self, named_params, lr=1e-3, momentum=0.95, nesterov=True, ns_steps=5, coeffs=QUINTIC,
                 betas=(0.9, 0.999), eps=1e-8, weight_decay=0.05, muon_filter=default_muon_filter):
        super().__init__(named_params, lr)
        self.momentum, self.nesterov, self.ns_steps, self.coeffs = momentum, nesterov, ns_steps, tuple(coeffs)
        self.b1, self.b2 = betas
        self.eps, self.weight_decay = eps, weight_decay
        self.muon_names = {n for n, p in self.params.items() if muon_filter(n, p)}

    def step(self):
        self._check_grads()
        self.t += 1
        for name, p in self.params.items():
            st = self.state.setdefault(name, {})
            xp = get_array_module(p.value)
            wd = self.weight_decay if p.decay else 0.0
            if name in self.muon_names:
                if "mom" not in st:
                    st["mom"] = xp.zeros_like(p.value)
                muon_update(p.value, p.grad, st["mom"], self.lr, self.momentum, self.nesterov, wd,
                            self.ns_steps, self.coeffs)
            else:
                if "m" not in st:
                    st["m"], st["v"] = xp.zeros_like(p.value), xp.zeros_like(p.value)
                F.adamw_update(p.value, p.grad, st["m"], st["v"], self.t, self.lr, self.b1, self.b2, self.eps, wd)
