"""The names CuPy has, from the real packages (``cupy_names.json``, written by ``record_names.py``).

The simulation offers a name only when every recorded CuPy version has it, so code that runs on
the simulation runs on CuPy 13 and 14 alike."""
import json
from pathlib import Path

_DATA = json.loads((Path(__file__).with_name("cupy_names.json")).read_text())
VERSIONS = sorted(_DATA["versions"])          # e.g. ['13.6.0', '14.2.0']


def common(kind: str) -> frozenset:
    """The names of ``kind`` ('cupy', 'cupy.random', 'cupy.ndarray', ...) in every recorded version."""
    sets = [set(v[kind]) for v in _DATA["versions"].values()]
    return frozenset(set.intersection(*sets))


CUPY = common("cupy")
RANDOM = common("cupy.random")
LINALG = common("cupy.linalg")
NDARRAY = common("cupy.ndarray")
GENERATOR = common("cupy.random.Generator")
# What CuPy's ufuncs accept as keywords: no where=, no subok=, no order= (numpy has them all).
UFUNC_KWARGS = frozenset({"out", "dtype", "casting"})
