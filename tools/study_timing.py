"""Seconds per training iteration of the SAGAN preset at CPU widths, per attention placement, and seconds per
validation evaluation: the numbers the study budgets (docs/studies.md) are estimated from.

    OMP_NUM_THREADS=1 python tools/study_timing.py --data-dir data --feature-net ../shared/eval/cifar10_features.pt

Each configuration: `--warmup` untimed iterations, then `--iters` timed ones of gan_helpers.train_step on the
real training images (G and D in channels_last, as train() places them), EMA on.
"""
import argparse
import copy
import sys
import time
from pathlib import Path

import torch

torch.set_num_threads(1)   # CPU time per iteration of one thread: the unit of the study budgets

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import gan_helpers as gh  # noqa: E402
import gankit.step  # noqa: E402


def seconds_per_iteration(cfg: gh.Config, data: gh.ImageSet, iters: int, warmup: int) -> tuple[float, float]:
    """(wall-clock, CPU) seconds per iteration. On a shared machine the CPU time of this one-thread process is
    the better estimate of what an iteration costs; the wall-clock time includes waiting for other processes."""
    gh.setup(cfg.seed)
    G, D = (gh.to_device(m, "cpu") for m in gh.build_models(cfg))
    G_ema = copy.deepcopy(G)
    opt_g, opt_d = gh.make_optimizers(cfg, G, D)
    batch = lambda: data.batch(cfg.batch_size, cfg.hflip)  # noqa: E731
    for i in range(warmup):
        gankit.step.train_step(cfg, G, D, G_ema, opt_g, opt_d, batch, gankit.step.ema_decay(cfg, i))
    start, cpu = time.perf_counter(), time.process_time()
    for i in range(iters):
        gankit.step.train_step(cfg, G, D, G_ema, opt_g, opt_d, batch, gankit.step.ema_decay(cfg, i))
    return (time.perf_counter() - start) / iters, (time.process_time() - cpu) / iters


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data-dir", default="data")
    p.add_argument("--feature-net", required=True)
    p.add_argument("--widths", type=int, nargs="*", default=[32, 64])
    p.add_argument("--attention", nargs="*", default=["none", "8", "16", "32"])
    p.add_argument("--iters", type=int, default=15)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--eval-samples", type=int, nargs="*", default=[2000, 5000])
    p.add_argument("--set", nargs="*", default=["ema_decay=0.999", "ema_start=0"], help="extra Config overrides")
    args = p.parse_args()
    print(f"cpu, {torch.get_num_threads()} thread(s), torch {torch.__version__}", flush=True)
    train, val = gh.train_val_split(gh.load_cifar10(args.data_dir, train=True))
    for width in args.widths:
        for placement in args.attention:
            attn = "()" if placement == "none" else f"({placement},)"
            cfg = gh.Config.sagan().with_overrides([f"g_ch={width}", f"d_ch={width}", f"g_attn={attn}",
                                                     f"d_attn={attn}", *args.set])
            wall, cpu = seconds_per_iteration(cfg, train, args.iters, args.warmup)
            print(f"width {width:3d} attention {placement:>4s}: {cpu:.3f} CPU s/iteration ({wall:.3f} s wall-clock)",
                  flush=True)
        features = gh.load_feature_net(args.feature_net)
        G, _ = gh.build_models(gh.Config.sagan(g_ch=width, d_ch=width))
        real = gh.real_stats(val, "val", features, Path(args.data_dir) / "fid_stats")
        for n in args.eval_samples:
            start, cpu = time.perf_counter(), time.process_time()
            gh.evaluate_generator(gh.standing_batch_norm(G), real, features, n)
            print(f"width {width:3d} evaluation ({n} samples, standing BN, {features.label}): "
                  f"{time.process_time() - cpu:.1f} CPU s ({time.perf_counter() - start:.1f} s wall-clock)", flush=True)


if __name__ == "__main__":
    main()
