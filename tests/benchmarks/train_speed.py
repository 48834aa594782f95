"""Training-speed benchmark: our training step vs a reference loop over the same models, in one run.

Ours: the dataset held as one uint8 tensor on the device, batches drawn by indexing, G and D in channels_last
(gh.to_device, as train() places them), gan_helpers.train_step.
Reference (as pytorch/examples' dcgan/main.py): a torchvision dataset with per-image transforms, a
DataLoader, a host-to-device copy per batch, then the same D and G updates (no EMA).
Also times one self-attention layer (forward + backward) through the fused kernel vs the explicit (HW, HW)
attention matrix, and one validation evaluation with cached real statistics vs recomputing them.

    python tests/benchmarks/train_speed.py --data-dir data --feature-net ../shared/eval/cifar10_features.pt
    python tests/benchmarks/train_speed.py --data-dir data --device cuda --sagan-set g_ch=256 d_ch=128

First the aten operations and host syncs per iteration of train() (what a GPU pays for, visible on any device),
then it/s and images/s of the reference loop, our eager step in float32 and with mixed precision (bf16 on the CPU,
Config.amp="auto" on CUDA) and, on CUDA, the step recorded as one CUDA graph (Config.compile="cudagraph"), each
as a ratio to the reference loop in the same run; one validation evaluation; self-attention fused vs explicit.

    python tests/benchmarks/train_speed.py --counts-only        # anywhere, in about a minute

Not collected by pytest (the file name does not start with test_).
"""
import argparse
import copy
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path[:0] = [str(Path(__file__).resolve().parents[2]), str(Path(__file__).resolve().parents[1])]
import gan_helpers as gh  # noqa: E402
import gankit.capture  # noqa: E402
import gankit.data  # noqa: E402
import gankit.features  # noqa: E402
import gankit.layers  # noqa: E402
import gankit.step  # noqa: E402
import gankit.training  # noqa: E402


def reference_loader(data_dir: Path, batch_size: int, workers: int) -> torch.utils.data.DataLoader:
    """torchvision dataset + per-image ToTensor/Normalize + DataLoader, as pytorch/examples does."""
    import torchvision.datasets as dset
    import torchvision.transforms as T
    tf = T.Compose([T.ToTensor(), T.Normalize((0.5, 0.5, 0.5), (0.5, 0.5, 0.5))])
    root = gankit.data._image_folder_root(data_dir)
    ds = dset.ImageFolder(str(root / "train"), transform=tf) if root else dset.CIFAR10(str(data_dir), transform=tf)
    return torch.utils.data.DataLoader(ds, batch_size=batch_size, shuffle=True, num_workers=workers, drop_last=True,
                                       persistent_workers=workers > 0)


def tensor_loader(data: gh.ImageSet, batch_size: int, workers: int = 0) -> torch.utils.data.DataLoader:
    """The reference loop's data as a plain PyTorch loop holds a dataset already in memory: float images (N, 3, S, S)
    in [-1, 1] and labels in a TensorDataset on the host, a shuffling DataLoader; time_reference copies each batch
    to the device (tools/device_check.py times our step against this on CUDA)."""
    ds = torch.utils.data.TensorDataset(gh.to_float(data.x.cpu()), data.y.cpu())
    return torch.utils.data.DataLoader(ds, batch_size=batch_size, shuffle=True, num_workers=workers, drop_last=True)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def time_ours(cfg: gh.Config, data: gh.ImageSet, device: torch.device, iters: int, warmup: int,
              channels_last: bool = True, amp: str = "off", compile: str = "off", cudnn_benchmark: bool = True) -> float:
    """Seconds per train_step with the given options (amp: Config.amp; compile: Config.compile, "cudagraph" for
    the step recorded as one CUDA graph, as train() runs it)."""
    gh.setup(0)
    torch.backends.cudnn.benchmark = cudnn_benchmark and device.type == "cuda"
    place = gh.to_device if channels_last else (lambda m, d: m.to(d))    # the latter: plain NCHW tensors
    G, D = (place(m, device) for m in gh.build_models(cfg))
    G_ema = copy.deepcopy(G)
    opt_g, opt_d = gh.make_optimizers(cfg, G, D)
    capture = compile == "cudagraph"
    G_run, D_run = (G, D) if capture else (gankit.device.compiled(G, compile), gankit.device.compiled(D, compile))
    prec = gh.precision(amp, device)
    data = data.to(device)
    batch = lambda: data.batch(cfg.batch_size, cfg.hflip)  # noqa: E731
    step = lambda decay: gankit.step.train_step(cfg, G_run, D_run, G_ema, opt_g, opt_d, batch, decay, prec)  # noqa: E731
    if capture:
        step = gankit.capture.CapturedStep(step, [G, D, G_ema], [opt_g, opt_d], device)
    logs = [gankit.step.stack_logs(step(0.999)) for _ in range(warmup)]   # compilation or capture happens here
    sync(device)
    start = time.perf_counter()
    logs = [gankit.step.stack_logs(step(0.999)) for _ in range(iters)]    # as train() keeps them
    torch.stack(logs).tolist()                                          # and moves them to the host
    return (time.perf_counter() - start) / iters


def count_per_iteration(cfg: gh.Config, device: torch.device, short: int = 6, long: int = 12) -> tuple[float, float]:
    """(aten operations per iteration of train() itself, loop and history included: the difference between a
    `long`- and a `short`-iteration run on synthetic images, over long - short; host syncs per training step, counted
    inside every step of both runs). On a GPU each operation is about one kernel launch and each sync a wait for the
    device, whatever the time says. The loop adds one transfer per gankit.training.LOG_CHUNK iterations."""
    from op_counts import OpCounter, count
    train, val = gh.train_val_split(gh.synthetic_images(96, num_classes=10), 32)
    features = gh.load_feature_net(gankit.features.RandomFeatures(), device=device)
    totals, step_syncs, steps = [], 0, 0
    real_step = gankit.training.train_step

    def counted_step(*args, **kwargs):   # the syncs of the step alone
        nonlocal step_syncs, steps
        with OpCounter() as inner:
            logs = real_step(*args, **kwargs)
        step_syncs, steps = step_syncs + inner.syncs, steps + 1
        return logs

    gankit.training.train_step = counted_step
    try:
        for iters in (short, long):
            c = cfg.with_overrides([f"iters={iters}", f"eval_every={iters}", f"checkpoint_every={iters}",
                                    "eval_samples=16", "batch_size=8"])
            with tempfile.TemporaryDirectory() as out:
                totals.append(count(lambda: gh.train(c, out, train, val, features, device, progress=False)).total)
    finally:
        gankit.training.train_step = real_step
    return (totals[1] - totals[0]) / (long - short), step_syncs / steps


def time_reference(cfg: gh.Config, loader: torch.utils.data.DataLoader, device: torch.device, iters: int,
                   warmup: int) -> float:
    gh.setup(0)
    G, D = (m.to(device) for m in gh.build_models(cfg))
    opt_g, opt_d = (torch.optim.Adam(m.parameters(), lr, betas=cfg.betas) for m, lr in ((G, cfg.g_lr), (D, cfg.d_lr)))
    it = iter(loader)
    start = None
    for i in range(warmup + iters):
        if i == warmup:
            sync(device)
            start = time.perf_counter()
        try:
            real, y = next(it)
        except StopIteration:
            it = iter(loader)
            real, y = next(it)
        real, y = real.to(device), y.to(device)
        y = y if cfg.num_classes else None
        # (1) Update D
        gankit.layers.power_iteration(G), gankit.layers.power_iteration(D)
        y_fake = gankit.step.random_labels(len(real), cfg.num_classes, device)
        fake = G(torch.randn(len(real), cfg.z_dim, device=device), y_fake)
        loss_d = gankit.losses.d_loss(cfg.loss, D(real, y), D(fake.detach(), y_fake))
        opt_d.zero_grad()
        loss_d.backward()
        opt_d.step()
        # (2) Update G
        loss_g = gankit.losses.g_loss(cfg.loss, D(fake, y_fake))
        opt_g.zero_grad()
        loss_g.backward()
        opt_g.step()
    sync(device)
    return (time.perf_counter() - start) / iters


def time_attention(resolution: int, channels: int, batch: int, device: torch.device, iters: int,
                   fused: bool) -> float:
    """Seconds per forward + backward of one SelfAttention on (batch, channels, resolution, resolution)."""
    gh.setup(0)
    sa = gankit.attention.SelfAttention(channels).to(device)
    sa.cpu_fused_from = 0 if fused else sa.cpu_fused_from    # the fused timing uses the kernel at every size
    x = torch.randn(batch, channels, resolution, resolution, device=device, requires_grad=True)
    run = (lambda: sa(x)) if fused else (lambda: sa(x, return_attention=True)[0])  # noqa: E731
    run().sum().backward()
    sync(device)
    start = time.perf_counter()
    for _ in range(iters):
        run().sum().backward()
    sync(device)
    return (time.perf_counter() - start) / iters


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data-dir", default="data", help="CIFAR-10; without it, synthetic images (same speed)")
    p.add_argument("--device", default=None)
    p.add_argument("--iters", type=int, default=20, help="timed iterations per row")
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--workers", type=int, default=2, help="DataLoader workers of the reference loop")
    p.add_argument("--sagan-set", nargs="*", default=["g_ch=64", "d_ch=64"], help="SAGAN Config overrides")
    p.add_argument("--feature-net", help="feature network for the evaluation timing (default Inception)")
    p.add_argument("--eval-samples", type=int, default=5000)
    p.add_argument("--compile", default=None, help="also time eager torch.compile with this backend (e.g. inductor)")
    p.add_argument("--counts-only", action="store_true", help="only the operation and sync counts")
    args = p.parse_args()
    device = gh.setup(0, args.device)
    name = torch.cuda.get_device_name() if device.type == "cuda" else f"cpu ({torch.get_num_threads()} threads)"
    print(f"device: {name}, torch {torch.__version__}")
    configs = {"dcgan": gh.Config.dcgan(), "sagan": gh.Config.sagan().with_overrides(args.sagan_set)}

    print("per training iteration of train() (batch 8; the counts do not depend on widths or batch size):")
    for model, cfg in configs.items():
        ops, syncs = count_per_iteration(cfg, device)
        print(f"  {model:6s} {ops:7.0f} aten operations, {syncs:.2f} host syncs inside the step", flush=True)
    if args.counts_only:
        return

    data_dir = Path(args.data_dir)
    images = gh.load_cifar10(data_dir, train=True) if data_dir.exists() else gh.synthetic_images(50_000, num_classes=10)
    train, val = gh.train_val_split(images)
    amp = "auto" if device.type == "cuda" else "bf16"
    rows = {"eager float32": {}, f"eager {gh.precision(amp, device).dtype}": dict(amp=amp)}
    if args.compile:
        rows[f"eager, torch.compile {args.compile}"] = dict(compile=args.compile)
    if device.type == "cuda":
        rows["captured float32"] = dict(compile="cudagraph")
        rows[f"captured {gh.precision(amp, device).dtype}"] = dict(amp=amp, compile="cudagraph")
    print(f"{'model':6s} {'loop':34s} {'it/s':>8s} {'img/s':>8s} {'vs reference':>12s}")
    for model, cfg in configs.items():
        loader = reference_loader(data_dir, cfg.batch_size, args.workers) if data_dir.exists() \
            else tensor_loader(train, cfg.batch_size)
        ref = time_reference(cfg, loader, device, args.iters, args.warmup)
        print(f"{model:6s} {'reference (DataLoader, copy per batch)':34s} {1 / ref:8.2f} {cfg.batch_size / ref:8.0f} "
              f"{1:11.2f}x", flush=True)
        for label, options in rows.items():
            t = time_ours(cfg, train, device, args.iters, args.warmup, **options)
            print(f"{model:6s} {label:34s} {1 / t:8.2f} {cfg.batch_size / t:8.0f} {ref / t:11.2f}x", flush=True)

    features = gh.load_feature_net(args.feature_net, device=device)
    G, _ = gh.build_models(configs["sagan"])
    G = gh.to_device(G, device)
    with tempfile.TemporaryDirectory() as cache:
        start = time.perf_counter()
        real = gh.real_stats(val, "val", features, cache)  # computes and writes the cache
        t_compute = time.perf_counter() - start
        start = time.perf_counter()
        gh.evaluate_generator(G, real, features, args.eval_samples)
        t_cached = time.perf_counter() - start
    print(f"one validation evaluation ({features.label}, SAGAN, {args.eval_samples} generated vs {len(val)} real): "
          f"{t_cached:.2f} s with cached real statistics; computing them once took {t_compute:.2f} s", flush=True)

    channels = configs["sagan"].g_ch
    for res in (8, 16, 32):
        fused, explicit = (time_attention(res, channels, 64, device, args.iters, f) for f in (True, False))
        print(f"self-attention {res}x{res}, {channels} channels, batch 64, forward+backward: fused {fused * 1e3:.1f} ms, "
              f"explicit (HW, HW) matrix {explicit * 1e3:.1f} ms ({explicit / fused:.2f}x)", flush=True)


if __name__ == "__main__":
    main()
