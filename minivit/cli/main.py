"""Command line: ``python -m minivit {info,gradcheck,bench,train,eval,...} [options]``.

Here: the parser (one subparser per command) and ``main``, the one place every failure is reported.
The commands themselves (``cmd_NAME(args)``) are in minivit/cli/commands.py; the argument types in
minivit/cli/arguments.py."""
from __future__ import annotations

import argparse
import sys
import traceback

# first (imported for its side effect): without /proc, this import's time stands in for the process's start
from minivit.train.budget import process_started  # noqa: F401
from minivit.cli.arguments import (OUT_FOLDERS, Defaults, Parser, data_source, duration, folder, fraction,
                               nonnegative_int, positive_float, positive_int, resize_stages, step_count, steps_plan)
from minivit.cli.errors import exit_code, format_error
from minivit.cli.commands import (cmd_bench, cmd_eval, cmd_finetune, cmd_fused, cmd_grade, cmd_gradcheck,  # noqa: F401
                              cmd_hint, cmd_info, cmd_inspect, cmd_pack, cmd_train, gradescope_file)


def build_parser():
    from minivit.model import PRESETS

    p = Parser(prog="python -m minivit", description="minivit: a Vision Transformer in NumPy, by hand.")
    p.add_argument("--debug", action="store_true", help="on an error, show the Python traceback too")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    s = sub.add_parser("info", help="print backend, device and library versions")
    s.set_defaults(func=cmd_info)

    s = sub.add_parser("gradcheck", help="check every backward pass against finite differences (float64)")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--device", default=None, choices=["auto", "cpu", "gpu"],
                   help="run the checks on this device (default: cpu; gpu: CuPy, still float64)")
    s.set_defaults(func=cmd_gradcheck)

    s = sub.add_parser("fused", help="the fused GPU kernels: which may run (MINIVIT_FUSED), and --verify on a GPU")
    s.add_argument("--verify", nargs="*", default=None, metavar="KERNEL",
                   help="check these kernels (default: all) against their plain twins on the GPU")
    s.add_argument("--json", default=None, metavar="FILE", help="with --verify: write the results to FILE")
    s.add_argument("--record", action="store_true",
                   help="with --verify: add the kernels that pass to the table of verified kernels")
    s.set_defaults(func=cmd_fused)

    s = sub.add_parser("pack", help="write a compact subset of CIFAR into one .npz file (e.g. for a GPU machine)")
    s.add_argument("--out", required=True, help="the .npz file to write")
    s.add_argument("--train", type=positive_int, default=10000, help="number of training images (default 10000)")
    s.add_argument("--test", type=positive_int, default=2000, help="number of test images (default 2000)")
    s.add_argument("--dataset", default="cifar10", choices=["cifar10", "cifar100"])
    s.add_argument("--data-dir", default=None, help="where CIFAR is (default: $MINIVIT_DATA or ~/.cache/minivit)")
    s.add_argument("--seed", type=int, default=0, help="seed of the random choice of images")
    s.set_defaults(func=cmd_pack)

    from minivit.grading import TOPIC_NAMES

    s = sub.add_parser("grade", help="grade your exercises (exercises/): points and feedback per topic")
    s.add_argument("topics", nargs="*", metavar="TOPIC",
                   help=f"topics to grade (default: all): {', '.join(TOPIC_NAMES)}")
    s.add_argument("--path", default=None, help="the exercises folder (default: ./exercises)")
    s.add_argument("--json", action="store_true", help="print one JSON object (per-topic and total points)")
    s.add_argument("--list", action="store_true", help="list the topics and their files")
    s.add_argument("-v", "--verbose", action="store_true", help="list passed checks' details too")
    s.add_argument("--only", nargs="+", default=None, metavar="FUNCTION",
                   help="grade only the checks of these functions (e.g. grade mlp --only gelu_forward)")
    s.add_argument("--timeout", type=float, default=30.0, metavar="S",
                   help="wall-clock limit per topic in seconds, the import of the file included (default 30, "
                        "at most 86400)")
    s.add_argument("--gradescope", default=None, metavar="FILE", type=gradescope_file,
                   help="also write Gradescope's autograder results (results.json) to FILE")
    s.set_defaults(func=cmd_grade)

    s = sub.add_parser("hint", help="a hint for an exercise function, in three levels (try each before the next)")
    s.add_argument("function", metavar="FUNCTION", help="an exercise function, e.g. layernorm_backward")
    s.add_argument("--level", type=int, default=1, metavar="N",
                   help="1: the approach, 2: the intermediate results, 3: the formula (default 1)")
    s.set_defaults(func=cmd_hint)

    s = sub.add_parser("bench", help="time a training step (forward + backward + AdamW)")
    from minivit.train.trainer import RECIPES

    s.add_argument("--preset", default="cifar", choices=sorted(PRESETS) + sorted(RECIPES),
                   help="a model preset, or a training recipe (its model and threads)")
    s.add_argument("--batch-size", type=positive_int, default=128)
    s.add_argument("--device", default=None, choices=["auto", "cpu", "gpu"])
    s.add_argument("--steps", type=positive_int, default=10)
    s.add_argument("--warmup", type=nonnegative_int, default=2)
    s.add_argument("--json", action="store_true", help="print one JSON object")
    s.add_argument("--no-stages", action="store_true", help="skip the per-stage breakdown")
    s.add_argument("--impl", default="reference", choices=["reference", "fast"],
                   help="time minivit's reference functions or the fast paths of minivit/fast/__init__.py")
    s.add_argument("--threads", type=positive_int, default=None,
                   help="CPU: split each batch over this many threads, one model replica each (as train --threads; "
                        f"default: the recipe's; for a model preset the train default's, {RECIPES['cpu'].threads})")
    s.set_defaults(func=cmd_bench)

    s = sub.add_parser("train", help="train a ViT on CIFAR-10/100", formatter_class=Defaults)
    s.add_argument("--preset", default="cpu", choices=sorted(RECIPES), help="training recipe")
    length = s.add_mutually_exclusive_group()      # a run's length: one of the three
    length.add_argument("--epochs", type=step_count, default=None, help="override the recipe's number of epochs")
    length.add_argument("--time-budget", type=duration, default=None, metavar="T",
                        help="the whole run (loading, calibration, training, evaluations) within T, e.g. 90s, "
                             "60m, 2h: a short calibration fixes the number of steps (recorded in config.json)")
    length.add_argument("--steps", type=steps_plan, default=None, metavar="N",
                        help="train exactly N steps; or replay a budgeted run's plan followed on another machine, "
                             "e.g. 1500,1480@390 (horizon 1500, from step 390 on 1480), as the run prints it")
    s.add_argument("--batch-size", type=positive_int, default=None)
    s.add_argument("--lr", type=positive_float, default=None, help="peak learning rate")
    s.add_argument("--device", default=None, choices=["auto", "cpu", "gpu"])
    s.add_argument("--data-dir", default=None, help="folder holding CIFAR (default: $MINIVIT_DATA or ~/.cache/minivit)")
    s.add_argument("--dataset", default=None, choices=["cifar10", "cifar100"])
    s.add_argument("--subset", type=positive_int, default=None, help="train on only N images")
    s.add_argument("--val-split", type=positive_int, default=None, metavar="N",
                   help="hold out N training images (a fixed choice) and evaluate on them instead of the test "
                        "set: best.npz is chosen on them (for comparing settings; e.g. 5000)")
    s.add_argument("--out", default=None, help="output folder (default: runs/PRESET-DATASET)")
    s.add_argument("--resume", action="store_true", help="continue from OUT/last.npz")
    s.add_argument("--overwrite", action="store_true", help="move a run already in OUT aside to OUT.old-TIMESTAMP")
    s.add_argument("--seed", type=int, default=None)
    s.add_argument("--threads", type=positive_int, default=None,
                   help="CPU: split each batch over this many threads (data parallel; see minivit/fast/parallel.py)")
    s.add_argument("--impl", default="reference", choices=["reference", "exercises", "fast"],
                   help="run minivit's functions, your exercise implementations (see exercises/README.md), "
                        "or the fast paths of minivit/fast/__init__.py (off when MINIVIT_FAST_PATHS=0)")
    s.add_argument("--exercises-path", default=None, help="the exercises folder for --impl exercises")
    opt_in = s.add_argument_group("opt-in training pieces (off by default; see minivit/train/options.py)")
    opt_in.add_argument("--ema-decay", type=fraction, default=None, metavar="D",
                        help="evaluate an exponential moving average of the weights, e.g. 0.999")
    opt_in.add_argument("--flip-tta", action="store_true", help="also report horizontal-flip TTA accuracy")
    opt_in.add_argument("--optimizer", default=None, choices=["adamw", "muon"],
                        help="muon: Muon for the blocks' matrices, AdamW for the rest")
    opt_in.add_argument("--token-drop", type=fraction, default=None, metavar="P",
                        help="drop this fraction of the patch tokens in training (patch dropout)")
    opt_in.add_argument("--resize", type=resize_stages, default=None, metavar="START:SIZE,...",
                        help="progressive resizing, e.g. 0:24,0.5:32 (24 px from the start, 32 px from half the "
                             "steps on; a time budget times each size)")
    s.set_defaults(func=cmd_train)

    s = sub.add_parser("eval", help="test accuracy, per-class table and confusion matrix of a checkpoint")
    s.add_argument("checkpoint")
    s.add_argument("--data-dir", default=None)
    s.add_argument("--device", default=None, choices=["auto", "cpu", "gpu"])
    s.add_argument("--out", default=None, help="folder for confusion.png (default: next to the checkpoint)")
    s.add_argument("--json", action="store_true")
    s.add_argument("--no-progress", action="store_true", help="no progress bar (it goes to stderr)")
    s.add_argument("--flip-tta", action="store_true",
                   help="also report horizontal-flip test-time augmentation (a second forward pass per image)")
    s.add_argument("--images", default=None, metavar="FILE.npz",
                   help="evaluate on these test images instead (arrays x (N, 32, 32, 3) uint8 and y (N,)), e.g. "
                        "the exact official images in cifar10-exact-test-first1017.npz")
    s.set_defaults(func=cmd_eval)
    s = sub.add_parser("inspect", help="analyses of a checkpoint: embedding filters, position similarity, "
                                       "attention distance, attention maps (PNGs)")
    s.add_argument("checkpoint", help="a minivit checkpoint or an official ViT .npz")
    s.add_argument("--out", required=True, help="folder for the PNGs")
    s.add_argument("--data-dir", default=None)
    s.add_argument("--dataset", default=None, choices=["cifar10", "cifar100"],
                   help="test images to use (default: the checkpoint's dataset, else cifar10)")
    s.add_argument("--images", type=positive_int, default=8, help="number of test images for the attention maps")
    s.add_argument("--device", default=None, choices=["auto", "cpu", "gpu"])
    s.set_defaults(func=cmd_inspect)

    from minivit.train.finetune import FINETUNE_RECIPES

    s = sub.add_parser("finetune", help="fine-tune a pre-trained checkpoint (official ViT .npz or minivit) on CIFAR",
                       formatter_class=Defaults)
    s.add_argument("--from", dest="checkpoint", required=True, help="checkpoint to start from")
    s.add_argument("--preset", default="gpu", choices=sorted(FINETUNE_RECIPES), help="fine-tuning recipe")
    s.add_argument("--epochs", type=positive_int, default=None)
    s.add_argument("--batch-size", type=positive_int, default=None)
    s.add_argument("--lr", type=positive_float, default=None, help="peak learning rate (SGD, momentum 0.9)")
    s.add_argument("--image-size", type=positive_int, default=None,
                   help="fine-tuning resolution (default: the checkpoint's; position embeddings are interpolated)")
    s.add_argument("--device", default=None, choices=["auto", "cpu", "gpu"])
    s.add_argument("--data-dir", default=None)
    s.add_argument("--dataset", default=None, choices=["cifar10", "cifar100"])
    s.add_argument("--subset", type=positive_int, default=None, help="train on only N images")
    s.add_argument("--out", default=None, help="output folder (default: runs/finetune-NAME-DATASET)")
    s.add_argument("--resume", action="store_true", help="continue from OUT/last.npz")
    s.add_argument("--overwrite", action="store_true", help="move a run already in OUT aside to OUT.old-TIMESTAMP")
    s.add_argument("--seed", type=int, default=None)
    s.set_defaults(func=cmd_finetune)
    for name, s in sub.choices.items():       # every subcommand: --debug, and folder options checked as folders
        s.add_argument("--debug", action="store_true", help=argparse.SUPPRESS)
        for action in s._actions:
            if action.type is None and action.dest == "data_dir":
                action.type = data_source
            elif action.type is None and action.dest == "out" and name in OUT_FOLDERS:
                action.type = folder
    return p


def main(argv=None):
    """Run one subcommand. Every failure, of any subcommand or option, ends here: one ``error:``
    line on stderr, exit code 2 for bad input and 1 for other failures (``minivit/cli/errors.py``),
    and no traceback unless ``--debug`` is given."""
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    args = None
    try:
        parser = build_parser()
        if not argv:                          # no command at all: show what there is
            parser.print_help(sys.stderr)
        args = parser.parse_args(argv, raise_errors=True)
        from minivit.backend import device_from_env

        device_from_env()                     # a bad $MINIVIT_DEVICE: exit 2 in every command, even one without a device
        return args.func(args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as e:
        if debug:
            traceback.print_exc()
        print(format_error(e, writing_to=getattr(args, "out", None)), file=sys.stderr)
        return exit_code(e)


if __name__ == "__main__":
    sys.exit(main())
