"""The subcommands of ``python -m minivit``: one ``cmd_NAME(args)`` per subcommand, returning the exit code.

Each takes the parsed arguments (minivit/cli/main.py builds the parser and sets ``func``), calls
into the package and prints the outcome. None of them catches an error: every failure goes up to
the one handler in ``minivit.cli.main.main`` (one ``error:`` line, exit 2 or 1). The modules they use
are imported inside each command, so that ``python -m minivit info`` stays quick; ``train`` and ``eval``
look up ``Trainer`` / ``evaluate_checkpoint`` in ``minivit.train.trainer`` at call time (tests replace them there).
"""
from __future__ import annotations

import json
import sys
import time

from minivit.train.budget import process_started


def cmd_info(args):
    from minivit.backend import info

    for k, v in info().items():
        print(f"{k:>16}: {v}")
    return 0


def cmd_gradcheck(args):
    from minivit.gradcheck import KEY_BIAS_NOTE, run_all

    ok = run_all(seed=args.seed, device=args.device)
    print("\nNote: " + KEY_BIAS_NOTE.replace("\n", " "))
    return 0 if ok else 1


def cmd_fused(args):
    from minivit.fast.fused import run_cli

    return run_cli(kernels=args.verify, json_path=args.json, do_record=args.record)


def cmd_pack(args):
    from minivit.data.cifar import load_cifar
    from minivit.data.pack import pack

    ds = load_cifar(args.dataset, args.data_dir)
    r = pack(ds, args.out, n_train=args.train, n_test=args.test, seed=args.seed, dataset=args.dataset)
    print(f"wrote {r['path']}: {r['n_train']} training and {r['n_test']} test images of {r['dataset']} "
          f"({r['bytes'] / 1e6:.1f} MB); train on it with --data-dir {r['path']}")
    return 0


def gradescope_file(s):
    """``grade --gradescope FILE``: the results file's path; neither a folder nor below a file."""
    import argparse
    from pathlib import Path

    p = Path(s)
    if p.is_dir():
        raise argparse.ArgumentTypeError(f"{s} is a folder; give the results file's path (e.g. {p / 'results.json'})")
    for parent in p.parents:
        if parent.exists() and not parent.is_dir():
            raise argparse.ArgumentTypeError(f"cannot write {s}: {parent} is a file, not a folder")
    return s


def _write_gradescope(path, results):
    """Write Gradescope's results to ``path``; an error names --gradescope."""
    from minivit.cli.errors import message
    from minivit.grading import write_json

    try:
        write_json(path, results)
    except OSError as e:
        e.cli_message = f"--gradescope: could not write {path}: {message(e)}"
        raise


def cmd_grade(args):
    from minivit.grading import TOPICS, format_report, grade

    if args.list:
        for t in TOPICS:
            print(f"{t.name:<10} {t.file:<24} {t.title}")
        return 0
    from minivit.cli.errors import message
    from minivit.grading import gradescope_results
    from minivit.grading.sandbox import NOTICE, isolating

    if not isolating():
        print(NOTICE, file=sys.stderr, flush=True)
    started = time.monotonic()
    try:
        report = grade(args.topics or None, path=args.path, functions=args.only, timeout=args.timeout, progress=True)
    except Exception as e:                    # Gradescope gets its results file even when the grading fails
        if args.gradescope:
            _write_gradescope(args.gradescope, gradescope_results(error=message(e), seconds=time.monotonic() - started))
        raise
    print(json.dumps(report) if args.json else format_report(report, verbose=args.verbose), flush=True)
    if args.gradescope:                       # after every process of the learner's code is gone
        _write_gradescope(args.gradescope, gradescope_results(report, seconds=time.monotonic() - started))
    return 0                                  # whatever the score: grading is feedback, not a test


def cmd_hint(args):
    from minivit.grading.hints import hint

    hint(args.function, args.level)          # an unknown function or level: ValueError -> error:, exit 2
    return 0


def cmd_bench(args):
    from minivit.fast.bench import bench, format_report

    r = bench(preset=args.preset, batch_size=args.batch_size, device=args.device, steps=args.steps, warmup=args.warmup,
              stages=not args.no_stages, impl=args.impl, threads=args.threads)
    print(json.dumps(r) if args.json else format_report(r))
    return 0


def cmd_train(args):
    from minivit.train.runfolder import claim_run_folder
    from minivit.train.trainer import recipe

    horizons = args.steps if isinstance(args.steps, list) else None      # --steps H0,H1@g1,...: a plan replayed
    cfg = recipe(args.preset, epochs=args.epochs, time_budget=args.time_budget,
                 steps=horizons[-1][1] if horizons else args.steps, horizons=horizons,
                 batch_size=args.batch_size, lr=args.lr, dataset=args.dataset,
                 subset=args.subset, val_split=args.val_split, seed=args.seed, threads=args.threads,
                 ema_decay=args.ema_decay,
                 flip_tta=args.flip_tta or None, optimizer=args.optimizer, resize=args.resize)
    if args.token_drop is not None or args.resize:          # the model's side of the opt-in pieces
        cfg.model = {**cfg.model, **({"token_drop": args.token_drop} if args.token_drop is not None else {}),
                     **({"flexible_resolution": True} if args.resize else {})}
    out = args.out = args.out or f"runs/{args.preset}-{cfg.dataset}"     # (args.out: named by the error handler)
    with claim_run_folder(out, resume=args.resume, overwrite=args.overwrite):   # locked until the run ends
        return _train(args, cfg, out)


def _train(args, cfg, out):
    from minivit.train.trainer import Trainer

    impl = None
    if args.impl == "exercises":              # the learner's topics that pass the grader (before loading any data)
        from minivit.grading import default_path, exercises_impl

        path = args.exercises_path or default_path()
        print(f"grading your exercises in {path}: a topic trains with your code once all its checks pass",
              file=sys.stderr, flush=True)
        impl = exercises_impl(path, progress=True)
        if not impl.yours:                    # the learner's files are this command's input: exit 2
            raise ValueError(f"--impl exercises: no topic of {path} passes all its checks yet, so training would "
                             "run minivit's code only (python -m minivit grade shows what fails); train without "
                             "--impl exercises")
        print(f"training with your exercises from {path} (the topics that pass; minivit's for the rest)")
    elif args.impl == "fast":                 # minivit/fast/__init__.py: the same math with fewer passes (CPU)
        from minivit import fast

        impl = fast.functions()
        print("training with the fast paths (minivit/fast/__init__.py)" if impl else
              f"{fast.ENV_VAR}=0: fast paths off, training with the reference functions")
    # started: a --time-budget counts from the process's start (minivit/train/budget.py)
    trainer = Trainer(cfg, out, device=args.device, data_dir=args.data_dir, impl=impl, started=process_started())
    if args.resume:                           # claim_run_folder has checked that last.npz is there
        trainer.resume()
        print(f"resuming from {trainer.out / 'last.npz'}: epoch {trainer.epoch + 1}, step {trainer.step_in_epoch}")
    history = trainer.fit()
    if history:
        last = history[-1]
        subset = "" if last["eval_images"] >= trainer.data.get("test_total", 0) else trainer.eval_note
        if trainer.eval_set == "val":          # best.npz is chosen on the validation images
            best = max(history, key=lambda r: r["test_acc"])
            chosen = f"best validation accuracy {100 * best['test_acc']:.2f}% (epoch {best['epoch']}, in best.npz)"
        else:
            chosen = "best.npz is the final model (nothing is chosen on test images; --val-split N to choose)"
        print(f"done: final {trainer.eval_set_name} accuracy {100 * last['test_acc']:.2f}%{subset} "
              f"(step {last['step']:,}); {chosen}; outputs in {trainer.out}{trainer.planner.replay_note()}")
    return 0


def cmd_eval(args):
    from minivit.train.progress import json_safe
    from minivit.train.trainer import evaluate_checkpoint

    from pathlib import Path

    args.out = args.out or str(Path(args.checkpoint).parent)       # confusion.png next to the checkpoint
    r = evaluate_checkpoint(args.checkpoint, data_dir=args.data_dir, device=args.device, out=args.out,
                            progress=not args.no_progress, flip_tta=args.flip_tta, images=args.images)
    if args.json:
        print(json.dumps(json_safe(r), allow_nan=False))     # NaN/inf (a diverged model's loss) -> null
        return 0
    on = "" if r["images"] == "test set" else f" on the {r['num_images']:,} images of {r['images']}"
    print(f"{r['checkpoint']}: {r['dataset']} test accuracy {100 * r['test_acc']:.2f}%{on} (loss {r['test_loss']:.4f})")
    if "test_acc_tta" in r:
        print(f"with horizontal-flip TTA: {100 * r['test_acc_tta']:.2f}% (loss {r['test_loss_tta']:.4f}; "
              f"the mean of the two views' softmax)")
    print(f"\n{'class':>12}  accuracy")
    for c, a in r["per_class"].items():
        print(f"{c:>12}  {100 * a:6.2f}%")
    if "confusion_png" in r:
        print(f"\nconfusion matrix: {r['confusion_png']}")
    return 0


def cmd_inspect(args):
    from minivit.inspect import inspect_checkpoint

    r = inspect_checkpoint(args.checkpoint, args.out, data_dir=args.data_dir, num_images=args.images,
                           device=args.device, dataset=args.dataset)
    for key in ("filters_png", "position_png", "distance_png", "maps_png", "npz"):
        if key in r:
            print(f"wrote {r[key]}")
    return 0


def cmd_finetune(args):
    from minivit.train.finetune import finetune

    tuner = finetune(args.checkpoint, preset=args.preset, out=args.out, device=args.device, data_dir=args.data_dir,
                     image_size=args.image_size, resume=args.resume, overwrite=args.overwrite,
                     epochs=args.epochs, batch_size=args.batch_size,
                     lr=args.lr, dataset=args.dataset, subset=args.subset, seed=args.seed)
    if tuner.history:
        best = max(tuner.history, key=lambda r: r["test_acc"])
        print(f"done: best test accuracy {100 * best['test_acc']:.2f}%{tuner.eval_note} (epoch {best['epoch']}); "
              f"outputs in {tuner.out}")
    return 0
