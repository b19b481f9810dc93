"""Isolating the learner's code when the grader runs as root (as on Gradescope).

Then every topic's child process (``child.py``), after loading the grader's own modules and before
importing the learner's file, drops to an unprivileged user id of its own (``Jail.uid``, a number
no account and no running process uses), in a session and process group of its own, with hard
resource limits it cannot raise (``limits``): CPU time, address space, open files, file size,
processes. It reads a copy of the exercise files in a folder it cannot write, and works in a
scratch folder of its own. After each topic every process of that user is killed (``kill_all``:
grandchildren that left the session included) before the next topic starts, so that nothing the
learner's code started is alive when the grader writes its results.

Not root (a learner grading at home): the child runs as today, as the learner; ``NOTICE`` says so.
"""
from __future__ import annotations

import os
import secrets
import shutil
import signal
import stat
import tempfile
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

NOTICE = ("note: grading without isolation (not running as root): your code runs as you, under the time "
          "limit only; an autograder runs the grader as root, which isolates it")
UID_RANGE = (40000, 60000)           # where a free user id is looked for
FILE_LIMIT_BYTES = 8 * 2 ** 20 + 2 ** 16
OPEN_FILES = 64
EXTRA_PROCESSES = 8                  # processes/threads the learner's code may add to the child's own
ADDRESS_SPACE_BYTES = 8 * 2 ** 30    # at least; more when the child already uses more


def isolating():
    """True when the grader can isolate the learner's code (POSIX, running as root)."""
    return hasattr(os, "geteuid") and os.geteuid() == 0


def _mapped(path, ident):
    """``ident`` is mapped in this user namespace (/proc/self/uid_map or gid_map; True without one)."""
    try:
        lines = Path(path).read_text().split("\n")
    except OSError:
        return True
    return any(int(a) <= ident < int(a) + int(n) for a, _, n in (ln.split() for ln in lines if ln.strip()))


def processes_of(uid):
    """The process ids (zombies left out) whose real, effective or saved user id is ``uid``."""
    out = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            text = Path(entry.path, "status").read_text()
        except OSError:
            continue
        fields = dict(line.split(":", 1) for line in text.splitlines() if ":" in line)
        if fields.get("State", "").strip().startswith("Z"):
            continue
        if str(uid) in fields.get("Uid", "").split()[:3]:
            out.append(int(entry.name))
    return out


def free_uid():
    """A user id (used as the group id too) no account and no process uses, mapped in this namespace."""
    import grp
    import pwd

    taken = {p.pw_uid for p in pwd.getpwall()} | {g.gr_gid for g in grp.getgrall()}
    lo, hi = UID_RANGE
    start = lo + secrets.randbelow(hi - lo)
    for k in range(hi - lo):
        uid = lo + (start - lo + k) % (hi - lo)
        if uid not in taken and _mapped("/proc/self/uid_map", uid) and _mapped("/proc/self/gid_map", uid) \
                and not processes_of(uid):
            return uid
    raise RuntimeError(f"isolation cannot start: no free user id in {lo}..{hi}")


def kill_all(uid, tries=200):
    """Kill every process of ``uid`` (``kill(-1, SIGKILL)`` from a helper running as ``uid``), until none is left."""
    for _ in range(tries):
        if not processes_of(uid):
            return
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")        # "fork() with threads": the helper only calls setuid and kill
            pid = os.fork()
        if pid == 0:
            try:
                os.setgroups([])
                os.setgid(uid)
                os.setuid(uid)
                os.kill(-1, signal.SIGKILL)
            finally:
                os._exit(0)
        os.waitpid(pid, 0)
        time.sleep(0.005)
    raise RuntimeError(f"could not stop the processes of user {uid} (the learner's code): grading stopped")


def _reachable(folder):
    """Every folder above ``folder`` lets other users through (the child must reach the copy)."""
    for p in [Path(folder), *Path(folder).parents]:
        if not os.stat(p).st_mode & stat.S_IXOTH:
            return p
    return None


@dataclass
class Jail:
    """One grading run's isolation: the user id, the read-only copy of the exercise files."""

    uid: int
    folder: Path                # the copy of the exercise files (root's, readable by all)

    @classmethod
    def open(cls, source, files):
        """Copy ``files`` (those that exist) of the exercises folder ``source`` into a fresh folder."""
        uid = free_uid()
        folder = Path(tempfile.mkdtemp(prefix="minivit-grade-"))
        blocked = _reachable(folder.parent)
        if blocked is not None:
            shutil.rmtree(folder, ignore_errors=True)
            raise RuntimeError(f"isolation cannot start: other users cannot enter {blocked} (the temporary "
                               "folder); set TMPDIR to a folder they can enter")
        for name in files:
            if (Path(source) / name).is_file():
                shutil.copyfile(Path(source) / name, folder / name)
                os.chmod(folder / name, 0o644)
        os.chmod(folder, 0o755)
        return cls(uid, folder)

    def scratch(self):
        """A fresh working folder for one child, owned by the jail's user."""
        d = tempfile.mkdtemp(prefix="minivit-scratch-", dir=self.folder)
        os.chown(d, self.uid, self.uid)
        return d

    def child_args(self, timeout):
        """What the child needs to lock itself in (``enter``)."""
        cpu = int(timeout * max(1, os.cpu_count() or 1)) + 10
        return dict(uid=self.uid, cpu_s=cpu, scratch=self.scratch())

    def clean(self):
        """After a topic: no process of the jail's user is left."""
        kill_all(self.uid)

    def close(self):
        try:
            kill_all(self.uid)
        finally:
            shutil.rmtree(self.folder, ignore_errors=True)


def _threads():
    try:
        return len(os.listdir("/proc/self/task"))
    except OSError:
        return 1


def enter(uid, cpu_s, scratch):
    """In the child, before the learner's code runs: a session of its own, hard limits, the jail's
    user and group (no way back), the scratch folder as the working folder."""
    import resource

    os.setsid()
    try:
        vm = int(Path("/proc/self/statm").read_text().split()[0]) * resource.getpagesize()
    except (OSError, ValueError, IndexError):
        vm = 0
    limits = [(resource.RLIMIT_CPU, cpu_s), (resource.RLIMIT_FSIZE, FILE_LIMIT_BYTES),
              (resource.RLIMIT_NOFILE, OPEN_FILES), (resource.RLIMIT_CORE, 0),
              (resource.RLIMIT_AS, max(ADDRESS_SPACE_BYTES, vm + 4 * 2 ** 30)),
              (resource.RLIMIT_NPROC, _threads() + EXTRA_PROCESSES)]
    for what, value in limits:
        resource.setrlimit(what, (value, value))
    os.setgroups([])
    os.setgid(uid)
    os.setuid(uid)
    if os.getuid() != uid or os.geteuid() != uid:
        raise RuntimeError("isolation failed: the child still has its old user id")
    os.chdir(scratch)
    os.environ["HOME"] = scratch
