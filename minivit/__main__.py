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


def cmd_train(args):
    from minivit.train import Trainer, recipe

    cfg = recipe(args.preset, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, dataset=args.dataset,
                 subset=args.subset, seed=args.seed)
    out = args.out or f"runs/{args.preset}-{cfg.dataset}"
    trainer = Trainer(cfg, out, device=args.device, data_dir=args.data_dir)
    if args.resume:
        if not (trainer.out / "last.npz").exists():
            raise FileNotFoundError(f"--resume: no checkpoint {trainer.out / 'last.npz'} to resume from")
        trainer.resume()
        print(f"resuming from {trainer.out / 'last.npz'}: epoch {trainer.epoch + 1}, step {trainer.step_in_epoch}")
    history = trainer.fit()
    if history:
        best = max(history, key=lambda r: r["test_acc"])
        print(f"done: best test accuracy {100 * best['test_acc']:.2f}% (epoch {best['epoch']}); "
              f"outputs in {trainer.out}")
    return 0


def cmd_eval(args):
    from minivit.train import evaluate_checkpoint

    r = evaluate_checkpoint(args.checkpoint, data_dir=args.data_dir, device=args.device, out=args.out)
    if args.json:
        print(json.dumps(r))
        return 0
    print(f"{r['checkpoint']}: {r['dataset']} test accuracy {100 * r['test_acc']:.2f}% (loss {r['test_loss']:.4f})")
    print(f"\n{'class':>12}  accuracy")
    for c, a in r["per_class"].items():
        print(f"{c:>12}  {100 * a:6.2f}%")
    if "confusion_png" in r:
        print(f"\nconfusion matrix: {r['confusion_png']}")
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

    from minivit.train import RECIPES

    s = sub.add_parser("train", help="train a ViT on CIFAR-10/100", formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    s.add_argument("--preset", default="cpu", choices=sorted(RECIPES), help="training recipe")
    s.add_argument("--epochs", type=_positive_int, default=None, help="override the recipe's number of epochs")
    s.add_argument("--batch-size", type=_positive_int, default=None)
    s.add_argument("--lr", type=_positive_float, default=None, help="peak learning rate")
    s.add_argument("--device", default=None, choices=["auto", "cpu", "gpu"])
    s.add_argument("--data-dir", default=None, help="folder holding CIFAR (default: $MINIVIT_DATA or ~/.cache/minivit)")
    s.add_argument("--dataset", default=None, choices=["cifar10", "cifar100"])
    s.add_argument("--subset", type=_positive_int, default=None, help="train on only N images")
    s.add_argument("--out", default=None, help="output folder (default: runs/PRESET-DATASET)")
    s.add_argument("--resume", action="store_true", help="continue from OUT/last.npz")
    s.add_argument("--seed", type=int, default=None)
    s.set_defaults(func=cmd_train)

    s = sub.add_parser("eval", help="test accuracy, per-class table and confusion matrix of a checkpoint")
    s.add_argument("checkpoint")
    s.add_argument("--data-dir", default=None)
    s.add_argument("--device", default=None, choices=["auto", "cpu", "gpu"])
    s.add_argument("--out", default=None, help="folder for confusion.png (default: next to the checkpoint)")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_eval)
    return p


def _positive_int(s):
    v = int(s)
    if v < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {s}")
    return v


def _positive_float(s):
    v = float(s)
    if not v > 0:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {s}")
    return v


def main(argv=None):
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except (ValueError, RuntimeError, FileNotFoundError, KeyError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
