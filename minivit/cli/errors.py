"""How the command line reports a failure: one ``error: ...`` line, an exit code, no traceback.

``python -m minivit`` runs every subcommand through :func:`minivit.cli.main.main`, which catches
any exception and hands it here:

* exit code 2 (bad input: something the user named or typed is wrong): ``ValueError`` (so
  ``CheckpointError``, ``DataIntegrityError``, ``UnicodeDecodeError``), ``KeyError``,
  :class:`UsageError` (argparse's complaints), a missing file or folder, a file
  where a folder was expected (or the reverse), a folder that may not be written;
* exit code 1 (any other failure): a full disk and other I/O errors, ``MemoryError``,
  ``RuntimeError`` (e.g. a diverged training run, a GPU that was asked for but is missing),
  and anything unexpected (reported with its type, since it is a bug).

An exception may carry an ``exit_code`` attribute (e.g. a RuntimeError about the user's own
exercise files is bad input: 2), and a ``cli_message`` attribute: the text to show on the command line when it
differs from the Python one (e.g. ``--data-dir DIR`` instead of ``data_dir=...``).
An ``OSError`` without a file name gets the folder the command was writing to, when known.
"""
from __future__ import annotations

import errno


class UsageError(ValueError):
    """A command-line argument is malformed (argparse's ``error``); exit code 2."""


BAD_INPUT = 2
FAILURE = 1

_INPUT_OS_ERRORS = (FileNotFoundError, NotADirectoryError, IsADirectoryError, FileExistsError, PermissionError)
_READ_ONLY = {errno.EROFS, errno.EACCES, errno.EPERM}


def exit_code(e: BaseException) -> int:
    """2 when the input is at fault, 1 otherwise (see the module docstring). An exception may
    decide for itself with an ``exit_code`` attribute."""
    if isinstance(getattr(e, "exit_code", None), int):
        return e.exit_code
    if isinstance(e, (UsageError, ValueError, KeyError)):
        return BAD_INPUT
    if isinstance(e, _INPUT_OS_ERRORS) or (isinstance(e, OSError) and e.errno in _READ_ONLY):
        return BAD_INPUT
    return FAILURE


def message(e: BaseException, writing_to=None) -> str:
    """The text after ``error: `` for ``e``. writing_to: the output folder of the command, if any."""
    text = getattr(e, "cli_message", None)
    if text:
        return text
    if isinstance(e, KeyError):               # str(KeyError('x')) is just "'x'"
        return f"missing key {e.args[0]!r}" if e.args else "missing key"
    if isinstance(e, MemoryError):
        return f"out of memory{f' ({e})' if str(e) else ''}; try a smaller --batch-size"
    if isinstance(e, OSError) and e.strerror:
        where = e.filename if e.filename is not None else writing_to
        reason = e.strerror[0].lower() + e.strerror[1:]
        if e.errno == errno.ENOSPC:
            return f"cannot write {where or 'the output'}: {reason} (free some space or choose another --out)"
        if e.errno in _READ_ONLY:
            return f"cannot write {where or 'the output'}: {reason} (a read-only folder? choose another --out)"
        if isinstance(e, FileNotFoundError):
            return f"{where}: no such file or folder" if where else reason
        return f"{where}: {reason}" if where else reason
    text = str(e) or type(e).__name__
    if exit_code(e) == FAILURE and not isinstance(e, (RuntimeError, OSError)):
        text = f"unexpected {type(e).__name__}: {text} (run again with --debug for the traceback)"
    return text


def format_error(e: BaseException, writing_to=None) -> str:
    """``error: <message>``; any further lines of a long message are indented under it."""
    lines = message(e, writing_to).strip().splitlines() or [type(e).__name__]
    return "\n".join([f"error: {lines[0]}"] + [f"  {line}" if line.strip() else line for line in lines[1:]])
