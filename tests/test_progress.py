"""What a run reports: the progress bar's whole-run ETA, images/s after --resume, metrics.csv, labels."""
import csv

import pytest

import minivit.plots
from minivit.train.progress import METRIC_FIELDS, read_metrics
from minivit.train.trainer import Trainer
from test_train import REPO, synthetic, tiny_cfg


class RecordingBar:
    """Stands in for tqdm: records how the bar was made and what it was told."""

    made = []

    def __init__(self, total=None, initial=0, **kwargs):
        self.total, self.initial, self.n, self.postfix = total, initial, initial, {}
        RecordingBar.made.append(self)

    def update(self, n=1):
        self.n += n

    def set_postfix(self, refresh=True, **kw):
        self.postfix = kw

    def set_description(self, *a, **k):
        pass

    def write(self, s):
        print(s)

    def close(self):
        pass


@pytest.fixture
def bars(monkeypatch):
    import tqdm.auto

    RecordingBar.made = []
    monkeypatch.setattr(tqdm.auto, "tqdm", RecordingBar)
    monkeypatch.setattr(minivit.plots, "plot_curves", lambda *a, **k: None)
    return RecordingBar.made


def test_progress_bar_counts_the_whole_run(tmp_path, bars):
    t = Trainer(tiny_cfg(epochs=3), tmp_path, device="cpu", dataset_obj=synthetic(), progress=True)
    t.fit()
    assert len(bars) == 1                               # one bar for the run, so its ETA is the run's
    assert bars[0].total == t.total_steps == 24 and bars[0].n == 24


def test_after_resume_images_per_s_counts_only_the_new_steps(tmp_path, bars):
    data = synthetic()
    t = Trainer(tiny_cfg(epochs=2), tmp_path, device="cpu", dataset_obj=data, progress=True)
    real_step, calls = t.train_step, {"n": 0}

    def step_then_ctrl_c(*a, **k):
        calls["n"] += 1
        if calls["n"] == 12:                            # halfway through epoch 2
            raise KeyboardInterrupt
        return real_step(*a, **k)

    t.train_step = step_then_ctrl_c
    with pytest.raises(KeyboardInterrupt):
        t.fit()
    r = Trainer(tiny_cfg(epochs=2), tmp_path, device="cpu", dataset_obj=data, progress=True).resume()
    assert r.partial["seen"] == 3 * 32
    r.partial["time_s"] += 1000.0     # as if the steps before the restart had been very slow (another machine...)
    r.fit()
    bar = bars[-1]
    assert (bar.initial, bar.total) == (11, 16)         # the ETA covers the rest of the run
    row = r.history[-1]
    assert row["images_per_s"] > 5 * 32 / 1000.0 * 10   # 5 steps since the restart, not diluted by the 1000 s
    assert float(bar.postfix["img_s"]) == pytest.approx(row["images_per_s"], rel=0.01, abs=1)
    assert row["time_s"] > 1000.0                       # elapsed time still counts every segment


def test_metrics_csv_has_one_row_per_evaluation_with_its_columns(tmp_path):
    t = Trainer(tiny_cfg(epochs=2, test_subset=40), tmp_path, device="cpu", dataset_obj=synthetic(), progress=False)
    t.fit()
    with open(tmp_path / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == METRIC_FIELDS
    assert [int(r["step"]) for r in rows] == [8, 16]
    assert [float(r["epoch_frac"]) for r in rows] == [1.0, 2.0]
    assert [int(r["epoch"]) for r in rows] == [1, 2]
    assert all(int(r["eval_images"]) == 40 for r in rows)
    assert 0 < float(rows[0]["time_s"]) < float(rows[1]["time_s"])
    assert all(float(r["images_per_s"]) > 0 for r in rows)
    back = read_metrics(tmp_path / "metrics.csv")
    assert back[1]["step"] == 16 and back[1]["test_acc"] == pytest.approx(t.history[1]["test_acc"], rel=1e-5)


def test_plots_read_old_and_new_metrics(tmp_path):
    old = read_metrics(REPO / "docs" / "cpu_recipe_metrics.csv")        # written before step/epoch_frac existed
    assert len(old) == 22 and "step" not in old[0] and old[-1]["epoch"] == 22
    minivit.plots.plot_curves(old, tmp_path / "old.png")
    t = Trainer(tiny_cfg(epochs=1), tmp_path / "run", device="cpu", dataset_obj=synthetic(), progress=False)
    t.fit()
    minivit.plots.plot_curves(read_metrics(tmp_path / "run" / "metrics.csv"), tmp_path / "new.png")
    assert (tmp_path / "old.png").stat().st_size > 0 and (tmp_path / "new.png").stat().st_size > 0


def test_a_subset_evaluation_is_labelled(tmp_path, capsys, bars):
    t = Trainer(tiny_cfg(epochs=1, test_subset=32), tmp_path, device="cpu", dataset_obj=synthetic(), progress=False)
    assert t.eval_note == " (32-image subset)"
    t.fit()
    out = capsys.readouterr().out
    assert "evaluated on 32 of 64 test images" in out and "test acc (32-image subset)" in out
    whole = Trainer(tiny_cfg(epochs=1), tmp_path / "all", device="cpu", dataset_obj=synthetic(), progress=False)
    assert whole.eval_note == "" and whole.test_label == "test acc"


def test_smoke_recipe_is_labelled_in_the_readme():
    readme = (REPO / "README.md").read_text()
    assert "1,000-image subset" in readme
    assert all(f"`{c}`" in readme for c in ("step", "epoch_frac", "eval_images", "images_per_s"))
