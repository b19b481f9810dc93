"""What a training run reports, and that it tells the truth: the progress bar, throughput, metrics.csv.

* The progress bar counts the whole run's steps (``total_steps``), so its ETA is the run's, not one
  epoch's; after ``--resume`` it starts at the step reached, and its rate counts only the steps
  since the restart.
* images/s (bar and metrics) is that of one *segment*: the steps since the last evaluation or since
  the process started, whichever is later. Steps run before a restart, by another process, never
  enter it.
* the bar's loss, accuracy and images/s change when the trainer reads its device sums: at most
  once a second, and before each evaluation (``minivit/train/tally.py``: a step never waits for the GPU);
  the step counter, and so the ETA, moves every step.
* ``metrics.csv`` has one row per evaluation, columns :data:`METRIC_FIELDS`:

  ========== ======================================================================================
  epoch      the epoch (1-based) in which the evaluation happened
  step       optimizer steps done so far in the run
  epoch_frac step / steps per epoch: the fractional epoch (2.5 = halfway through the third epoch)
  train_*    loss and accuracy over the epoch's training batches so far (augmented images)
  test_*     loss and accuracy on the evaluation set (named by ``eval_set``)
  eval_images the size of the evaluation set (e.g. 1,000 for the smoke recipe's subset of 10,000)
  eval_set   ``test``, or ``val``: images held out of the training set (``--val-split``)
  lr         the learning rate of the last step
  time_s     elapsed training time of the run (steps and evaluations, all segments), seconds
  images_per_s training images per second of this segment's steps only
  data_frac  the data pipeline's share of this segment's step time
  eval_weights ``ema`` when the evaluation used the EMA of the weights, else empty
  test_*_tta the horizontal-flip TTA numbers (``--flip-tta``), else empty
  ========== ======================================================================================

  Files written by an older minivit lack ``step``, ``epoch_frac``, ``eval_images`` and the columns after them;
  :func:`read_metrics` and the plots read both.
"""
from __future__ import annotations

import csv
import io
import math
from pathlib import Path

from minivit.storage.tempfiles import atomic_file

METRIC_FIELDS = ["epoch", "step", "epoch_frac", "train_loss", "train_acc", "test_loss", "test_acc", "eval_images",
                 "lr", "time_s", "images_per_s", "data_frac", "eval_set", "eval_weights", "test_loss_tta",
                 "test_acc_tta"]
_INTEGER_FIELDS = ("epoch", "step", "eval_images")
_TEXT_FIELDS = ("eval_set", "eval_weights")


def subset_label(n_eval: int, n_total: int) -> str:
    """'' when the evaluation set is the whole test set, else ' (1,000-image subset)'."""
    return "" if n_eval >= n_total else f" ({n_eval:,}-image subset)"


class Throughput:
    """Images per second of one segment of steps (reset after each evaluation and at a restart)."""

    def __init__(self):
        self.reset()

    def reset(self):
        self.images, self.step_s, self.data_s = 0, 0.0, 0.0

    def add(self, images: int, step_s: float, data_s: float):
        self.images += images
        self.step_s += step_s
        self.data_s += data_s

    @property
    def images_per_s(self) -> float:
        return self.images / self.step_s if self.step_s > 0 else float("nan")

    @property
    def data_frac(self) -> float:
        return self.data_s / self.step_s if self.step_s > 0 else float("nan")


def write_metrics(rows: list[dict], path):
    """Write ``rows`` as metrics.csv atomically (a temporary file renamed into place).
    Columns a row lacks (an older run's rows after --resume) are left empty."""
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=METRIC_FIELDS, restval="", extrasaction="ignore", lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in r.items()})
    with atomic_file(path, "w") as f:
        f.write(buf.getvalue())
    return path


def write_reports(rows: list[dict], out, title: str):
    """metrics.csv and curves.png in the folder ``out``; a plotting problem only warns (it must never
    lose a training run)."""
    write_metrics(rows, Path(out) / "metrics.csv")
    try:
        from minivit.plots import plot_curves

        plot_curves(rows, Path(out) / "curves.png", title=title)
    except Exception as e:
        print(f"warning: could not draw curves.png ({e})")


def read_metrics(path) -> list[dict]:
    """metrics.csv (this version's or an older one's) as a list of dicts of numbers."""
    rows = []
    with open(path, newline="") as f:
        for r in csv.DictReader(f):
            rows.append({k: (v if k in _TEXT_FIELDS else int(float(v)) if k in _INTEGER_FIELDS else float(v))
                         for k, v in r.items() if v})
    return rows


def progress_bar(enabled: bool, total: int, initial: int, desc: str):
    """A tqdm bar over the whole run (``total`` steps, starting at ``initial``), or a silent stand-in."""
    if not enabled:
        return NoProgressBar()
    import sys

    from tqdm.auto import tqdm      # a widget in notebooks, a text bar in a terminal

    return tqdm(total=total, initial=initial, desc=desc, unit="step", leave=True, dynamic_ncols=True,
                mininterval=0.5 if sys.stderr.isatty() else 30.0)


class NoProgressBar:
    """Stands in for tqdm when progress=False (and keeps tqdm's notebook warning away)."""

    def update(self, n=1):
        pass

    def set_postfix(self, *args, **kwargs):
        pass

    def set_description(self, *args, **kwargs):
        pass

    def write(self, s):
        print(s)

    def close(self):
        pass



def json_safe(obj):
    """``obj`` with every NaN or infinite float replaced by None (JSON has no NaN: ``null``)."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    return obj
