"""Analyses of a trained ViT (minivit.inspect): each checked on constructed inputs with a known answer."""
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from minivit import inspect as I
from minivit.storage.checkpoint import save_checkpoint
from minivit.model import ViT, ViTConfig

from test_train import STANDIN, synthetic

ROOT = Path(__file__).resolve().parents[1]
SMALL = dict(image_size=16, patch_size=4, num_classes=5, dim=16, depth=3, num_heads=2, mlp_dim=32)


def random_model(seed=0, **kw):
    m = ViT(ViTConfig(**{**SMALL, **kw}), seed=seed).to(dtype=np.float64)
    rng = np.random.default_rng(seed)
    for _, p in m.named_parameters():
        p.value = rng.standard_normal(p.value.shape) / np.sqrt(max(p.value.shape[0], 1))
    return m


def images(n=4, seed=1):
    return np.random.default_rng(seed).standard_normal((n, 16, 16, 3))


def brute_force_distance(gh, gw, P):
    """Mean Euclidean distance (pixels) between the centres of all pairs of patches, by loops."""
    total = 0.0
    cells = [(r, c) for r in range(gh) for c in range(gw)]
    for r1, c1 in cells:
        for r2, c2 in cells:
            total += P * np.hypot(r1 - r2, c1 - c2)
    return total / len(cells) ** 2


# ------------------------------------------------------------------------------ attention weights
def test_attention_weights_match_a_direct_computation():
    m = random_model()
    x = images()
    attn = I.attention_weights(m, x, batch_size=3)                 # two chunks
    assert len(attn) == 3 and attn[0].shape == (4, 2, 17, 17)
    for A in attn:
        np.testing.assert_allclose(A.sum(-1), 1.0, atol=1e-12)
    # Layer 0 by hand: A = softmax(q k^T / sqrt(d)) on LN(z_0).
    from minivit.layers.patch import patchify_forward

    p = patchify_forward(x, 4)[0] @ m.patch_embed.weight.value + m.patch_embed.bias.value
    z = np.concatenate([np.broadcast_to(m.cls_token.value, (4, 1, 16)), p], axis=1) + m.pos_embed.value
    b = m.blocks[0]
    h = (z - z.mean(-1, keepdims=True)) / np.sqrt(z.var(-1, keepdims=True) + 1e-6) * b.norm1.gamma.value + b.norm1.beta.value
    qkv = h @ b.attn.qkv.weight.value + b.attn.qkv.bias.value
    q, k = qkv[..., :16].reshape(4, 17, 2, 8), qkv[..., 16:32].reshape(4, 17, 2, 8)
    s = np.einsum("bqhd,bkhd->bhqk", q, k) / np.sqrt(8)
    expected = np.exp(s - s.max(-1, keepdims=True))
    expected /= expected.sum(-1, keepdims=True)
    np.testing.assert_allclose(attn[0], expected, atol=1e-10)
    assert m.training is False


def uniform_model(**kw):
    """Zero query and key weights and biases: every score is equal, so attention is uniform."""
    m = random_model(**kw)
    for b in m.blocks:
        b.attn.qkv.weight.value[:, :32] = 0
        b.attn.qkv.bias.value[:32] = 0
    return m


# ----------------------------------------------------------------------- mean attention distance
def test_distance_of_a_uniform_attention_model():
    m = uniform_model()
    attn = I.attention_weights(m, images())
    np.testing.assert_allclose(attn[1], 1 / 17, atol=1e-12)
    dist = I.mean_attention_distance(attn, patch_size=4)
    assert dist.shape == (3, 2)
    np.testing.assert_allclose(dist, brute_force_distance(4, 4, 4), rtol=1e-12)
    gap = I.mean_attention_distance(I.attention_weights(uniform_model(pool="gap"), images()), 4, cls_token=False)
    np.testing.assert_allclose(gap, brute_force_distance(4, 4, 4), rtol=1e-12)


def local_attention(g, B=2, h=3, T_extra=1, weights=(1.0, 0.0)):
    """Each patch attends to its 4-neighbours (equally) with weight weights[0]; the class token
    gets weights[1] of every row. Head 1 attends only to itself."""
    N = g * g
    T = N + T_extra
    A = np.zeros((B, h, T, T))
    for n in range(N):
        r, c = divmod(n, g)
        nb = [(r + dr) * g + (c + dc) for dr, dc in ((-1, 0), (1, 0), (0, -1), (0, 1)) if 0 <= r + dr < g and 0 <= c + dc < g]
        for k in nb:
            A[:, :, T_extra + n, T_extra + k] = weights[0] / len(nb)
        A[:, :, T_extra + n, 0] = weights[1]
    A[:, 1] = 0
    A[:, 1, np.arange(T), np.arange(T)] = 1.0
    A[:, :, 0] = 1.0 / T
    return A


def test_distance_of_local_attention():
    A = local_attention(5, weights=(0.7, 0.3))     # 30% to the class token: excluded, then renormalized
    dist = I.mean_attention_distance([A, A], patch_size=8)
    np.testing.assert_allclose(dist[:, 0], 8.0)   # every key is one patch (8 px) away
    np.testing.assert_allclose(dist[:, 1], 0.0)   # attending to itself: distance 0
    np.testing.assert_allclose(dist[:, 2], 8.0)
    # A single far key: the corner patch attends to the opposite corner.
    g, T = 3, 10
    B = np.zeros((1, 1, T, T))
    B[0, 0, :, 1 + 8] = 1.0
    d = I.mean_attention_distance([B], patch_size=2)
    expected = np.mean([2 * np.hypot(2 - r, 2 - c) for r in range(g) for c in range(g)])
    np.testing.assert_allclose(d, [[expected]])
    np.testing.assert_allclose(I.patch_distances(1, 3, 5), [[0, 5, 10], [5, 0, 5], [10, 5, 0]])


# --------------------------------------------------------------------- attention maps and rollout
def test_last_layer_attention_averages_heads_over_patches():
    A = np.zeros((1, 2, 5, 5))
    A[0, 0, 0, 1] = 1.0                            # head 0: the class token looks at patch 0
    A[0, 1, 0, 0] = 0.5                            # head 1: half on itself, half on patch 3
    A[0, 1, 0, 4] = 0.5
    m = I.last_layer_attention([np.zeros_like(A), A])
    np.testing.assert_allclose(m, [[[0.5, 0.0], [0.0, 0.25]]])


def brute_force_rollout(attn):
    """Rollout by explicit loops over images and layers."""
    B, _, T, _ = attn[0].shape
    out = []
    for b in range(B):
        R = np.eye(T)
        for A in attn:
            a = A[b].mean(axis=0) + np.eye(T)
            a = a / a.sum(axis=1, keepdims=True)
            R = a @ R
        out.append(R)
    return np.stack(out)


def test_rollout_known_answers():
    T, L = 10, 3
    # Identity attention (every token looks at itself): nothing flows to the class token's row.
    eye = np.broadcast_to(np.eye(T), (2, 2, T, T))
    np.testing.assert_allclose(I.attention_rollout([eye] * L), 0.0)
    # Every token attends only to patch 4 (token 5): after L layers the class token keeps 0.5^L
    # of itself and has drawn 1 - 0.5^L from that patch.
    A = np.zeros((1, 2, T, T))
    A[..., 5] = 1.0
    m, R = I.attention_rollout([A] * L, return_matrix=True)
    expected = np.zeros(9)
    expected[4] = 1 - 0.5 ** L
    np.testing.assert_allclose(m.reshape(-1), expected)
    np.testing.assert_allclose(R[0, 0, 0], 0.5 ** L)
    np.testing.assert_allclose(R.sum(-1), 1.0)      # rows stay distributions
    # Without the residual term a single layer's rollout is its head-averaged attention.
    np.testing.assert_allclose(I.attention_rollout([A], residual=False), I.last_layer_attention([A]))


def test_rollout_matches_brute_force_on_a_model():
    m = random_model()
    attn = I.attention_weights(m, images())
    roll, R = I.attention_rollout(attn, return_matrix=True)
    np.testing.assert_allclose(R, brute_force_rollout(attn), atol=1e-12)
    assert roll.shape == (4, 4, 4)
    np.testing.assert_allclose(roll.reshape(4, 16), R[:, 0, 1:])
    # Uniform attention everywhere gives a flat map.
    flat = I.attention_rollout(I.attention_weights(uniform_model(), images()))
    np.testing.assert_allclose(flat, flat[:, :1, :1] * np.ones((1, 4, 4)), atol=1e-12)
    # GAP models: the mean over all rows.
    g = I.attention_rollout(I.attention_weights(random_model(pool="gap"), images()), cls_token=False)
    assert g.shape == (4, 4, 4)
    up = I.upsample_maps(roll, 16, 16)
    assert up.shape == (4, 16, 16)


# ----------------------------------------------------------------------- embedding filters (PCA)
def test_embedding_filters_recover_planted_components():
    P, C, D = 4, 3, 40
    rng = np.random.default_rng(0)
    u1 = np.zeros((P, P, C))
    u1[1, 2, 0] = 1.0                                  # a single red pixel at (row 1, col 2)
    u2 = np.zeros((P, P, C))
    u2[:, :, 2] = 0.25                                 # flat blue
    v1, v2 = rng.standard_normal(D), rng.standard_normal(D)
    v1 -= v1.mean()
    v2 -= v2.mean()
    v2 -= v1 * (v1 @ v2) / (v1 @ v1)
    v1, v2 = 3 * v1 / np.linalg.norm(v1), v2 / np.linalg.norm(v2)
    E = np.outer(u1.ravel(), v1) + np.outer(u2.ravel(), v2) + 5.0   # + a constant: the mean filter, removed
    comps, explained = I.embedding_filters(E, num_components=3, patch_size=P, channels=C)
    assert comps.shape == (3, P, P, C)
    np.testing.assert_allclose(comps[0], u1, atol=1e-10)             # (row, col, channel) order, sign fixed
    np.testing.assert_allclose(comps[1], u2, atol=1e-10)
    np.testing.assert_allclose(explained[:2], [0.9, 0.1], atol=1e-10)
    m = random_model()
    comps, explained = I.embedding_filters(m, num_components=5)
    assert comps.shape == (5, 4, 4, 3) and np.all(np.diff(explained) <= 1e-12)
    np.testing.assert_allclose(np.linalg.norm(comps.reshape(5, -1), axis=1), 1.0)


# -------------------------------------------------------------------------- position similarity
def test_position_similarity_known_answers():
    g, D = 3, 12
    pos = np.zeros((1, 1 + g * g, D))
    pos[0, 0] = 1.0                                    # class token row: ignored
    for n in range(g * g):
        r, c = divmod(n, g)
        pos[0, 1 + n, r] = 1.0                         # a "row" direction ...
        pos[0, 1 + n, 3 + c] = 1.0                     # ... plus a "column" direction
    sim = I.position_similarity(pos)
    assert sim.shape == (g, g, g, g)
    for r1 in range(g):
        for c1 in range(g):
            for r2 in range(g):
                for c2 in range(g):
                    assert sim[r1, c1, r2, c2] == pytest.approx(((r1 == r2) + (c1 == c2)) / 2)
    # 2D learned embeddings with orthogonal row/column tables give the same structure.
    m = random_model(pos_embed="learned2d")
    m.pos_embed_row.value = np.eye(4, 8)
    m.pos_embed_col.value = np.eye(4, 8)
    s = I.position_similarity(m)
    np.testing.assert_allclose(s[1, 2], [[((r == 1) + (c == 2)) / 2 for c in range(4)] for r in range(4)])
    with pytest.raises(ValueError, match="no position embeddings"):
        I.position_similarity(random_model(pos_embed="none"))


# ---------------------------------------------------------------------------------------- plots
def test_plots_write_pngs(tmp_path):
    m = random_model()
    attn = I.attention_weights(m, images())
    paths = [
        I.plot_embedding_filters(I.embedding_filters(m, 9)[0], tmp_path / "f.png", explained=I.embedding_filters(m, 9)[1]),
        I.plot_position_similarity(I.position_similarity(m), tmp_path / "p.png"),
        I.plot_attention_distance(I.mean_attention_distance(attn, 4), tmp_path / "d.png", image_size=16),
        I.plot_attention_maps((np.random.default_rng(0).random((4, 16, 16, 3)) * 255).astype(np.uint8),
                              {"last layer": I.last_layer_attention(attn), "rollout": I.attention_rollout(attn)},
                              tmp_path / "m.png"),
    ]
    for p in paths:
        assert Path(p).is_file() and Path(p).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_inspect_checkpoint(tmp_path):
    m = ViT(ViTConfig.preset("tiny", num_classes=4), seed=0)
    save_checkpoint(tmp_path / "ck.npz", m)
    r = I.inspect_checkpoint(tmp_path / "ck.npz", tmp_path / "out", dataset_obj=synthetic(n_train=8, n_test=20),
                             num_images=3, distance_images=10, device="cpu")
    for key in ("filters_png", "position_png", "distance_png", "maps_png", "npz"):
        assert Path(r[key]).is_file(), key
    assert r["attention_distance"].shape == (2, 2) and r["attention_maps"]["rollout"].shape == (3, 4, 4)


def test_inspect_official_checkpoint_resizes_images(tmp_path):
    from test_pretrained import write_official

    path = write_official(tmp_path / "ViT.npz")                       # 16 x 16 model, CIFAR is 32 x 32
    r = I.inspect_checkpoint(path, tmp_path / "out", dataset_obj=synthetic(n_train=8, n_test=6), num_images=2,
                             distance_images=4, device="cpu")
    assert r["attention_maps"]["last layer"].shape == (2, 4, 4) and r["attention_distance"].shape == (2, 2)


@pytest.mark.skipif(not (STANDIN / "cifar-10-batches-bin").is_dir(), reason="CIFAR-10 stand-in not available")
def test_inspect_cli(tmp_path):
    m = ViT(ViTConfig.preset("tiny"), seed=0)
    save_checkpoint(tmp_path / "ck.npz", m)
    r = subprocess.run([sys.executable, "-m", "minivit", "inspect", str(tmp_path / "ck.npz"), "--out",
                        str(tmp_path / "out"), "--images", "2", "--device", "cpu"],
                       cwd=ROOT, capture_output=True, text=True, timeout=120,
                       env={**os.environ, "MINIVIT_DATA": str(STANDIN), "MPLBACKEND": "Agg"})
    assert r.returncode == 0, r.stdout + r.stderr
    for name in ("embedding_filters.png", "position_similarity.png", "attention_distance.png", "attention_maps.png"):
        assert (tmp_path / "out" / name).is_file() and name in r.stdout
