"""Verified download and safe extraction of the CIFAR archives.

Nothing is used before its MD5 matched the official one: :func:`download_file` checks the bytes
as they arrive and renames the file into place only when they match; :func:`verify_md5` checks a
file already on disk; :func:`extract_archive` opens only verified archives, refuses unsafe members
and renames the extracted folder into place at the end. The search order that decides what to
download or extract is :func:`minivit.data.cifar.load_cifar`'s.
"""
from __future__ import annotations

import hashlib
import http.client
import os
import shutil
import tarfile
import urllib.request
from pathlib import Path, PurePosixPath

from tqdm import tqdm

from minivit.data.errors import DataIntegrityError, DataNotFoundError
from minivit.storage.tempfiles import temp_dir_in, temp_file_for


# --------------------------------------------------------------------------
# Checksums and download
# --------------------------------------------------------------------------
def md5_of_file(path: str | os.PathLike, chunk_size: int = 1 << 20) -> str:
    """Hex MD5 of a file, read in chunks (MD5 is used as a checksum, not for security)."""
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as f:
        while chunk := f.read(chunk_size):
            digest.update(chunk)
    return digest.hexdigest()


def verify_md5(path: Path, expected_md5: str, expected_size: int | None = None) -> None:
    """Raise :class:`DataIntegrityError` unless the file's MD5 is ``expected_md5``."""
    actual = md5_of_file(path)
    if actual != expected_md5:
        size = path.stat().st_size
        size_note = f"{size} bytes"
        if expected_size is not None:
            size_note += f", expected {expected_size} bytes"
        raise DataIntegrityError(
            f"{path} is corrupt or truncated: its MD5 is {actual}, expected {expected_md5} "
            f"({size_note}). It was not used. Delete it and download it again."
        )


def download_file(url: str, dest: Path, expected_md5: str, progress: bool = True) -> None:
    """Download ``url`` to ``dest`` with a progress bar, atomically.

    The bytes go to a temporary file in ``dest``'s directory; only when the
    download is complete *and* its MD5 matches is it renamed to ``dest``
    (``os.replace``). On any failure the temporary file is removed, and so are the
    folders this call created for ``dest`` (a failed first download leaves no empty cache folder).
    The temporary name carries this process's id (a ``kill -9`` leftover is removed by the next
    :func:`load_cifar`, see ``minivit.storage.tempfiles``); the archive gets mode 0666 minus the umask.
    Raises :class:`DataNotFoundError` when the URL cannot be fetched and
    :class:`DataIntegrityError` when the MD5 does not match.
    """
    created = [d for d in (dest.parent, *dest.parent.parents) if not d.exists()]
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = temp_file_for(dest, ".part")
    ok = False
    try:
        digest = hashlib.md5(usedforsecurity=False)
        try:
            with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=60) as response:
                total = response.headers.get("Content-Length")
                with tqdm(
                    total=int(total) if total else None,
                    unit="B",
                    unit_scale=True,
                    unit_divisor=1024,
                    desc=dest.name,
                    disable=not progress,
                ) as bar:
                    while chunk := response.read(1 << 20):
                        out.write(chunk)
                        digest.update(chunk)
                        bar.update(len(chunk))
        except (OSError, http.client.HTTPException) as err:
            # URLError, HTTPError, timeouts and connection resets are OSErrors;
            # a connection dropped mid-body raises http.client.IncompleteRead.
            raise DataNotFoundError(f"could not download {url}: {err}") from err
        actual = digest.hexdigest()
        if actual != expected_md5:
            raise DataIntegrityError(
                f"download of {url} is corrupt or incomplete: MD5 {actual}, expected "
                f"{expected_md5} ({tmp.stat().st_size} bytes received). Nothing was saved."
            )
        os.replace(tmp, dest)
        ok = True
    finally:
        if tmp.exists():
            tmp.unlink()
        for d in created if not ok else ():       # innermost first; only folders left empty
            try:
                d.rmdir()
            except OSError:
                break


# --------------------------------------------------------------------------
# Safe extraction
# --------------------------------------------------------------------------
def extract_archive(archive: Path, folder: str) -> Path:
    """Extract a *verified* ``.tar.gz`` into its directory and return ``archive.parent / folder``.

    Members with absolute paths or ``..`` and anything that is not a plain file
    or folder (links, devices) are rejected; ``filter='data'`` is used where
    Python supports it. Extraction goes to a temporary folder which is renamed
    into place at the end, so an interrupted run never leaves a half folder (and one killed
    outright leaves ``.extract-pid<id>-*``, removed by the next :func:`load_cifar`).
    """
    data_dir = archive.parent
    target = data_dir / folder
    tmp = temp_dir_in(data_dir, ".extract-")
    try:
        try:
            with tarfile.open(archive, "r:gz") as tar:
                members = tar.getmembers()
                for m in members:
                    parts = PurePosixPath(m.name).parts
                    if m.name.startswith(("/", "\\")) or ".." in parts:
                        raise DataIntegrityError(f"{archive}: unsafe path in archive: {m.name!r}")
                    if not (m.isfile() or m.isdir()):
                        raise DataIntegrityError(
                            f"{archive}: unexpected member {m.name!r} (not a plain file or folder)"
                        )
                if hasattr(tarfile, "data_filter"):
                    tar.extractall(tmp, members=members, filter="data")
                else:  # Python without the extraction filters: the checks above are our filter
                    tar.extractall(tmp, members=members)
        except (tarfile.TarError, EOFError, OSError) as err:
            raise DataIntegrityError(f"{archive} could not be extracted: {err}") from err
        if not (tmp / folder).is_dir():
            raise DataIntegrityError(f"{archive} does not contain the expected folder {folder}/")
        if not target.exists():  # another process may have extracted it meanwhile
            os.replace(tmp / folder, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target
