"""benchmarks/budget_realtime.py's busy load (the machine turning slower in the middle of a run): it
starts when asked, never before, and no busy process outlives the run. No wall-clock bound is asserted
on the run itself (that is the benchmark's report, not a test)."""
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import budget_realtime  # noqa: E402


def test_the_busy_load_starts_late_and_is_killed_with_the_block():
    with budget_realtime.busy_load(2, after_s=0.2) as procs:
        assert procs == []                                   # not yet
        for _ in range(200):
            if len(procs) == 2:
                break
            time.sleep(0.05)
        assert len(procs) == 2 and all(p.poll() is None for p in procs)
    assert all(p.returncode is not None for p in procs)      # killed and reaped


def test_no_load_unless_asked_and_a_block_ending_first_starts_none():
    with budget_realtime.busy_load(2, after_s=None) as procs:
        pass
    assert procs == []
    with budget_realtime.busy_load(2, after_s=30.0) as procs:
        pass                                                 # the run ended before the load was due
    assert procs == []


def test_minivit_root_must_be_a_checkout(tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        budget_realtime.main(["--minivit-root", str(tmp_path), "--runs", "0"])
    assert e.value.code == 2 and "expected a minivit checkout" in capsys.readouterr().err
