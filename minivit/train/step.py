"""One training step, top to bottom: :func:`train_step`.

In the order it happens (every random draw derives from (seed, epoch, step), so a run stopped
anywhere and resumed gives exactly the numbers of an uninterrupted one):

1. the batch: this epoch's shuffled order, slice [step*B : (step+1)*B]          (seeded by (seed, epoch))
2. augment it on the device: crop, flip, RandAugment, mixup ... -> x (B, H, W, C) float, t
   (minivit/data/augment/), then the trainer's batch_transform, if any (fine-tuning: a resize)
3. progressive resizing, if switched on: x at this step's size (minivit/train/options.py)
4. the learning rate of this step: warmup + cosine (minivit/optim/schedule.py); after a budget's
   re-plan, at the step's place on the first plan's schedule (minivit/train/replan.py)
5. forward and backward: logits = model(x); loss = cross_entropy(logits, t, label_smoothing);
   model.backward(dloss/dlogits) fills every parameter's .grad -- in one thread, or with the batch
   split over CPU threads (minivit/fast/parallel.py: the same numbers, bit for bit)
6. clip the global gradient norm (minivit/optim/clip.py)
7. the optimizer step (AdamW, Muon or SGD, chosen once: minivit/optim/factory.py), then the EMA of
   the weights, if any (minivit/train/ema.py)
8. the tallies: the number correct, on the device; the trainer adds it and the loss to the run's
   sums, never reading them here (minivit/train/tally.py), so that on a GPU the step never waits

The step reads the trainer's parts and changes only the model, the optimizer and the EMA; the
step counters and the sums are the trainer's (minivit/train/trainer.py).
"""
from __future__ import annotations

from minivit.backend import make_rng
from minivit.data.augment import augment_batch
from minivit.ops import F
from minivit.optim import clip_grad_norm


def train_step(trainer, epoch: int, step: int, order, size: int | None = None):
    """One optimization step of ``trainer`` (a :class:`minivit.train.trainer.Trainer`): step ``step``
    of epoch ``epoch``, whose shuffled image order is ``order`` (N,) (see the module docstring).

    What it reads of the trainer: cfg (batch_size, seed, lr, min_lr, label_smoothing, clip_norm,
    threads), data (x_train (N, H, W, C) uint8, y_train (N,), num_classes), aug, batch_transform,
    options, global_step with planner's lr_schedule_at() and warmup_steps, model, parallel, opt, and
    tally.timer (the data pipeline's time).
    size: train at this image size (the calibration of a time budget times each size); None: the
    size progressive resizing gives this step.
    Returns (loss, number correct, data time): on a GPU the loss and the count are 0-d device arrays
    and the data time a pair of device events (minivit/train/tally.py); on NumPy, numbers.
    """
    cfg, xp, data, B = trainer.cfg, trainer.xp, trainer.data, trainer.cfg.batch_size
    t0 = trainer.tally.timer.start()
    # 1-2. the batch, augmented (and transformed: fine-tuning resizes it to the model's resolution)
    idx = order[step * B:(step + 1) * B]
    x, targets = augment_batch(data["x_train"][idx], data["y_train"][idx], make_rng(cfg.seed, epoch, step),
                               trainer.aug, data["num_classes"], train=True)
    if trainer.batch_transform is not None:
        x = trainer.batch_transform(x)
    # 3. progressive resizing, if switched on
    x = trainer.options.resize_batch(x, trainer.global_step, trainer.planner.total_steps, size)
    t_data = trainer.tally.timer.stop(t0)
    # 4. the learning rate of this step
    plan = trainer.planner          # the schedule's horizon and warmup: epochs, --steps or a time budget
    position, horizon = plan.lr_schedule_at(trainer.global_step)    # the step, unless a budget re-planned
    trainer.opt.lr = F.warmup_cosine(position, horizon, cfg.lr, plan.warmup_steps, cfg.min_lr)
    # 5. forward and backward
    if trainer.parallel is None:
        logits = trainer.model.forward(x, make_rng(cfg.seed, epoch, step, 1, xp=xp))
        loss, cache = F.cross_entropy_forward(logits, targets, cfg.label_smoothing)
        trainer.model.backward(F.cross_entropy_backward(cache))
    else:   # the same step, with the batch split over CPU threads (each with its own generator)
        rngs = [make_rng(cfg.seed, epoch, step, 1, i) for i in range(cfg.threads)]
        loss, logits = trainer.parallel.forward_backward(x, targets, cfg.label_smoothing, rngs)
    # 6. gradient clipping
    if cfg.clip_norm:
        clip_grad_norm(trainer.model.parameters(), cfg.clip_norm)
    # 7. the optimizer step, then the EMA of the weights
    trainer.opt.step()
    trainer.options.after_optimizer_step(trainer.model)
    # 8. the tallies (on the device: nothing is read here)
    hard = targets if targets.ndim == 1 else xp.argmax(targets, axis=1)
    correct = (xp.argmax(logits, axis=1) == hard).sum()
    return loss, correct, t_data
