"""What crosses between the grader and the child process that runs the learner's code.

The child sends back only plain data: NumPy arrays (of numbers), NumPy and Python scalars,
strings, None, and tuples/lists/dicts of those. A forward's cache stays in the child and travels
as a :class:`Handle`; anything else becomes an :class:`Opaque` naming its type. The grader reads
the child's messages with :func:`loads`, which refuses every other class, so nothing the learner's
code builds can run in the grader's process (an unpickled object of the learner's own class
would import the learner's module there).

On the pipe each message is framed (:func:`frame`): a magic number, the payload's length and its
CRC-32, then the pickled ``(sender pid, request number, message)``. :class:`FrameReader` reads one
frame with a deadline and raises :class:`ProtocolError` for anything else (bytes the learner's code
wrote to the pipe, a half-written message), so a stray write costs only the learner's topic.
"""
from __future__ import annotations

import io
import os
import pickle
import select
import struct
import time
import zlib

import numpy as np

MAX_STRING = 10_000
MAGIC = b"MVG\x02"
_HEADER = struct.Struct("!4sQI")          # magic, payload length, CRC-32 of the payload
MAX_MESSAGE = 2 ** 31                     # bytes: far above any result of the checks


class Handle:
    """A value that stays in the child (a forward's cache): the grader only passes it back."""

    def __init__(self, ident):
        self.ident = ident

    def __repr__(self):
        return f"<cache {self.ident}>"


class Opaque:
    """A result that is not plain data (e.g. a generator, a torch tensor): only its type crosses."""

    def __init__(self, type_name):
        self.type_name = type_name

    def __repr__(self):
        return f"<{self.type_name}>"


def encode(x, depth=0):
    """``x`` as plain data (see the module docstring); the child calls this on every result."""
    if depth > 20:
        return Opaque(type(x).__name__)
    if isinstance(x, np.ndarray):
        if x.dtype.kind not in "biufc":
            return Opaque(f"array of dtype {x.dtype}")
        return np.array(x, copy=True, subok=False)         # a subclass becomes a plain ndarray
    if isinstance(x, np.generic):
        return np.asarray(x)[()] if x.dtype.kind in "biufc" else Opaque(type(x).__name__)
    if x is None or type(x) in (bool, int, float, complex):
        return x
    if type(x) is str:
        return x[:MAX_STRING]
    if type(x) in (tuple, list):
        return type(x)(encode(v, depth + 1) for v in x)
    if type(x) is dict and all(type(k) is str for k in x):
        return {k: encode(v, depth + 1) for k, v in x.items()}
    if isinstance(x, Handle):
        return x
    return Opaque(type(x).__name__)


def dumps(msg):
    return pickle.dumps(msg, protocol=pickle.HIGHEST_PROTOCOL)


_ALLOWED = {
    ("builtins", "complex"), ("builtins", "slice"),
    ("numpy", "ndarray"), ("numpy", "dtype"),
    ("numpy.core.multiarray", "_reconstruct"), ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "scalar"),
    ("numpy.core.numeric", "_frombuffer"), ("numpy._core.numeric", "_frombuffer"),
    (__name__, "Handle"), (__name__, "Opaque"),
}


class _Unpickler(pickle.Unpickler):
    def find_class(self, module, name):
        if (module, name) in _ALLOWED or (module == "numpy.dtypes" and name.endswith("DType")):
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"the child sent a {module}.{name}; only plain data may cross")


def loads(data):
    """Unpickle a message from the child, allowing only plain data (see ``_ALLOWED``)."""
    return _Unpickler(io.BytesIO(data)).load()


class ProtocolError(Exception):
    """What came from the child is not a framed message of its own (see the module docstring)."""


def frame(msg):
    """``msg`` pickled and framed, ready for the pipe."""
    payload = dumps(msg)
    return _HEADER.pack(MAGIC, len(payload), zlib.crc32(payload)) + payload


def write_all(fd, data):
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


class FrameReader:
    """Reads framed messages from file descriptor ``fd``, each within a deadline (``time.monotonic``)."""

    def __init__(self, fd):
        self.fd, self.buf = fd, bytearray()

    def _fill(self, n, deadline):
        while len(self.buf) < n:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not select.select([self.fd], [], [], remaining)[0]:
                raise TimeoutError
            chunk = os.read(self.fd, max(n - len(self.buf), 1 << 16))
            if not chunk:
                raise EOFError
            self.buf += chunk

    def read(self, deadline):
        """The next message -> its unpickled ``(pid, number, message)``; TimeoutError, EOFError, ProtocolError."""
        self._fill(_HEADER.size, deadline)
        magic, size, crc = _HEADER.unpack(bytes(self.buf[:_HEADER.size]))
        if magic != MAGIC or size > MAX_MESSAGE:
            raise ProtocolError(f"unexpected bytes {bytes(self.buf[:8])!r}")
        self._fill(_HEADER.size + size, deadline)
        payload = bytes(self.buf[_HEADER.size:_HEADER.size + size])
        del self.buf[:_HEADER.size + size]
        if zlib.crc32(payload) != crc:
            raise ProtocolError("a message with a wrong checksum")
        try:
            msg = loads(payload)
        except Exception as e:
            raise ProtocolError(f"a message that is not plain data ({e})") from None
        if not (type(msg) is tuple and len(msg) == 3 and type(msg[0]) is int and type(msg[1]) is int):
            raise ProtocolError("a message of the wrong form")
        return msg
