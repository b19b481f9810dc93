"""The repository works from a clone folder named ``minivit`` (what ``git clone`` creates).

The stub generator once split source paths on "/minivit/", so in ``.../minivit/minivit/layers`` the
stub headers named ``minivit/minivit/layers/...`` and ``test_stubs_are_up_to_date`` failed there.
"""
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SKIP = shutil.ignore_patterns(".git", ".venv", "runs", "inspect", "__pycache__", "*.egg-info", ".pytest_cache")


def _copy_repo(dest):
    for name in ("minivit", "exercises"):
        shutil.copytree(ROOT / name, dest / name, ignore=SKIP)
    return dest


def test_stubs_are_up_to_date_in_a_clone_folder_named_minivit(tmp_path):
    clone = _copy_repo(tmp_path / "minivit")
    env = dict(os.environ, PYTHONPATH=str(clone))
    code = ("import minivit, sys; from minivit import stubs; "
            "assert minivit.__file__.startswith(sys.argv[1]), minivit.__file__; "
            "text = stubs.render_topic('layernorm'); "
            "assert 'minivit/minivit' not in text and '(minivit/layers/norm.py)' in text, text[:800]")
    r = subprocess.run([sys.executable, "-c", code, str(clone)], cwd=clone, env=env,
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    r = subprocess.run([sys.executable, "-m", "minivit.stubs", "--check"], cwd=clone, env=env,
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
