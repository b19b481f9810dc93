"""Training plots: loss/accuracy curves and the confusion matrix (PNG files, matplotlib Agg)."""
from __future__ import annotations

import numpy as np


def _plt():
    import matplotlib

    if matplotlib.get_backend().lower() not in ("agg", "module://matplotlib_inline.backend_inline"):
        try:
            matplotlib.use("Agg")
        except Exception:
            pass
    import matplotlib.pyplot as plt

    return plt


def plot_curves(rows: list[dict], path, title: str = ""):
    """rows: metrics.csv rows (epoch, train_loss, train_acc, test_loss, test_acc, lr, time_s; see
    minivit/train/progress.py), from a run's history or ``progress.read_metrics``. The x axis is the
    fractional epoch (``epoch_frac``) where the rows have it, else the epoch (older metrics.csv)."""
    plt = _plt()
    ep = [r.get("epoch_frac", r["epoch"]) for r in rows]
    name = "validation" if rows and rows[-1].get("eval_set") == "val" else "test"     # --val-split: held-out images
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    axes[0].plot(ep, [r["train_loss"] for r in rows], "o-", label="train")
    axes[0].plot(ep, [r["test_loss"] for r in rows], "o-", label=name)
    axes[0].set(xlabel="epoch", ylabel="cross-entropy", title="loss")
    axes[1].plot(ep, [100 * r["train_acc"] for r in rows], "o-", label="train")
    axes[1].plot(ep, [100 * r["test_acc"] for r in rows], "o-", label=name)
    axes[1].set(xlabel="epoch", ylabel="accuracy (%)", title="accuracy")
    axes[2].plot([r["time_s"] / 60 for r in rows], [100 * r["test_acc"] for r in rows], "o-", color="C1")
    axes[2].set(xlabel="wall-clock time (min)", ylabel=f"{name} accuracy (%)", title="accuracy vs time")
    for a in axes:
        a.grid(alpha=0.3)
    axes[0].legend()
    axes[1].legend()
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def plot_confusion(cm: np.ndarray, classes: list[str], path, title: str = "confusion matrix"):
    """cm: (K, K) counts, rows = true class, columns = predicted class."""
    plt = _plt()
    K = len(classes)
    frac = cm / np.maximum(1, cm.sum(axis=1, keepdims=True))
    size = max(5, 0.45 * K)
    fig, ax = plt.subplots(figsize=(size, size))
    ax.imshow(frac, cmap="Blues", vmin=0, vmax=1)
    if K <= 20:
        ax.set_xticks(range(K), classes, rotation=60, ha="right")
        ax.set_yticks(range(K), classes)
        for i in range(K):
            for j in range(K):
                ax.text(j, i, f"{100 * frac[i, j]:.0f}", ha="center", va="center", fontsize=7,
                        color="white" if frac[i, j] > 0.5 else "black")
    ax.set(xlabel="predicted", ylabel="true", title=title)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path
