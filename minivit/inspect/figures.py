"""What the ``plot_*`` helpers share: matplotlib (imported on first use) and saving a figure as a PNG."""
from __future__ import annotations

from pathlib import Path


def _plt():
    from minivit.plots import _plt as plots_plt

    return plots_plt()


def _save(fig, path):
    import matplotlib.pyplot as plt

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
