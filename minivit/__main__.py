"""Command line: ``python -m minivit {info,gradcheck,bench,train,eval,...} [options]``."""
from __future__ import annotations

import argparse
import json
import sys


def cmd_info(args):
    from minivit.backend import info

    for k, v in info().items():
        print(f"{k:>16}: {v}")
    return 0


def cmd_gradcheck(args):
    from minivit.gradcheck import KEY_BIAS_NOTE, run_all

    ok = run_all(seed=args.seed)
    print("\nNote: " + KEY_BIAS_NOTE.replace("\n", " "))
    return 0 if ok else 1


def cmd_bench(args):
    from minivit.bench import bench, format_report

    r = bench(preset=args.preset, batch_size=args.batch_size, device=args.device, steps=args.steps, warmup=args.warmup)
    print(json.dumps(r) if args.json else format_report(r))
    return 0


def build_parser():
    from minivit.model import PRESETS

    p = argparse.ArgumentParser(prog="python -m minivit", description="minivit: a Vision Transformer in NumPy, by hand.")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    s = sub.add_parser("info", help="print backend, device and library versions")
    s.set_defaults(func=cmd_info)

    s = sub.add_parser("gradcheck", help="check every backward pass against finite differences (float64)")
    s.add_argument("--seed", type=int, default=0)
    s.set_defaults(func=cmd_gradcheck)

    s = sub.add_parser("bench", help="time a training step (forward + backward + AdamW)")
    s.add_argument("--preset", default="cifar", choices=sorted(PRESETS))
    s.add_argument("--batch-size", type=int, default=128)
    s.add_argument("--device", default=None, choices=["auto", "cpu", "gpu"])
    s.add_argument("--steps", type=int, default=10)
    s.add_argument("--warmup", type=int, default=2)
    s.add_argument("--json", action="store_true", help="print one JSON object")
    s.set_defaults(func=cmd_bench)
    return p


def main(argv=None):
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except (ValueError, RuntimeError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
