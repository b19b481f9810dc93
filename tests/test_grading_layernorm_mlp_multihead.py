"""Grading topics layernorm, mlp and multihead: the untested regimes and the fairness rules of issue 12
that the catalogue (tests/grading_catalogue/) does not show on its own."""
import math
import textwrap

import numpy as np

from minivit import layers
from minivit.grading import TOL32, TOPIC_BY_NAME, grade
from minivit.grading.topics import layernorm as ln_topic


def _rel(got, want):
    return float(np.abs(np.asarray(got, np.float64) - want).max() / np.abs(want).max())


def _cancelling_layernorm(x, gamma, beta, eps):
    mu = x.mean(axis=-1, keepdims=True)
    var = (x * x).mean(axis=-1, keepdims=True) - mu * mu          # E[x^2] - E[x]^2
    return (x - mu) / np.sqrt(var + eps) * gamma + beta


def test_large_mean_input_separates_two_pass_from_cancelling_variance_by_10x_each_way():
    x, g, b, eps = ln_topic.large_mean_input()
    assert x.dtype == np.float32 and abs(float(x.mean()) - ln_topic.LARGE_MEAN) < 1
    want = layers.layernorm_forward(x.astype(np.float64), g.astype(np.float64), b.astype(np.float64), eps)[0]
    ref_err = _rel(layers.layernorm_forward(x, g, b, eps)[0], want)
    cancel_err = _rel(_cancelling_layernorm(x, g, b, eps), want)
    assert ref_err * 10 <= TOL32, ref_err                 # the reference passes with >= 10x margin
    assert cancel_err >= 10 * TOL32, cancel_err           # the cancelling form fails by >= 10x


def _write(tmp_path, topic, code):
    (tmp_path / TOPIC_BY_NAME[topic].file).write_text("import math\nimport numpy as np\n" + textwrap.dedent(code))
    return grade([topic], tmp_path)["topics"][topic]


def _check(t, start):
    return next(c for c in t["checks"] if c["name"].startswith(start))
