"""Hints for exercise 5 (topic ``layernorm``)."""

HINTS = {
    "layernorm_forward": dict(
        approach="""\
Per token: subtract the mean of its features, divide by their standard deviation (the biased
variance, eps inside the square root), then scale and shift every feature by gamma and beta.""",
        steps="""\
mu, var: (..., 1) with keepdims=True; var = mean((x - mu)^2), dividing by D (np.var's default
ddof=0 is right, ddof=1 is not); rstd = 1 / sqrt(var + eps): (..., 1); xhat = (x - mu) * rstd:
(..., D); y = gamma * xhat + beta. The cache: xhat, rstd and gamma are enough for the backward.
(E[x^2] - E[x]^2 cancels badly in float32 for features with a large mean: centre first.)""",
        formula="""\
y = gamma * (x - mu) / sqrt(var + eps) + beta, mu and var over the last axis.""",
        given="x, gamma, beta, eps",
        code="""\
mu = x.mean(axis=-1, keepdims=True)
var = ((x - mu) ** 2).mean(axis=-1, keepdims=True)
y = gamma * (x - mu) / np.sqrt(var + eps) + beta""",
        returns=("y",)),
    "layernorm_backward": dict(
        approach="""\
y = gamma * xhat + beta gives dgamma and dbeta directly (summed over every token of every image).
For dx: xhat depends on x three ways, directly, through the mean mu, and through the variance var
(which itself depends on mu). Go back through each path and add them. Derive it on paper once.""",
        steps="""\
The pieces, one per path (every axis but the last is kept):
dxhat (..., D): the gradient reaching xhat, through the multiplication by gamma.
dvar (..., 1): the gradient reaching var (xhat depends on it through rstd = (var + eps)^(-1/2)).
dmu (..., 1): the gradient reaching mu straight from xhat (through var it gets nothing: the
deviations x - mu sum to 0).
Each piece then reaches x through its own local derivative: xhat's through rstd, var's through
d var / d x_i (one term per feature, a mean of squares), mu's through d mu / d x_i = 1/D.
dgamma and dbeta (D,): the gradients of y = gamma * xhat + beta, summed over all axes but the last.""",
        formula="""\
With g = dy * gamma and means over the feature axis, the paths collapse to
dx = rstd * (g - mean(g) - xhat * mean(g * xhat)).""",
        given="x, gamma, beta, eps (the forward's inputs), dy",
        code="""\
mu = x.mean(axis=-1, keepdims=True)
rstd = 1 / np.sqrt(((x - mu) ** 2).mean(axis=-1, keepdims=True) + eps)
xhat = (x - mu) * rstd
g = dy * gamma
dx = rstd * (g - g.mean(axis=-1, keepdims=True) - xhat * (g * xhat).mean(axis=-1, keepdims=True))
dgamma = (dy * xhat).reshape(-1, x.shape[-1]).sum(axis=0)
dbeta = dy.reshape(-1, x.shape[-1]).sum(axis=0)""",
        returns=("dx", "dgamma", "dbeta")),
}
