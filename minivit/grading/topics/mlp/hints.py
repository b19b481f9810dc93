"""Hints for exercise 6 (topic ``mlp``): GELU and the MLP block."""

HINTS = {
    "gelu_forward": dict(
        approach="""\
An elementwise function of x, in two forms chosen by `approximate`: 'tanh' (the ViT default) and
'none' (exact, with erf). Write both; anything else is a ValueError. np.tanh is safe for large |x|.""",
        steps="""\
tanh form: u = c (x + 0.044715 x^3) with c = math.sqrt(2 / math.pi); t = tanh(u); y = 0.5 x (1 + t).
exact form: Phi = 0.5 (1 + erf(x / sqrt(2))) (erf is imported in the exercise file); y = x Phi.
All the same shape as x. The cache: x, t (or Phi) and the form, for the backward.""",
        formula="""\
'tanh': y = 0.5 x (1 + tanh(c (x + 0.044715 x^3)));  'none': y = x Phi(x).""",
        given="x, approximate",
        code="""\
c = math.sqrt(2 / math.pi)
t = np.tanh(c * (x + 0.044715 * x * x * x))
Phi = 0.5 * (1 + erf(x / math.sqrt(2)))
y = 0.5 * x * (1 + t) if approximate == "tanh" else x * Phi""",
        returns=("y",)),
    "gelu_backward": dict(
        approach="""\
y = x * f(x), with f = 0.5 (1 + tanh(u(x))) or f = Phi(x): the product rule, and for the tanh form
the chain rule through tanh(u(x)). Then multiply by dout.""",
        steps="""\
Product rule: dy/dx = f(x) + x f'(x).
tanh form: t = tanh(u); dt/du = 1 - t^2; du/dx = c (1 + 3 * 0.044715 x^2); f' = 0.5 dt/du du/dx.
exact form: f' = phi(x), the standard normal density exp(-x^2 / 2) / sqrt(2 pi).
Every intermediate has x's shape.""",
        formula="""\
'tanh': dx = dout * (0.5 (1 + t) + 0.5 x (1 - t^2) c (1 + 3 * 0.044715 x^2)),
'none': dx = dout * (Phi(x) + x phi(x)).""",
        given="x, approximate (the forward's inputs), dout",
        code="""\
c = math.sqrt(2 / math.pi)
t = np.tanh(c * (x + 0.044715 * x * x * x))
Phi = 0.5 * (1 + erf(x / math.sqrt(2)))
phi = np.exp(-0.5 * x * x) / math.sqrt(2 * math.pi)
dtanh = 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * c * (1 + 3 * 0.044715 * x * x)
dx = dout * (dtanh if approximate == "tanh" else Phi + x * phi)""",
        returns=("dx",)),
    "mlp_forward": dict(
        approach="""\
Compose: linear, GELU, linear (F.linear_forward, and your gelu_forward or F.gelu_forward), passing
`approximate` on to the GELU.""",
        steps="""\
h = linear(x, w1, b1): (B, T, M); a = gelu(h, approximate): (B, T, M); out = linear(a, w2, b2):
(B, T, D). Keep the three caches.""",
        formula="""\
out = GELU(x w1 + b1) w2 + b2.""",
        given="x, w1, b1, w2, b2, approximate",
        code="""\
h, _ = F.linear_forward(x, w1, b1)
a, _ = F.gelu_forward(h, approximate)
out, _ = F.linear_forward(a, w2, b2)""",
        returns=("out",)),
    "mlp_backward": dict(
        approach="""\
The forward's three steps in reverse order, each with its own backward, handing each one the cache
of its forward step.""",
        steps="""\
second linear backward: da (B, T, M), dw2 (M, D), db2 (D,);
GELU backward: dh (B, T, M); first linear backward: dx (B, T, D), dw1 (D, M), db1 (M,).
Return them in the order dx, dw1, db1, dw2, db2.""",
        formula="""\
da, dw2, db2 = linear_backward(dout); dh = gelu_backward(da); dx, dw1, db1 = linear_backward(dh).""",
        given="x, w1, b1, w2, b2, approximate (the forward's inputs), dout",
        code="""\
h, fc1 = F.linear_forward(x, w1, b1)
a, act = F.gelu_forward(h, approximate)
_, fc2 = F.linear_forward(a, w2, b2)
da, dw2, db2 = F.linear_backward(dout, fc2)
dx, dw1, db1 = F.linear_backward(F.gelu_backward(da, act), fc1)""",
        returns=("dx", "dw1", "db1", "dw2", "db2")),
}
