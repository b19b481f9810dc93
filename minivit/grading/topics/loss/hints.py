"""Hints for exercise 7 (topic ``loss``): softmax cross-entropy with label smoothing."""

HINTS = {
    "cross_entropy_forward": dict(
        approach="""\
Build the target distribution t of every image, then average over the batch -sum_k t_k log p_k,
with log p a log-softmax computed stably (never the log of a softmax: log(0) = -inf).""",
        steps="""\
t (B, K): one-hot rows from integer labels, or the soft targets as given; with label smoothing
eps: (1 - eps) t + eps / K (K classes, not K - 1).
log_p (B, K) = s - max(s) - log(sum(exp(s - max(s)))), per row with keepdims=True.
loss = -sum(t * log_p) / B, returned as a Python float; the cache: log_p and t.""",
        formula="""\
loss = -(1/B) sum_b sum_k t_bk log_softmax(s)_bk.""",
        given="logits, labels, label_smoothing",
        code="""\
B, K = logits.shape
t = np.eye(K)[labels] if labels.ndim == 1 else labels
t = (1 - label_smoothing) * t + label_smoothing / K
m = logits.max(axis=1, keepdims=True)
log_p = logits - m - np.log(np.exp(logits - m).sum(axis=1, keepdims=True))
loss = float(-(t * log_p).sum() / B)""",
        returns=("loss",)),
    "cross_entropy_backward": dict(
        approach="""\
Differentiate -sum_k t_k log p_k with respect to one logit s_j, using log p_k = s_k - log sum exp(s):
every log p_k depends on s_j through the log-sum-exp. The t_k of a row sum to 1 (also smoothed or
mixed targets).""",
        steps="""\
d(-sum_k t_k log p_k)/ds_j = -t_j + (sum_k t_k) p_j, where p = softmax(s) = exp(log_p) (B, K),
from your cache; then the 1/B of the batch mean, and the upstream dloss. dlogits has the logits'
shape (B, K) and dtype.""",
        formula="""\
dlogits = dloss * (softmax(logits) - target) / B.""",
        given="logits, labels, label_smoothing (the forward's inputs), dloss",
        code="""\
B, K = logits.shape
t = np.eye(K)[labels] if labels.ndim == 1 else labels
t = (1 - label_smoothing) * t + label_smoothing / K
e = np.exp(logits - logits.max(axis=1, keepdims=True))
dlogits = dloss * (e / e.sum(axis=1, keepdims=True) - t) / B""",
        returns=("dlogits",)),
}
