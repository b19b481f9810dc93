"""Data parallelism over CPU threads: a fast path for training on a multi-core CPU.

NumPy runs elementwise work (softmax, LayerNorm, GELU, the residual adds...) on one core; only
the big matrix products use several BLAS threads. On a 2-core laptop that leaves one core idle
for about half of every step. This module splits each batch into shards and runs each shard's
forward and backward pass in its own thread, on its own *replica* of the model:

* a replica is a second ViT whose parameters are the *same arrays* as the main model's, so the
  optimizer's in-place update reaches all of them; each replica keeps its own caches and gradients;
* each thread's BLAS runs single-threaded (``threadpoolctl``), so the threads don't fight;
* NumPy releases the GIL inside its loops and BLAS calls, so the shards really run in parallel;
* afterwards the replicas' gradients are added into the main model's, in a fixed order.

The result is the same gradient as one pass over the whole batch, up to float rounding (the
per-shard sums are added in another order), and it is deterministic: the same seed gives the same
numbers on every run, whatever the thread scheduling. The plain, single-threaded training step in
``minivit.train.trainer`` stays the one to read; this file only orchestrates it. Not used on a GPU.
"""
from __future__ import annotations

import contextlib
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from minivit.ops import F

SHARD_THREAD_PREFIX = "minivit-shard"   # names of the shard threads (minivit.fast does not nest threads in them)


def blas_single_threaded():
    """Context manager limiting BLAS to one thread (a no-op when threadpoolctl is unavailable)."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - threadpoolctl is a dependency
        return contextlib.nullcontext()
    return threadpool_limits(limits=1, user_api="blas")


class DataParallel:
    """Run forward + backward of a batch split into ``num_threads`` shards, one thread each.

    model: the main ViT (its parameters receive the summed gradients).
    """

    def __init__(self, model, num_threads=2):
        from minivit.model import ViT

        if num_threads < 2:
            raise ValueError(f"DataParallel needs at least 2 threads, got {num_threads}")
        self.model = model
        self.replicas = [model]
        for _ in range(num_threads - 1):
            replica = ViT(model.config, xp=np, dtype=model.dtype)
            replica.train(model.training)
            self.replicas.append(replica)
        self.pool = ThreadPoolExecutor(max_workers=num_threads, thread_name_prefix=SHARD_THREAD_PREFIX)

    def share_parameters(self):
        """Point every replica's parameters at the main model's arrays (cheap; done every step,
        so an optimizer or ``load_state_dict`` that replaced an array is picked up)."""
        main = self.model.parameters()
        for replica in self.replicas[1:]:
            replica.train(self.model.training)
            for p, q in zip(main, replica.parameters()):
                q.value = p.value

    def shards(self, batch_size):
        """[(start, stop)] of each shard: as equal as possible."""
        bounds = np.linspace(0, batch_size, len(self.replicas) + 1).round().astype(int)
        return list(zip(bounds[:-1], bounds[1:]))

    def forward_backward(self, x, targets, label_smoothing=0.0, rngs=None):
        """Loss and logits of the whole batch; fills the main model's ``.grad``s.

        x: (B, H, W, C)   targets: (B,) ints or (B, K) soft   rngs: one generator per shard (dropout)
        returns: (loss: float, logits (B, K))
        """
        self.share_parameters()
        B = len(x)
        shards = self.shards(B)
        rngs = rngs or [None] * len(shards)

        def work(i):
            lo, hi = shards[i]
            model = self.replicas[i]
            logits = model.forward(x[lo:hi], rngs[i])
            loss, cache = F.cross_entropy_forward(logits, targets[lo:hi], label_smoothing)
            # Each shard's loss is a mean over its own images: weigh it by its share of the batch.
            model.backward(F.cross_entropy_backward(cache, dloss=(hi - lo) / B))
            return loss * (hi - lo) / B, logits

        with blas_single_threaded():     # set once, here: the BLAS thread count is process-wide
            results = list(self.pool.map(work, range(len(shards))))
        for params in zip(*(r.parameters() for r in self.replicas)):
            params[0].grad = sum((p.grad for p in params[1:]), params[0].grad)
        loss = sum(r[0] for r in results)
        logits = np.concatenate([r[1] for r in results])
        return loss, logits

    def forward(self, x):
        """Logits of a batch in evaluation mode, sharded over the threads."""
        self.share_parameters()
        shards = self.shards(len(x))

        def work(i):
            lo, hi = shards[i]
            return self.replicas[i].forward(x[lo:hi])

        with blas_single_threaded():
            return np.concatenate(list(self.pool.map(work, range(len(shards)))))

    def close(self):
        self.pool.shutdown()
