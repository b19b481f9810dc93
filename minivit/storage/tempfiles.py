"""Temporary files that name their owner, and the cleanup of those a dead process left behind.

minivit writes every output through a temporary file in the same folder, renamed into place when
complete (a checkpoint, ``metrics.csv``, a download), and extracts archives into a temporary folder.
A process killed with ``kill -9`` cannot remove them, so each one carries the id of the process
that made it::

    last.npz.pid4242.k2j4h1x8.tmp           checkpoints and metrics (minivit.storage.checkpoint, minivit.train.trainer)
    cifar-10-binary.tar.gz.pid4242.3sd9.part a download (minivit.data.cifar)
    .extract-pid4242-8fj2k1                  an archive being extracted (minivit.data.cifar)

:func:`remove_stale` deletes those whose process no longer runs, and never those of a live one
(another trainer in the same folder, a download in another terminal). Files without a pid tag
(written by an older minivit) are left alone: nothing says who owns them.

Temporary files get the usual mode of a new file, 0666 minus the umask (``tempfile.mkstemp``
alone gives 0600), so a checkpoint is as readable as every other output.
"""
from __future__ import annotations

import contextlib
import os
import re
import shutil
import tempfile
from pathlib import Path

_PID_TAG = re.compile(r"(?:^|[.-])pid(\d+)[.-]")


def pid_tag() -> str:
    """``pid<this process's id>``: the owner mark put in every temporary name."""
    return f"pid{os.getpid()}"


def owner_pid(name: str) -> int | None:
    """The process id a temporary file's name carries, or None (no tag)."""
    m = _PID_TAG.search(name)
    return int(m.group(1)) if m else None


def pid_alive(pid: int) -> bool:
    """Whether a process with this id runs on this machine (a process of another user counts)."""
    if pid <= 0:
        return False
    if os.name == "nt":          # os.kill(pid, 0) would terminate it on Windows: never guess there
        return True
    try:
        os.kill(pid, 0)          # signal 0: no signal is sent, only the existence check is made
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def file_mode() -> int:
    """0666 minus the umask: the mode ``open()`` gives a new file."""
    mask = os.umask(0)           # the only portable way to read the umask is to set it
    os.umask(mask)
    return 0o666 & ~mask


def temp_file_for(path, suffix: str = ".tmp"):
    """A new temporary file next to ``path``, tagged with this process's id, mode 0666 - umask.

    returns: (fd, tmp_path), an open file descriptor and the temporary file's Path."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f"{path.name}.{pid_tag()}.", suffix=suffix, dir=path.parent)
    try:
        os.chmod(tmp, file_mode())
    except OSError:              # a file system without modes: keep mkstemp's
        pass
    return fd, Path(tmp)


@contextlib.contextmanager
def atomic_file(path, mode: str = "w", fsync: bool = False):
    """Open a temporary file next to ``path`` (:func:`temp_file_for`) for writing; when the block
    ends without an error, rename it into place (``os.replace``), on any error remove it.
    fsync: flush the bytes to the disk before the rename (a checkpoint)."""
    fd, tmp = temp_file_for(path, ".tmp")
    try:
        with os.fdopen(fd, mode, **({} if "b" in mode else {"newline": ""})) as f:
            yield f
            if fsync:
                f.flush()
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def temp_dir_in(parent, prefix: str) -> Path:
    """A new temporary folder in ``parent`` named ``<prefix>pid<id>-XXXX``."""
    return Path(tempfile.mkdtemp(prefix=f"{prefix}{pid_tag()}-", dir=parent))


def remove_stale(folder, patterns=("*.tmp",)) -> list[Path]:
    """Delete the entries of ``folder`` matching ``patterns`` left by a process that no longer runs.

    Only pid-tagged names are considered; this process's own and those of live processes are kept.
    returns: the removed paths."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    removed = []
    for pattern in patterns:
        for p in sorted(folder.glob(pattern)):
            pid = owner_pid(p.name)
            if pid is None or pid == os.getpid() or pid_alive(pid):
                continue
            try:
                if p.is_dir() and not p.is_symlink():
                    shutil.rmtree(p)
                else:
                    p.unlink()
                removed.append(p)
            except FileNotFoundError:      # removed meanwhile by another cleaner
                pass
    return removed
