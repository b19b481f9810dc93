"""The rules of a run folder (``train --out DIR``, ``finetune --out DIR``): never lose a run.

* A folder that holds a run (a ``config.json``, a ``metrics.csv`` or any ``.npz``) is only
  continued (``--resume``) or, with ``--overwrite``, moved aside whole to ``DIR.old-<timestamp>``;
  otherwise the trainer refuses to start (:class:`RunFolderError`). Nothing is ever deleted.
* One trainer at a time: :class:`RunLock` holds ``DIR/.lock`` (it contains the trainer's process
  id) for as long as the run goes on. A second trainer on the same folder is refused
  (:class:`RunFolderLocked`). The lock is the operating system's (``flock``): it goes away with
  its process, even one killed with ``kill -9``, so a lock file left behind is recognized as stale
  and taken over. Where ``flock`` is missing (Windows), the process id in the file decides.
* Temporary files that a dead trainer left (``*.tmp``) are removed when the next one starts
  (:func:`minivit.storage.tempfiles.remove_stale`).
"""
from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path

from minivit.storage.tempfiles import file_mode, pid_alive, remove_stale

try:
    import fcntl
except ImportError:              # Windows
    fcntl = None

LOCK_NAME = ".lock"


class RunFolderError(ValueError):
    """The output folder holds a run that this command would replace (bad input: exit code 2)."""


class RunFolderLocked(RuntimeError):
    """Another live process is training into the same output folder."""


def run_files(folder) -> list[str]:
    """The names in ``folder`` that make it hold a run: config.json, metrics.csv, any .npz."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    return sorted(p.name for p in folder.iterdir()
                  if p.name in ("config.json", "metrics.csv") or (p.suffix == ".npz" and p.is_file()))


def move_aside(folder) -> Path:
    """Move everything in ``folder`` (but its lock) into a new ``<folder>.old-<timestamp>``.

    returns: the new folder. The run folder itself stays (so its lock stays held)."""
    folder = Path(folder).resolve()                 # so that '--out .' has a name to extend
    stamp = time.strftime("%Y%m%d-%H%M%S")
    old, n = folder.with_name(f"{folder.name}.old-{stamp}"), 1
    while old.exists():
        old, n = folder.with_name(f"{folder.name}.old-{stamp}-{n}"), n + 1
    old.mkdir()
    for p in sorted(folder.iterdir()):
        if p.name != LOCK_NAME:
            os.replace(p, old / p.name)
    return old


class RunLock:
    """``DIR/.lock``, held by one process at a time; reentrant within that process.

    Use as ``with RunLock(folder): ...`` or ``acquire()`` / ``release()``."""

    _held: dict = {}             # resolved lock path -> [file descriptor, count], for this process

    def __init__(self, folder):
        self.folder = Path(folder)
        self.path = self.folder / LOCK_NAME

    def __enter__(self):
        return self.acquire()

    def __exit__(self, *exc):
        self.release()

    def _key(self):
        return str(self.path.resolve())

    def acquire(self):
        """Take the lock or raise :class:`RunFolderLocked` naming the process that holds it."""
        self.folder.mkdir(parents=True, exist_ok=True)
        key = self._key()
        if key in RunLock._held:
            RunLock._held[key][1] += 1
            return self
        fd = self._lock_flock() if fcntl is not None else self._lock_by_pid()
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        RunLock._held[key] = [fd, 1]
        return self

    def release(self):
        key = self._key()
        entry = RunLock._held.get(key)
        if entry is None:
            return
        entry[1] -= 1
        if entry[1] > 0:
            return
        del RunLock._held[key]
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()                # unlinked while still locked, then unlocked by close
        os.close(entry[0])

    def holder(self) -> str:
        """The process id written in the lock file (for messages)."""
        try:
            return self.path.read_text().strip() or "unknown"
        except OSError:
            return "unknown"

    def _refuse(self, hint=""):
        raise RunFolderLocked(
            f"{self.folder} is in use by another trainer (process {self.holder()}, lock file {self.path}); "
            f"wait for it to finish, or choose another --out folder{hint}")

    def _lock_flock(self):
        for _ in range(10):
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, file_mode())
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                self._refuse()
            try:                              # the file we locked must still be the one at the path
                if os.fstat(fd).st_ino == os.stat(self.path).st_ino:
                    return fd
            except FileNotFoundError:
                pass
            os.close(fd)                      # its holder unlinked it as we opened it: try again
        raise RunFolderLocked(f"could not lock {self.path}")

    def _lock_by_pid(self):
        for _ in range(2):
            try:
                return os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_EXCL, file_mode())
            except FileExistsError:
                pid = self.holder()
                if pid.isdigit() and pid_alive(int(pid)):
                    self._refuse(" (if no trainer runs, delete the lock file)")
                with contextlib.suppress(FileNotFoundError):
                    self.path.unlink()        # stale: its process no longer runs
        self._refuse()


@contextlib.contextmanager
def claim_run_folder(folder, resume: bool = False, overwrite: bool = False):
    """Hold ``folder`` for a training run: lock it, apply the folder rules, clean stale files.

    resume: continue the run in the folder (its ``last.npz``). overwrite: move an existing run
    aside to ``<folder>.old-<timestamp>`` first. Neither, and the folder holds a run:
    :class:`RunFolderError`, which names the three ways on."""
    folder = Path(folder)
    if resume and overwrite:
        raise RunFolderError("--resume continues the run in the folder and --overwrite moves it aside: "
                             "use one of them")
    if folder.exists() and not folder.is_dir():
        raise RunFolderError(f"--out {folder} is a file; expected a folder")
    if resume and not (folder / "last.npz").is_file():
        found = run_files(folder)
        raise RunFolderError(f"--resume: no checkpoint {folder / 'last.npz'} to resume from" + (
            f"; the run there ({', '.join(found)}) stopped before its first checkpoint: start it again "
            "with --overwrite" if found else ""))
    new = not folder.exists()
    try:
        with RunLock(folder):
            found = run_files(folder)
            if found and not resume:
                if not overwrite:
                    raise RunFolderError(
                        f"{folder} already holds a run ({', '.join(found)}); add --resume to continue it, "
                        f"pass a new --out folder, or add --overwrite to move it aside to {folder}.old-<timestamp>")
                print(f"--overwrite: moved the run in {folder} aside to {move_aside(folder)}")
            remove_stale(folder, ("*.tmp",))
            yield folder
    finally:
        if new:                                 # made for a run that wrote nothing (an error): remove it
            with contextlib.suppress(OSError):
                folder.rmdir()
