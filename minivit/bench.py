"""Speed measurement: ``python -m minivit bench``.

Times a full training step (forward, cross-entropy, backward, AdamW update) and inference on
random data of the preset's shape, and reports images per second. The side-by-side comparison
with PyTorch lives in ``benchmarks/torch_vs_minivit.py`` (PyTorch is a dev-only dependency).
"""
from __future__ import annotations

import statistics
import time

import numpy as np

from minivit.backend import get_xp, make_rng, resolve_device, synchronize
from minivit.layers import cross_entropy_backward, cross_entropy_forward
from minivit.model import ViT, ViTConfig
from minivit.optim import AdamW


def model_flops_per_image(config: ViTConfig) -> int:
    """Multiply-add FLOPs (2 per MAC) of one forward pass; a training step costs about 3x this."""
    c = config
    T, D, M, N = c.seq_len, c.dim, c.mlp_dim, c.num_patches
    patch = 2 * N * (c.patch_size ** 2 * c.in_channels) * D
    per_block = 2 * T * D * 3 * D + 2 * 2 * T * T * D + 2 * T * D * D + 2 * 2 * T * D * M
    return patch + c.depth * per_block + 2 * D * c.num_classes


def bench(preset="cifar", batch_size=128, device=None, steps=10, warmup=2, seed=0, dtype="float32"):
    """Time training steps and inference. Returns a dict (what ``--json`` prints)."""
    dev = resolve_device(device)
    xp = get_xp(dev)
    config = ViTConfig.preset(preset)
    model = ViT(config, seed=seed, xp=xp).to(dtype=dtype)
    model.train()
    opt = AdamW(model.named_parameters(), lr=1e-4, weight_decay=0.05)
    rng = np.random.default_rng(seed)
    x = xp.asarray(rng.standard_normal((batch_size, config.image_size, config.image_size, config.in_channels)).astype(dtype))
    y = xp.asarray(rng.integers(0, config.num_classes, batch_size))

    def train_step(i):
        logits = model.forward(x, make_rng(seed, i, xp=xp))
        loss, cache = cross_entropy_forward(logits, y)
        model.backward(cross_entropy_backward(cache))
        opt.step()

    def timed(fn, n):
        times = []
        for i in range(n):
            synchronize(xp)
            t0 = time.perf_counter()
            fn(i)
            synchronize(xp)
            times.append(time.perf_counter() - t0)
        return times

    timed(train_step, warmup)
    train_times = timed(train_step, steps)
    model.eval()
    infer_times = timed(lambda i: model.forward(x), steps)
    t_train = statistics.median(train_times)
    t_infer = statistics.median(infer_times)
    flops = model_flops_per_image(config)
    return {
        "preset": preset,
        "batch_size": batch_size,
        "device": dev,
        "dtype": dtype,
        "steps": steps,
        "train_step_s": t_train,
        "train_images_per_s": batch_size / t_train,
        "inference_images_per_s": batch_size / t_infer,
        "train_gflop_per_s": 3 * flops * batch_size / t_train / 1e9,
        "params": model.num_parameters(),
    }


def format_report(r: dict) -> str:
    return (f"preset {r['preset']}  batch {r['batch_size']}  device {r['device']}  {r['dtype']}  ({r['params']:,} parameters)\n"
            f"  training step (fwd + bwd + AdamW): {r['train_step_s'] * 1e3:8.1f} ms  "
            f"{r['train_images_per_s']:8.1f} images/s  ~{r['train_gflop_per_s']:.1f} GFLOP/s\n"
            f"  inference:                         {r['batch_size'] / r['inference_images_per_s'] * 1e3:8.1f} ms  "
            f"{r['inference_images_per_s']:8.1f} images/s\n"
            f"  (median of {r['steps']} steps)")
