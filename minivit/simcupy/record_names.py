"""Record CuPy's public names into cupy_names.json (run where CuPy is installed; no GPU needed).

How cupy_names.json was made (CuPy imports without a GPU; only the first allocation fails):

    pip download --no-deps cupy-cuda12x==13.6.0 -d w13      # and ==14.2.0 -d w14
    python -m venv --system-site-packages v13 && v13/bin/pip install --no-deps w13/*.whl fastrlock
    v13/bin/python -m minivit.simcupy.record_names minivit/simcupy/cupy_names.json   # adds 13.6.0
    (14.x also needs cuda-pathfinder)

Each run adds (or replaces) one version's entry; the simulation offers the names common to all.
"""
import json
import sys
from pathlib import Path


def names(obj, dunder=False):
    return sorted(n for n in dir(obj) if (n.startswith("__") if dunder else not n.startswith("_")))


def main(path):
    import cupy
    import cupy.linalg
    import cupy.random

    path = Path(path)
    data = json.loads(path.read_text()) if path.exists() else {"versions": {}}
    data["versions"][cupy.__version__] = {
        "cupy": names(cupy), "cupy.random": names(cupy.random), "cupy.linalg": names(cupy.linalg),
        "cupy.ndarray": names(cupy.ndarray), "cupy.ndarray dunders": names(cupy.ndarray, dunder=True),
        "cupy.random.Generator": names(cupy.random.Generator), "cupy.ufunc": names(cupy.ufunc),
    }
    path.write_text(json.dumps(data, indent=0, sort_keys=True) + "\n")
    print(f"{path}: CuPy {cupy.__version__} recorded")


if __name__ == "__main__":
    main(sys.argv[1])
