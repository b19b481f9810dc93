"""Speed measurement: ``python -m minivit bench``.

Times a full training step (forward, cross-entropy, backward, AdamW update) and inference on
random data of the preset's shape, and reports images per second. The side-by-side comparison
with PyTorch lives in ``benchmarks/torch_vs_minivit.py`` (PyTorch is a dev-only dependency).
"""
from __future__ import annotations

import resource
import statistics
import sys
import time

import numpy as np

from minivit import ops
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


def training_flops_per_image(config: ViTConfig) -> int:
    """FLOPs of one training step per image: forward + backward, the backward counted as twice
    the forward (a gradient for the input and one for the weights of every matrix product)."""
    return 3 * model_flops_per_image(config)


# Which stage a functional call belongs to: the innermost stage-defining function on the call stack
# decides (a linear layer inside MSA counts as attention, inside the MLP as MLP; outside both, it
# is the patch embedding or the head).
STAGE_OF = {
    "mhsa_forward": "attention", "mhsa_backward": "attention",
    "attention_forward": "attention", "attention_backward": "attention",
    "softmax_forward": "attention", "softmax_backward": "attention",
    "mlp_forward": "MLP", "mlp_backward": "MLP", "gelu_forward": "MLP", "gelu_backward": "MLP",
    "layernorm_forward": "LayerNorm", "layernorm_backward": "LayerNorm",
    "patchify_forward": "patch embedding", "patchify_backward": "patch embedding",
    "cls_token_forward": "patch embedding", "cls_token_backward": "patch embedding",
    "pos_embed_forward": "patch embedding", "pos_embed_backward": "patch embedding",
    "cross_entropy_forward": "loss", "cross_entropy_backward": "loss",
    "adamw_update": "optimizer", "sgd_update": "optimizer",
    "dropout_forward": "dropout / residual", "dropout_backward": "dropout / residual",
    "drop_path_forward": "dropout / residual", "drop_path_backward": "dropout / residual",
    "encoder_block_forward": "dropout / residual", "encoder_block_backward": "dropout / residual",
}


class StageTimer:
    """Wraps every function in ``ops.F`` with a timer (synchronizing the GPU around each call) and
    adds each call's *exclusive* time (its own, minus the timed calls it made) to a stage. Only for
    measurement: the extra synchronization slows a GPU down a little."""

    def __init__(self, xp):
        self.xp, self.stack, self.totals = xp, [], {}

    def stage(self, name):
        names = [n for n, _ in self.stack] + [name]
        return next((STAGE_OF[n] for n in reversed(names) if n in STAGE_OF), "patch embedding / head")

    def wrap(self, name, fn):
        def timed(*args, **kwargs):
            synchronize(self.xp)
            self.stack.append([name, 0.0])          # [function, time spent in timed children]
            t0 = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                synchronize(self.xp)
                dt = time.perf_counter() - t0
                _, children = self.stack.pop()
                stage = self.stage(name)
                self.totals[stage] = self.totals.get(stage, 0.0) + dt - children
                if self.stack:
                    self.stack[-1][1] += dt
        return timed

    def namespace(self):
        return {n: self.wrap(n, getattr(ops.F, n)) for n in ops.FUNCTION_NAMES}


def resolve_preset(name: str):
    """(ViTConfig, threads): a model preset (``tiny``, ``cifar``, ``B/16``...) with the trainer's
    default thread count, or a training recipe (``smoke``, ``cpu``, ``gpu``) with its own model
    and threads, as ``python -m minivit train --preset NAME`` would run it."""
    from minivit.model import PRESETS
    from minivit.train.trainer import RECIPES

    if name in RECIPES:
        return ViTConfig.from_dict(RECIPES[name].model), RECIPES[name].threads
    if name in PRESETS:
        return ViTConfig.preset(name), RECIPES[DEFAULT_RECIPE].threads
    raise ValueError(f"unknown preset {name!r}: expected a model preset ({', '.join(sorted(PRESETS))}) "
                     f"or a training recipe ({', '.join(sorted(RECIPES))})")


DEFAULT_RECIPE = "cpu"       # what `python -m minivit train` runs; plain `bench` uses its threads


def bench(preset="cifar", batch_size=128, device=None, steps=10, warmup=2, seed=0, dtype="float32", stages=True,
          impl="reference", threads=None):
    """Time training steps and inference. Returns a dict (what ``--json`` prints).

    preset: a model preset or a training recipe (see :func:`resolve_preset`).
    impl: 'reference' (minivit/layers) or 'fast' (the fast paths of minivit/fast/__init__.py, unless
    MINIVIT_FAST_PATHS=0).
    threads: CPU only; > 1 splits each batch over that many threads, one model replica each
    (``minivit.fast.parallel.DataParallel``, what ``train --threads`` does); None: the recipe's threads,
    for a model preset those of the default training recipe. The per-stage breakdown is always
    timed on one thread."""
    if impl not in ("reference", "fast"):
        raise ValueError(f"impl must be 'reference' or 'fast', got {impl!r}")
    config, recipe_threads = resolve_preset(preset)
    threads = recipe_threads if threads is None else threads
    for name, value, low in (("threads", threads, 1), ("batch_size", batch_size, 1), ("steps", steps, 1),
                             ("warmup", warmup, 0)):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
    functions = {}
    if impl == "fast":
        from minivit import fast

        functions = fast.functions()
    with ops.use(functions):
        r = _bench(preset, config, batch_size, device, steps, warmup, seed, dtype, stages, threads)
    return {**r, "impl": "fast" if functions else "reference"}


def _bench(preset, config, batch_size, device, steps, warmup, seed, dtype, stages, threads):
    dev = resolve_device(device)
    xp = get_xp(dev)
    model = ViT(config, seed=seed, xp=xp).to(dtype=dtype)
    model.train()
    opt = AdamW(model.named_parameters(), lr=1e-4, weight_decay=0.05)
    rng = np.random.default_rng(seed)
    x = xp.asarray(rng.standard_normal((batch_size, config.image_size, config.image_size, config.in_channels)).astype(dtype))
    y = xp.asarray(rng.integers(0, config.num_classes, batch_size))

    parallel = None
    if threads > 1 and xp is np:
        from minivit.fast.parallel import DataParallel

        parallel = DataParallel(model, threads)
    else:
        threads = 1                              # (a GPU runs one model)

    def single_step(i):                          # one model (the op-by-op stage timer needs one thread)
        logits = model.forward(x, make_rng(seed, i, xp=xp))
        loss, cache = cross_entropy_forward(logits, y)
        model.backward(cross_entropy_backward(cache))
        opt.step()

    def train_step(i):
        if parallel is None:
            return single_step(i)
        parallel.forward_backward(x, y, rngs=[make_rng(seed, i, k) for k in range(threads)])
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
    infer_times = timed(lambda i: (parallel or model).forward(x), steps)
    t_train = statistics.median(train_times)
    t_infer = statistics.median(infer_times)

    # The data pipeline on its own: gather + crop + flip + normalize of a batch of uint8 images.
    from minivit.data.augment import AugmentConfig, augment_batch

    images = xp.asarray(rng.integers(0, 256, (4 * batch_size, config.image_size, config.image_size,
                                              config.in_channels), dtype=np.uint8))
    labels = xp.asarray(rng.integers(0, config.num_classes, 4 * batch_size))
    aug = AugmentConfig()
    data_times = timed(lambda i: augment_batch(images[(i % 4) * batch_size:(i % 4 + 1) * batch_size],
                                               labels[:batch_size], make_rng(seed, i), aug, config.num_classes), steps)
    t_data = statistics.median(data_times)

    breakdown = {}
    if stages:
        model.train()
        timer = StageTimer(xp)
        with ops.use(timer.namespace()):
            timed(single_step, max(2, steps // 2))
        total = sum(timer.totals.values())
        breakdown = {k: v / total for k, v in sorted(timer.totals.items(), key=lambda kv: -kv[1])}
    if parallel is not None:
        parallel.close()
    return {
        "preset": preset,
        "batch_size": batch_size,
        "device": dev,
        "dtype": dtype,
        "threads": threads,
        "steps": steps,
        "train_step_s": t_train,
        "train_images_per_s": batch_size / t_train,
        "inference_images_per_s": batch_size / t_infer,
        "train_gflop_per_s": training_flops_per_image(config) * batch_size / t_train / 1e9,
        "params": model.num_parameters(),
        "data_pipeline_s": t_data,
        "data_pipeline_share": t_data / (t_data + t_train),
        "stage_share": breakdown,
        "peak_host_memory_mb": peak_memory_mb(),
        **({"peak_gpu_memory_mb": xp.get_default_memory_pool().total_bytes() / 2**20} if xp is not np else {}),
    }


def peak_memory_mb() -> float:
    """Peak resident memory of this process (MiB), as the OS reports it."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10


def format_report(r: dict) -> str:
    lines = [
        f"preset {r['preset']}  batch {r['batch_size']}  device {r['device']}  {r['dtype']}  ({r['params']:,} parameters)"
        + (f"  impl {r['impl']}" if r.get("impl", "reference") != "reference" else "")
        + (f"  {r['threads']} threads (data parallel)" if r.get("threads", 1) > 1 else ""),
        f"  training step (fwd + bwd + AdamW): {r['train_step_s'] * 1e3:8.1f} ms  "
        f"{r['train_images_per_s']:8.1f} images/s  ~{r['train_gflop_per_s']:.1f} GFLOP/s",
        f"  inference:                         {r['batch_size'] / r['inference_images_per_s'] * 1e3:8.1f} ms  "
        f"{r['inference_images_per_s']:8.1f} images/s",
        f"  data pipeline (crop+flip+normalize): {r['data_pipeline_s'] * 1e3:6.1f} ms per batch "
        f"({100 * r['data_pipeline_share']:.1f}% of a step)",
        f"  peak host memory: {r['peak_host_memory_mb']:.0f} MiB"
        + (f", GPU memory pool: {r['peak_gpu_memory_mb']:.0f} MiB" if "peak_gpu_memory_mb" in r else ""),
        f"  (median of {r['steps']} steps)",
    ]
    if r.get("stage_share"):
        lines.append("  share of training-step time by stage (timed op by op on one thread, so slightly slower overall):")
        lines += [f"    {k:<24} {100 * v:5.1f}%" for k, v in r["stage_share"].items()]
    return "\n".join(lines)
