"""minivit vs PyTorch: the same ViT, the same weights, the same batch, timed side by side.

Builds a minivit ``ViT`` and a PyTorch twin (``TorchViT`` from ``tests/torch_reference.py``:
plain torch ops, minivit's parameter names, weights copied from the minivit model), then
times a full training step in each — forward, cross-entropy, backward, AdamW update — in the
same process, alternating the two frameworks every round (and which one goes first) so that
both see the same machine conditions. Prints the median step time, images/s and the ratio
minivit / PyTorch images/s.

Example:

    python benchmarks/torch_vs_minivit.py --preset cifar,cpu --batch-size 128 --steps 10 --warmup 3

``--preset`` takes a comma-separated list (default ``cifar,cpu``): model presets (``cifar``,
``tiny``...) or training recipes (``cpu``: the model that ``python -m minivit train`` trains on a
CPU). A recipe's model runs *without* its patch dropout (``token_drop``), which the PyTorch twin
does not have; both sides then compute the same full-sequence step. Every preset gets its own
table; all of them share one report of the machine: its CPU model, NumPy's BLAS (library,
version, kernels) and NumPy's matrix-product rate (a 1024 x 1024 GEMM in the dtype, with the
benchmark's BLAS threads, measured before and after the timing), and each framework's model
GFLOP/s as a share of that rate.

Before/after comparisons of minivit itself: ``--minivit-root DIR`` imports minivit from another
checkout (e.g. ``git worktree add /tmp/base PARENT``), so two versions run under the same harness;
alternate runs of the two (each one's ratio to PyTorch is measured within its own run).

Threads: by default both libraries use every core (``os.cpu_count()``); ``--threads N`` sets
both to N. minivit uses them the way its trainer does on a CPU (``train --threads``): each batch
is split over that many threads, one model replica each, BLAS single-threaded in each
(``minivit.fast.parallel.DataParallel``); ``--minivit-threads 1`` times the plain one-model step with
a multi-threaded BLAS instead. NumPy's BLAS thread count can only be fixed before NumPy is first imported, so this
script sets ``OPENBLAS_NUM_THREADS`` / ``OMP_NUM_THREADS`` / ``MKL_NUM_THREADS`` before importing
it (and uses threadpoolctl, when installed, to set and report it); torch gets
``torch.set_num_threads``. What was actually used is printed.

GPU: ``--device gpu`` runs minivit on CuPy and the twin on CUDA, synchronizing the device around
every timed step. ``--tf32`` lets both use TF32 tensor cores for float32 matrix products
(``CUPY_TF32=1``, set before CuPy is imported, and ``torch.backends.cuda.matmul.allow_tf32``);
without it both compute in full float32. The report adds the achieved TFLOP/s, and the model FLOP
utilisation when ``--peak-tflops`` gives the GPU's peak for that precision.

PyTorch is a development-only dependency of minivit: this script and the tests are the only
places that import it.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--preset", default="cifar,cpu",
                   help="comma-separated model presets or training recipes (a recipe's model without its "
                        "patch dropout; default: cifar,cpu)")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--steps", type=int, default=10, help="timed rounds (one step of each framework per round)")
    p.add_argument("--warmup", type=int, default=3, help="untimed rounds first")
    p.add_argument("--threads", type=int, default=None,
                   help="threads for NumPy's BLAS and for torch (default: all cores, os.cpu_count())")
    p.add_argument("--minivit-threads", type=int, default=None,
                   help="minivit only: split each batch over this many threads (minivit.fast.parallel.DataParallel, "
                        "single-threaded BLAS per shard; default: the same as --threads); "
                        "1 = the plain one-model step on a multi-threaded BLAS")
    p.add_argument("--impl", default="both", choices=["reference", "fast", "both"],
                   help="minivit's plain functions (minivit/layers), its fast paths (minivit/fast/__init__.py), or both "
                        "side by side (default)")
    p.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    p.add_argument("--lr", type=float, default=1e-4)
    p.add_argument("--weight-decay", type=float, default=0.05)
    p.add_argument("--label-smoothing", type=float, default=0.1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--torch-sdpa", action="store_true",
                   help="let torch use its fused F.scaled_dot_product_attention (default: the explicit "
                        "softmax(q k^T / sqrt(d)) v, the same computation minivit does)")
    p.add_argument("--device", default="cpu", choices=["cpu", "gpu"],
                   help="cpu (NumPy vs torch CPU) or gpu (CuPy vs torch CUDA, the same GPU)")
    p.add_argument("--tf32", action="store_true",
                   help="GPU only: allow TF32 tensor cores for float32 matrix products in both frameworks")
    p.add_argument("--peak-tflops", type=float, default=None,
                   help="the device's peak TFLOP/s for the dtype used, to report model FLOP utilisation (MFU)")
    p.add_argument("--minivit-root", default=None,
                   help="import minivit from this checkout instead of this one (to compare two versions)")
    p.add_argument("--json", action="store_true",
                   help="print the results as one JSON object (several presets: {'runs': [one per preset]})")
    return p.parse_args(argv)


def set_blas_threads_env(n: int) -> None:
    """Fix NumPy's BLAS pool size; effective only before NumPy's first import."""
    if "numpy" in sys.modules:
        print("warning: numpy was imported before the thread count could be set", file=sys.stderr)
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(n)


def numpy_blas_threads(requested: int):
    """(thread count NumPy's BLAS uses, how we know)."""
    try:
        import threadpoolctl

        threadpoolctl.threadpool_limits(requested, user_api="blas")
        infos = [i for i in threadpoolctl.threadpool_info() if i.get("user_api") == "blas"]
        if infos:
            return infos[0]["num_threads"], f"threadpoolctl ({infos[0].get('internal_api')})"
    except ImportError:
        pass
    return requested, "OPENBLAS_NUM_THREADS/OMP_NUM_THREADS/MKL_NUM_THREADS set before importing numpy"


def load_machine_info():
    """Import benchmarks/machine_info.py by path (benchmarks/ is not a package)."""
    spec = importlib.util.spec_from_file_location("minivit_machine_info", ROOT / "benchmarks" / "machine_info.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def minivit_module(name, before_rooms):
    """minivit's module ``name`` (e.g. 'minivit.train.recipes'), or, in a checkout from before the
    rooms (``--minivit-root`` at an older commit), ``before_rooms`` ('minivit.recipes')."""
    import importlib

    try:
        return importlib.import_module(name)
    except ModuleNotFoundError:
        return importlib.import_module(before_rooms)


def preset_config(name, ViTConfig):
    """(ViTConfig, note): a model preset, or a training recipe's model without patch dropout."""
    from minivit.model import PRESETS
    RECIPES = minivit_module("minivit.train.recipes", "minivit.recipes").RECIPES

    if name in RECIPES:
        cfg = ViTConfig.from_dict(RECIPES[name].model)
        note = f"the {name!r} recipe's model"
        if getattr(cfg, "token_drop", 0.0):
            note += f" without its patch dropout (token_drop {cfg.token_drop} -> 0: the PyTorch twin has none)"
            cfg = ViTConfig.from_dict({**cfg.to_dict(), "token_drop": 0.0})
        return cfg, note
    if name in PRESETS:
        return ViTConfig.preset(name), f"model preset {name!r}"
    raise SystemExit(f"unknown preset {name!r}: a model preset ({', '.join(sorted(PRESETS))}) "
                     f"or a training recipe ({', '.join(sorted(RECIPES))})")


def load_torch_reference():
    """Import tests/torch_reference.py by path (tests/ is not an installed package)."""
    spec = importlib.util.spec_from_file_location("minivit_torch_reference", ROOT / "tests" / "torch_reference.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def main(argv=None):
    args = parse_args(argv)
    threads = args.threads or os.cpu_count() or 1
    if args.minivit_threads is None:
        args.minivit_threads = threads if args.device == "cpu" else 1
    if args.device == "gpu":
        if args.minivit_threads > 1:
            raise SystemExit("--minivit-threads > 1 is CPU only (on a GPU minivit runs one model)")
        os.environ["CUPY_TF32"] = "1" if args.tf32 else "0"      # read when CuPy is imported
    elif args.tf32:
        raise SystemExit("--tf32 is for --device gpu (CPUs have no TF32)")
    set_blas_threads_env(threads)

    # Everything numeric is imported only now, after the thread settings.
    minivit_root = Path(args.minivit_root).resolve() if args.minivit_root else ROOT
    sys.path.insert(0, str(minivit_root))
    import numpy as np
    import torch
    import torch.nn.functional as F

    import minivit
    from minivit import fast, ops
    from minivit.backend import get_xp, make_rng, synchronize, to_numpy
    training_flops_per_image = minivit_module("minivit.fast.bench", "minivit.bench").training_flops_per_image
    from minivit.layers import cross_entropy_backward, cross_entropy_forward
    from minivit.model import ViT, ViTConfig

    try:
        from minivit.optim import AdamW
    except ImportError:          # the optimizer not written yet: time forward + backward only
        AdamW = None

    tr = load_torch_reference()
    mi = load_machine_info()
    np_threads, np_threads_how = numpy_blas_threads(threads)
    torch.set_num_threads(threads)
    machine = {"cpu_model": mi.cpu_model(), "blas": mi.blas_info(), "minivit_root": str(minivit_root)}
    if args.device == "cpu":
        machine["gemm_gflop_per_s_before"] = mi.gemm_gflops(args.dtype)
    if args.device == "gpu":
        try:
            xp = get_xp("gpu")                   # raises with a clear message without CuPy or a GPU
        except Exception as err:                 # noqa: BLE001 - report and stop
            raise SystemExit(f"--device gpu: {err}") from err
        if not torch.cuda.is_available():
            raise SystemExit("--device gpu: this torch build sees no CUDA device")
        tdev = torch.device("cuda")
        torch.backends.cuda.matmul.allow_tf32 = args.tf32
        torch.backends.cudnn.allow_tf32 = args.tf32
    else:
        xp, tdev = np, torch.device("cpu")

    def sync():
        synchronize(xp)
        if tdev.type == "cuda":
            torch.cuda.synchronize()

    def run_one(preset):
        # ------------------------------------------------------------------- the two models
        config, preset_note = preset_config(preset, ViTConfig)
        np_dtype = np.dtype(args.dtype)
        torch_dtype = {"float32": torch.float32, "float64": torch.float64}[args.dtype]
        model = ViT(config, seed=args.seed).to(dtype=np_dtype)
        tmodel = tr.TorchViT(model.state_dict(), config, dtype=torch_dtype, device=tdev, use_sdpa=args.torch_sdpa)
        model.to(xp=xp)
        model.train()            # the presets have no dropout, so train and eval compute the same thing
        tmodel.train()

        rng = np.random.default_rng(args.seed)
        x = rng.standard_normal((args.batch_size, config.image_size, config.image_size, config.in_channels)).astype(np_dtype)
        y = rng.integers(0, config.num_classes, args.batch_size)
        tx, ty = torch.from_numpy(x.copy()).to(tdev), torch.from_numpy(y.copy()).to(tdev)
        x, y = xp.asarray(x), xp.asarray(y)
        ls = args.label_smoothing

        if AdamW is not None:
            opt = AdamW(model.named_parameters(), lr=args.lr, weight_decay=args.weight_decay)
            decay = {n for n, p in model.named_parameters() if p.decay}
            named = list(tmodel.named_parameters())
            topt = torch.optim.AdamW(
                [{"params": [p for n, p in named if n in decay], "weight_decay": args.weight_decay},
                 {"params": [p for n, p in named if n not in decay], "weight_decay": 0.0}],
                lr=args.lr, betas=(opt.b1, opt.b2), eps=opt.eps)
            what = "training step: forward + cross-entropy + backward + AdamW"
        else:
            opt = topt = None
            what = "forward + cross-entropy + backward ONLY (minivit.optim.AdamW not importable: no optimizer update)"

        parallel = None
        if args.minivit_threads > 1:
            DataParallel = minivit_module("minivit.fast.parallel", "minivit.parallel").DataParallel

            parallel = DataParallel(model, args.minivit_threads)

        def minivit_fwd_bwd(i):
            if parallel is not None:
                rngs = [make_rng(args.seed, i, k) for k in range(args.minivit_threads)]
                return parallel.forward_backward(x, y, ls, rngs)[0]
            logits = model.forward(x, make_rng(args.seed, i, xp=xp))
            loss, cache = cross_entropy_forward(logits, y, label_smoothing=ls)
            model.backward(cross_entropy_backward(cache))
            return loss

        def torch_fwd_bwd():
            tmodel.zero_grad(set_to_none=True)
            loss = F.cross_entropy(tmodel(tx), ty, label_smoothing=ls)
            loss.backward()
            return loss.item()

        def minivit_step(i):
            minivit_fwd_bwd(i)
            if opt is not None:
                opt.step()

        def with_impl(impl, fn):
            def run(i):
                with ops.use(impl):
                    return fn(i)
            return run

        def torch_step(i):
            torch_fwd_bwd()
            if topt is not None:
                topt.step()

        # -------------------------------------------- sanity check: same loss and gradients
        # (also each framework's first use, timed apart: on a GPU it includes CuPy's kernel compiles)
        first_use_s = {}
        sync()
        t0 = time.perf_counter()
        loss_np = minivit_fwd_bwd(0)
        sync()
        first_use_s["minivit forward+backward"] = time.perf_counter() - t0
        loss_t = torch_fwd_bwd()
        sync()
        first_use_s["PyTorch forward+backward"] = time.perf_counter() - t0 - first_use_s["minivit forward+backward"]
        tgrads = {n: p.grad.detach().cpu().numpy() for n, p in tmodel.named_parameters()}
        grad_err = max(float(np.abs(to_numpy(p.grad) - tgrads[n]).max()) / max(float(np.abs(tgrads[n]).max()), 1e-30)
                       for n, p in model.named_parameters())

        # ----------------------------------------------------------------------- timing
        fns = {}
        if args.impl in ("reference", "both"):
            fns["minivit"] = minivit_step
        fast_impl = {}
        if args.impl in ("fast", "both"):
            # CPU: the NumPy fast paths; GPU: the fused kernels that MINIVIT_FUSED lets run (minivit/fast/fused/__init__.py)
            fast_impl = fast.FUNCTIONS if args.device == "cpu" else fast.functions()
            fns["minivit fast"] = with_impl(fast_impl, minivit_step)
        if not fns:
            fns["minivit"] = minivit_step
        fns["PyTorch"] = torch_step
        times = {name: [] for name in fns}
        first_step_s = {}
        load_before = os.getloadavg() if hasattr(os, "getloadavg") else None
        for r in range(args.warmup + args.steps):
            order = list(fns) if r % 2 == 0 else list(fns)[::-1]
            for name in order:
                sync()
                t0 = time.perf_counter()
                fns[name](r + 1)
                sync()
                dt = time.perf_counter() - t0
                first_step_s.setdefault(name, dt)          # its first full step: includes first-use compiles
                if r >= args.warmup:
                    times[name].append(dt)
        load_after = os.getloadavg() if hasattr(os, "getloadavg") else None

        B = args.batch_size
        res = {name: {"median_step_s": statistics.median(ts), "min_step_s": min(ts), "max_step_s": max(ts),
                      "images_per_s": B / statistics.median(ts), "first_step_s": first_step_s[name]}
               for name, ts in times.items()}
        ratios = {name: res[name]["images_per_s"] / res["PyTorch"]["images_per_s"] for name in fns if name != "PyTorch"}
        ratio = max(ratios.values())
        train_flops = training_flops_per_image(config) * B
        for r in res.values():
            r["tflop_per_s"] = train_flops / r["median_step_s"] / 1e12
            if machine.get("gemm_gflop_per_s_before"):
                r["share_of_gemm_rate"] = 1e3 * r["tflop_per_s"] / machine["gemm_gflop_per_s_before"]
            if args.peak_tflops:
                r["mfu"] = r["tflop_per_s"] / args.peak_tflops
        fused_info = {}
        if args.device == "gpu" and "minivit fast" in fns:
            fused_kernels = minivit_module("minivit.fast.fused.kernels", "minivit.fused_kernels")

            fused_info = {"fused_functions": sorted(n for n, f in fast_impl.items() if f.__module__ == "minivit.fast.fused.ops"),
                          "fused_compile_s": fused_kernels.COMPILE_SECONDS.get("module")}
        gpu = {}
        if tdev.type == "cuda":
            gpu = {"gpu": torch.cuda.get_device_name(), "tf32": args.tf32,
                   "peak_memory_mb": {"minivit (CuPy pool)": xp.get_default_memory_pool().total_bytes() / 2**20,
                                      "PyTorch": torch.cuda.max_memory_allocated() / 2**20}}
        report = {
            "what": what, "preset": preset, "preset_note": preset_note, **machine, "config": config.to_dict(), "params": model.num_parameters(),
            "batch_size": B, "dtype": args.dtype, "steps": args.steps, "warmup": args.warmup,
            "numpy_blas_threads": np_threads, "numpy_blas_threads_source": np_threads_how,
            "torch_threads": torch.get_num_threads(), "cpu_count": os.cpu_count(), "torch_sdpa": args.torch_sdpa,
            "minivit_threads": args.minivit_threads, "device": args.device, **gpu,
            "versions": {"python": platform.python_version(), "numpy": np.__version__, "torch": torch.__version__,
                         "minivit": minivit.__version__, "minivit_file": minivit.__file__},
            "machine": platform.platform(), "processor": platform.processor() or platform.machine(),
            "loadavg_before": load_before, "loadavg_after": load_after,
            "check_first_loss": {"minivit": loss_np, "PyTorch": loss_t},
            "first_use_s": first_use_s, **fused_info,
            "check_first_step_grad_max_rel_diff": grad_err,
            "results": res, "ratios_over_torch_images_per_s": ratios, "ratio_minivit_over_torch_images_per_s": ratio,
        }
        if args.json:
            return report

        print(f"minivit vs PyTorch — {what}")
        print(f"preset {preset}: {preset_note} ({model.num_parameters():,} parameters), batch {B}, {args.dtype}, "
              f"{args.warmup} warmup + {args.steps} timed rounds, frameworks alternating each round")
        print(f"threads: numpy BLAS {np_threads} [{np_threads_how}], torch {torch.get_num_threads()}; "
              f"os.cpu_count() = {os.cpu_count()}; minivit: "
              + (f"batch split over {args.minivit_threads} threads (DataParallel, BLAS 1 thread each)"
                 if args.minivit_threads > 1 else "one model, multi-threaded BLAS"))
        if gpu:
            print(f"GPU: {gpu['gpu']}, TF32 {'on' if args.tf32 else 'off'} in both; peak memory: "
                  + ", ".join(f"{k} {v:.0f} MiB" for k, v in gpu["peak_memory_mb"].items()))
        print(f"versions: numpy {np.__version__}, torch {torch.__version__}, python {platform.python_version()}; "
              f"torch attention: {'fused SDPA' if args.torch_sdpa else 'explicit softmax(qk^T/sqrt(d))v'}")
        if load_before is not None:
            print(f"load average (1 min) before / after: {load_before[0]:.2f} / {load_after[0]:.2f}")
        print(f"check: first-step loss minivit {loss_np:.6f} vs torch {loss_t:.6f}; "
              f"max relative gradient difference {grad_err:.1e}")
        print("first use (not in the timings): " + ", ".join(f"{k} {v:.2f} s" for k, v in first_use_s.items())
              + "; first steps: " + ", ".join(f"{n} {r['first_step_s']:.2f} s" for n, r in res.items()))
        if fused_info:
            print(f"fused kernels in 'minivit fast': {', '.join(fused_info['fused_functions']) or 'none'}"
                  + (f" (compiled in {fused_info['fused_compile_s']:.2f} s)" if fused_info["fused_compile_s"] else ""))
        print()
        gemm = "share_of_gemm_rate" in res["PyTorch"]
        print(f"{'framework':<13} {'median step':>12} {'min':>10} {'max':>10} {'images/s':>10} {'TFLOP/s':>8}"
              + (f" {'MFU':>6}" if args.peak_tflops else "") + (f" {'of GEMM':>8}" if gemm else ""))
        for name, r in res.items():
            print(f"{name:<13} {r['median_step_s'] * 1e3:>9.1f} ms {r['min_step_s'] * 1e3:>7.1f} ms "
                  f"{r['max_step_s'] * 1e3:>7.1f} ms {r['images_per_s']:>10.1f} {r['tflop_per_s']:>8.3f}"
                  + (f" {100 * r['mfu']:>5.1f}%" if args.peak_tflops else "")
                  + (f" {100 * r['share_of_gemm_rate']:>7.1f}%" if gemm else ""))
        print()
        for name, r in ratios.items():
            print(f"{name} / PyTorch images/s: {r:.2f}")
        print()
        return report


    reports = [run_one(name.strip()) for name in args.preset.split(",") if name.strip()]
    if args.device == "cpu":
        machine["gemm_gflop_per_s_after"] = mi.gemm_gflops(args.dtype)
        for r in reports:
            r["gemm_gflop_per_s_after"] = machine["gemm_gflop_per_s_after"]
    if args.json:
        print(json.dumps(reports[0] if len(reports) == 1 else {"runs": reports}, indent=2))
    else:
        print()
        print(f"machine: {machine['cpu_model']}, {os.cpu_count()} cores; NumPy BLAS {mi.blas_label(machine['blas'])}"
              + (f"; NumPy {args.dtype} GEMM (1024^3, {np_threads} BLAS threads) "
                 f"{machine['gemm_gflop_per_s_before']:.0f} GFLOP/s before the timings, "
                 f"{machine['gemm_gflop_per_s_after']:.0f} after" if args.device == "cpu" else ""))
        if args.minivit_root:
            print(f"minivit imported from {minivit_root}")
    return reports[0] if len(reports) == 1 else reports

if __name__ == "__main__":
    main()
