"""How long ``grade`` takes on the reference solutions, per topic (median of several runs).

    python benchmarks/grading_time.py [--runs 5] [TOPIC ...]

Writes the reference code as source text into a temporary exercises folder
(``tests/reference_solutions.write_reference``), grades each topic ``--runs`` times in this process
(one child process per topic and run, as ``python -m minivit grade`` does) and prints the median
seconds per topic, their sum, the points (they must be full marks) and the machine's CPU model.
Compare two commits on the same machine with nothing else running; on a shared machine alternate
them (``--runs 1`` each, several times) and compare the medians of the sums, since the load drifts.
"""
from __future__ import annotations

import argparse
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))


def cpu_model():
    """The CPU's model name (/proc/cpuinfo on Linux; platform.processor() elsewhere)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def main(argv=None):
    from minivit.grading import TOPIC_NAMES, grade
    from reference_solutions import write_reference

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("topics", nargs="*", default=list(TOPIC_NAMES))
    p.add_argument("--runs", type=int, default=5)
    args = p.parse_args(argv)
    print(f"cpu: {cpu_model()} ({platform.python_implementation()} {platform.python_version()})")
    total = 0.0
    with tempfile.TemporaryDirectory() as tmp:
        write_reference(tmp, args.topics)
        for name in args.topics:
            times, points = [], None
            for _ in range(args.runs):
                start = time.perf_counter()
                t = grade([name], tmp)["topics"][name]
                times.append(time.perf_counter() - start)
                points = (t["points"], t["max"])
            med = statistics.median(times)
            total += med
            print(f"{name:<10} median {med:6.2f} s  (runs: {', '.join(f'{x:.2f}' for x in times)})  "
                  f"points {points[0]}/{points[1]}", flush=True)
    print(f"{'sum':<10} median {total:6.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
