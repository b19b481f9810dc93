"""Run folders: never replace a run, one trainer at a time, leftovers of killed processes cleaned up."""
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from minivit.data import cifar as data
from minivit.storage import tempfiles
from minivit.cli.main import main
from minivit.train.runfolder import RunFolderError, RunFolderLocked, RunLock, claim_run_folder
from minivit.train.trainer import Trainer
from test_data import use_tiny_spec
from test_train import STANDIN, synthetic, tiny_cfg

REPO = Path(__file__).resolve().parents[1]


def dead_pid():
    """The id of a process that has exited (and been reaped)."""
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


@pytest.fixture
def live_child():
    """A running child process (its pid is alive while the test runs)."""
    p = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    yield p
    p.kill()
    p.wait()


def hold_lock_in_child(folder):
    """A child process that holds folder's RunLock until killed."""
    code = textwrap.dedent(f"""
        import sys, time
        from minivit.train.runfolder import RunLock
        RunLock({str(folder)!r}).acquire()
        print("locked", flush=True)
        time.sleep(60)
    """)
    p = subprocess.Popen([sys.executable, "-c", code], cwd=REPO, stdout=subprocess.PIPE, text=True)
    assert p.stdout.readline().strip() == "locked"
    return p


# ------------------------------------------------------------------------------ folder rules
@pytest.mark.parametrize("existing", ["config.json", "metrics.csv", "best.npz"])
def test_train_refuses_a_folder_that_holds_a_run(tmp_path, capsys, existing):
    out = tmp_path / "run"
    out.mkdir()
    (out / existing).write_text("{}")
    assert main(["train", "--preset", "smoke", "--out", str(out), "--data-dir", str(tmp_path / "nodata")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and "already holds a run" in err and existing in err
    assert "--resume" in err and "--overwrite" in err and "new --out" in err
    assert sorted(p.name for p in out.iterdir()) == [existing]           # untouched, lock released


def test_finetune_refuses_a_folder_that_holds_a_run(tmp_path, capsys):
    out = tmp_path / "ft"
    out.mkdir()
    (out / "last.npz").write_bytes(b"x")
    assert main(["finetune", "--from", str(tmp_path / "any.npz"), "--preset", "smoke", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "already holds a run" in err and "--overwrite" in err


def test_overwrite_moves_the_old_run_aside(tmp_path, capsys):
    out = tmp_path / "run"
    out.mkdir()
    for name in ("config.json", "metrics.csv", "best.npz", "curves.png"):
        (out / name).write_text(name)
    with claim_run_folder(out, overwrite=True):
        assert list(out.iterdir()) == [out / ".lock"]
    (old,) = tmp_path.glob("run.old-*")
    assert sorted(p.name for p in old.iterdir()) == ["best.npz", "config.json", "curves.png", "metrics.csv"]
    assert (old / "best.npz").read_text() == "best.npz"                 # nothing deleted
    assert "moved the run" in capsys.readouterr().out
    with pytest.raises(RunFolderError, match="use one of them"):
        with claim_run_folder(out, resume=True, overwrite=True):
            pass


@pytest.mark.skipif(not (STANDIN / "cifar-10-batches-bin").is_dir(), reason="CIFAR-10 stand-in not available")
def test_cli_overwrite_trains_into_the_emptied_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("MINIVIT_DATA", str(STANDIN))
    out = tmp_path / "run"
    out.mkdir()
    (out / "best.npz").write_bytes(b"the old best")
    args = ["train", "--preset", "smoke", "--epochs", "1", "--subset", "128", "--out", str(out)]
    assert main(args) == 2                                              # refused: holds a run
    assert main(args + ["--overwrite"]) == 0
    (old,) = tmp_path.glob("run.old-*")
    assert (old / "best.npz").read_bytes() == b"the old best"
    assert {"config.json", "metrics.csv", "last.npz", "best.npz"} <= {p.name for p in out.iterdir()}
    assert not (out / ".lock").exists()
    assert main(args + ["--resume"]) == 0                               # a finished run resumes as a no-op


# ---------------------------------------------------------------------------------- the lock
def test_second_trainer_on_the_same_folder_is_refused(tmp_path, capsys):
    out = tmp_path / "run"
    child = hold_lock_in_child(out)
    try:
        assert main(["train", "--preset", "smoke", "--out", str(out), "--data-dir", str(tmp_path / "nodata")]) != 0
        err = capsys.readouterr().err
        assert err.startswith("error:") and "in use by another trainer" in err and str(child.pid) in err
        t = Trainer(tiny_cfg(epochs=1), out, device="cpu", dataset_obj=synthetic(), progress=False)
        with pytest.raises(RunFolderLocked, match=str(child.pid)):
            t.fit()                                                      # the library's Trainer locks too
        assert not (out / "config.json").exists()
    finally:
        child.kill()
        child.wait()
    Trainer(tiny_cfg(epochs=1), out, device="cpu", dataset_obj=synthetic(), progress=False).fit()  # its lock died
    assert not (out / ".lock").exists()                                 # released at the end


def test_a_lock_left_by_a_dead_process_is_stale(tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    (out / ".lock").write_text(f"{dead_pid()}\n")
    with RunLock(out) as lock:
        assert (out / ".lock").read_text().strip() == str(os.getpid())
        with RunLock(out):                                              # reentrant in one process
            pass
        assert lock.path.exists()
    assert not (out / ".lock").exists()


# --------------------------------------------------------------------- leftovers of kill -9
def test_temporary_names_carry_the_pid_and_usual_mode(tmp_path):
    fd, tmp = tempfiles.temp_file_for(tmp_path / "last.npz", ".tmp")
    os.close(fd)
    assert tempfiles.owner_pid(tmp.name) == os.getpid() and tmp.name.startswith("last.npz.pid")
    old = os.umask(0o027)
    try:
        fd, tmp2 = tempfiles.temp_file_for(tmp_path / "best.npz", ".tmp")
        os.close(fd)
    finally:
        os.umask(old)
    assert tmp2.stat().st_mode & 0o777 == 0o640
    assert tempfiles.owner_pid(tempfiles.temp_dir_in(tmp_path, ".extract-").name) == os.getpid()
    assert tempfiles.owner_pid("last.npz.x8k2.tmp") is None


def test_trainer_removes_only_dead_processes_tmp_files(tmp_path, live_child):
    out = tmp_path / "run"
    out.mkdir()
    dead = out / f"last.npz.pid{dead_pid()}.abc123.tmp"
    live = out / f"last.npz.pid{live_child.pid}.abc123.tmp"
    untagged = out / "notes.abc.tmp"
    for p in (dead, live, untagged):
        p.write_bytes(b"partial")
    Trainer(tiny_cfg(epochs=1), out, device="cpu", dataset_obj=synthetic(), progress=False).fit()
    assert not dead.exists()
    assert live.exists() and untagged.exists()


def test_load_cifar_removes_dead_downloads_and_extractions(tmp_path, live_child):
    root = tmp_path / "cache"
    root.mkdir()
    dead = dead_pid()
    part = root / f"cifar-10-binary.tar.gz.pid{dead}.k2j4.part"
    part.write_bytes(b"x" * 100)
    extract = root / f".extract-pid{dead}-8fj2k1"
    (extract / "cifar-10-batches-bin").mkdir(parents=True)
    (extract / "cifar-10-batches-bin" / "data_batch_1.bin").write_bytes(b"x")
    live_part = root / f"cifar-10-binary.tar.gz.pid{live_child.pid}.k2j4.part"
    live_part.write_bytes(b"still downloading")
    live_extract = root / f".extract-pid{live_child.pid}-aaaa"
    live_extract.mkdir()
    with pytest.raises(data.DataNotFoundError):
        data.load_cifar("cifar10", data_dir=root, download=False)
    assert not part.exists() and not extract.exists()
    assert live_part.exists() and live_extract.exists()


def test_failed_download_leaves_no_empty_cache_folder(tmp_path, monkeypatch):
    missing = (tmp_path / "no-such-server" / "cifar-10-binary.tar.gz").as_uri()
    use_tiny_spec(monkeypatch, "cifar10", binary={"url": missing})
    cache = tmp_path / "home" / ".cache" / "minivit"
    (tmp_path / "home").mkdir()
    with pytest.raises(data.DataNotFoundError):
        data.load_cifar("cifar10", data_dir=cache, download=True)
    assert list((tmp_path / "home").iterdir()) == []                     # .cache/minivit removed again


def test_checkpoint_files_follow_the_umask(tmp_path):
    old = os.umask(0o022)
    try:
        Trainer(tiny_cfg(epochs=1), tmp_path, device="cpu", dataset_obj=synthetic(), progress=False).fit()
    finally:
        os.umask(old)
    for name in ("last.npz", "best.npz", "metrics.csv", "config.json"):
        assert (tmp_path / name).stat().st_mode & 0o777 == 0o644, name
    np.load(tmp_path / "last.npz")


def test_resume_without_a_checkpoint_is_refused_before_loading_anything(tmp_path, capsys):
    out = tmp_path / "run"
    out.mkdir()
    (out / "config.json").write_text("{}")          # a run killed before its first checkpoint
    assert main(["train", "--preset", "smoke", "--resume", "--out", str(out),
                 "--data-dir", str(tmp_path / "nodata")]) == 2
    err = capsys.readouterr().err
    assert "no checkpoint" in err and "--overwrite" in err and "not found" not in err   # no data was looked for
    assert main(["train", "--preset", "smoke", "--resume", "--out", str(tmp_path / "none"),
                 "--data-dir", str(tmp_path / "nodata")]) == 2
    assert not (tmp_path / "none").exists()                                         # no folder left behind


def test_lock_without_flock_decides_by_the_pid(tmp_path, monkeypatch, live_child):
    """Where flock is missing (Windows), a lock file naming a dead process is stale, one naming
    a live process is respected."""
    import minivit.train.runfolder

    monkeypatch.setattr(minivit.train.runfolder, "fcntl", None)
    out = tmp_path / "run"
    out.mkdir()
    (out / ".lock").write_text(f"{dead_pid()}\n")
    with RunLock(out):
        assert (out / ".lock").read_text().strip() == str(os.getpid())
    (out / ".lock").write_text(f"{live_child.pid}\n")
    with pytest.raises(RunFolderLocked, match=f"process {live_child.pid}.*delete the lock file"):
        RunLock(out).acquire()
    assert (out / ".lock").read_text().strip() == str(live_child.pid)
