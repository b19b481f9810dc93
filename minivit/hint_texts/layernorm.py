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
dxhat = dy * gamma: (..., D), the gradient reaching xhat.
Through the variance: dvar = sum over the features of dxhat * (x - mu) * (-1/2) rstd^3: (..., 1).
Through the mean: dmu = -rstd * sum of dxhat: (..., 1) (the variance path adds nothing to it,
since the deviations x - mu sum to 0).
dx = dxhat * rstd + dvar * 2 (x - mu) / D + dmu / D.
dgamma (D,) = sum of dy * xhat, dbeta (D,) = sum of dy, over all axes but the last.""",
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
