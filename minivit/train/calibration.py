"""The calibration of a time-budgeted run, on the trainer's real model (the plan: minivit/train/budget.py).

:func:`plan_budget` times a few training steps of every step kind (``trainer.calibration_step``),
one evaluation of a batch and a dry commit (:func:`dry_commit`: the checkpoints, metrics.csv and
curves.png an evaluation writes, to throwaway files); the model, the optimizer and the options'
state (the EMA) are put back bit for bit afterwards, so calibrating changes no number of the run.
The trainer's planner (minivit/train/planned_run.py) then fixes the steps.
"""
from __future__ import annotations

from minivit.backend import synchronize
from minivit.train.progress import write_metrics


def plan_budget(trainer):
    """Before a run's first step (``Trainer.fit``), for a time budget not planned yet: calibrate on
    the real model (restored bit for bit after), fix the steps (minivit/train/budget.py) and print
    the plan and the run's end. Epochs, --steps or a resumed plan: print the plan, if any."""
    if trainer.total_steps is not None:          # epochs, --steps, or the plan a resumed run recorded
        if trainer.plan is not None:
            print(f"plan: {trainer.plan.describe()}{' (recorded)' if trainer.global_step else ''}")
        return
    n_eval = len(trainer.data["x_test"])
    params, optim, options = trainer.model.state_dict(), trainer.opt.state_dict(), trainer.options.state_dict()

    def restore():
        trainer.model.load_state_dict(params)
        trainer.opt.load_state_dict(optim)
        trainer.options.load_state_dict(options)

    order, kinds = trainer.epoch_order(0), trainer.options.step_kinds()
    evals = n_eval
    if "x_test_full" in trainer.data:       # final_test: the last evaluation is on the whole test set
        evals = (n_eval, len(trainer.data["x_test_full"]))
    trainer.planner.calibrate_and_plan(
        lambda kind, i: trainer.calibration_step(kind, i, order), kinds,
        lambda n: trainer.evaluate_on(trainer.data["x_test"][:n], trainer.data["y_test"][:n]),
        min(n_eval, trainer.cfg.eval_batch_size), lambda: dry_commit(trainer), lambda: synchronize(trainer.xp),
        restore, evals)


def dry_commit(trainer):
    """What an evaluation of ``trainer`` writes (best.npz and last.npz, metrics.csv, curves.png), to
    throwaway files."""
    import io

    from minivit.storage.tempfiles import pid_tag

    row = dict(epoch=1, step=0, epoch_frac=0.0, train_loss=1.0, train_acc=0.5, test_loss=1.0, test_acc=0.5,
               eval_images=1, lr=0.0, time_s=0.0, images_per_s=1.0, data_frac=0.0)
    names = [f"calibration.{pid_tag()}.{what}.tmp" for what in ("npz", "csv")]
    try:
        for _ in range(2):                 # a new best writes two checkpoints
            trainer.run.write(names[0], trainer._meta())
        write_metrics([row], trainer.out / names[1])
        try:
            from minivit.plots import plot_curves

            plot_curves([row], io.BytesIO())
        except Exception:                  # as in Trainer.write_metrics: plots never stop a run
            pass
    finally:
        for name in names:
            (trainer.out / name).unlink(missing_ok=True)
