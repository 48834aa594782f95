"""Training-speed benchmark: our training step vs a reference loop over the same models, in one run.

Ours: the dataset held as one uint8 tensor on the device, batches drawn by indexing, G and D in channels_last
(gh.to_device, as train() places them), gan_helpers.train_step.
Reference (as pytorch/examples' dcgan/main.py): a torchvision dataset with per-image transforms, a
DataLoader, a host-to-device copy per batch, then the same D and G updates (no EMA).
Also times one self-attention layer (forward + backward) through the fused kernel vs the explicit (HW, HW)
attention matrix, and one validation evaluation with cached real statistics vs recomputing them.

    python tests/benchmarks/train_speed.py --data-dir data --feature-net ../shared/eval/cifar10_features.pt
    python tests/benchmarks/train_speed.py --data-dir data --device cuda --sagan-set g_ch=256 d_ch=128

Then each GPU-path option (mixed precision: bf16 on the CPU, Config.amp="auto" on CUDA; torch.compile;
cuDNN autotuning on CUDA) alone and together, as ratios to our plain float32 step and to the reference loop.

Not collected by pytest (the file name does not start with test_).
"""
import argparse
import copy
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
import gan_helpers as gh  # noqa: E402
import gankit.data  # noqa: E402


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
    """Seconds per train_step with the given options (amp: Config.amp; compile: Config.compile)."""
    gh.setup(0)
    torch.backends.cudnn.benchmark = cudnn_benchmark and device.type == "cuda"
    place = gh.to_device if channels_last else (lambda m, d: m.to(d))    # the latter: plain NCHW tensors
    G, D = (place(m, device) for m in gh.build_models(cfg))
    G_ema = copy.deepcopy(G)
    opt_g, opt_d = gh.make_optimizers(cfg, G, D)
    G_run, D_run = gh.compiled(G, compile), gh.compiled(D, compile)
    prec = gh.precision(amp, device)
    data = data.to(device)
    batch = lambda: data.batch(cfg.batch_size, cfg.hflip)  # noqa: E731
    for i in range(warmup):                                 # compilation happens here, outside the timing
        gh.train_step(cfg, G_run, D_run, G_ema, opt_g, opt_d, batch, i, prec)
    sync(device)
    start = time.perf_counter()
    for i in range(iters):
        gh.train_step(cfg, G_run, D_run, G_ema, opt_g, opt_d, batch, i, prec)
    sync(device)
    return (time.perf_counter() - start) / iters


def time_reference(cfg: gh.Config, loader: torch.utils.data.DataLoader, device: torch.device, iters: int,
                   warmup: int) -> float:
    gh.setup(0)
    G, D = (m.to(device) for m in gh.build_models(cfg))
    opt_g, opt_d = gh.make_optimizers(cfg, G, D)
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
        y_fake = gh.random_labels(len(real), cfg.num_classes, device)
        fake = G(torch.randn(len(real), cfg.z_dim, device=device), y_fake)
        loss_d = gh.d_loss(cfg.loss, D(real, y), D(fake.detach(), y_fake))
        opt_d.zero_grad()
        loss_d.backward()
        opt_d.step()
        # (2) Update G
        loss_g = gh.g_loss(cfg.loss, D(fake, y_fake))
        opt_g.zero_grad()
        loss_g.backward()
        opt_g.step()
    sync(device)
    return (time.perf_counter() - start) / iters


def time_attention(resolution: int, channels: int, batch: int, device: torch.device, iters: int,
                   fused: bool) -> float:
    """Seconds per forward + backward of one SelfAttention on (batch, channels, resolution, resolution)."""
    gh.setup(0)
    sa = gh.SelfAttention(channels).to(device)
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
    p.add_argument("--data-dir", default="data")
    p.add_argument("--device", default=None)
    p.add_argument("--iters", type=int, default=20, help="timed iterations per loop")
    p.add_argument("--option-iters", type=int, default=5,
                   help="timed iterations per loop in the options table (bf16 on a CPU is about 20x slower)")
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--workers", type=int, default=2, help="DataLoader workers of the reference loop")
    p.add_argument("--sagan-set", nargs="*", default=["g_ch=64", "d_ch=64"], help="SAGAN Config overrides")
    p.add_argument("--feature-net", help="feature network for the evaluation timing (default Inception)")
    p.add_argument("--eval-samples", type=int, default=1000)
    p.add_argument("--compile", default="inductor", help="torch.compile backend timed as the compile option")
    args = p.parse_args()
    device = gh.setup(0, args.device)
    name = torch.cuda.get_device_name() if device.type == "cuda" else f"cpu ({torch.get_num_threads()} threads)"
    print(f"device: {name}, torch {torch.__version__}")
    train, val = gh.train_val_split(gh.load_cifar10(args.data_dir, train=True))
    configs = {"dcgan": gh.Config.dcgan(), "sagan": gh.Config.sagan().with_overrides(args.sagan_set)}
    print(f"{'model':8s} {'batch':>5s} {'ours it/s':>10s} {'ref it/s':>10s} {'ours img/s':>11s} {'ref img/s':>10s} "
          f"{'ratio':>6s}")
    contiguous = {}
    for model, cfg in configs.items():
        ours = time_ours(cfg, train, device, args.iters, args.warmup)
        ref = time_reference(cfg, reference_loader(Path(args.data_dir), cfg.batch_size, args.workers), device,
                             args.iters, args.warmup)
        contiguous[model] = time_ours(cfg, train, device, args.iters, args.warmup, channels_last=False) / ours
        b = cfg.batch_size
        print(f"{model:8s} {b:5d} {1 / ours:10.2f} {1 / ref:10.2f} {b / ours:11.0f} {b / ref:10.0f} {ref / ours:6.2f}x",
              flush=True)
    print("our step with channels_last vs the same step on NCHW tensors: "
          + ", ".join(f"{m} {r:.2f}x" for m, r in contiguous.items()))

    # each GPU-path option alone and together, as a ratio to our plain float32 eager step and to the reference
    amp = "auto" if device.type == "cuda" else "bf16"
    options = {"amp": dict(amp=amp), "compile": dict(compile=args.compile), "amp+compile": dict(amp=amp, compile=args.compile)}
    if device.type == "cuda":
        options["no cudnn.benchmark"] = dict(cudnn_benchmark=False)
    print(f"options (amp={amp} -> {gh.precision(amp, device).dtype}, compile backend {args.compile}): "
          f"speed-up vs our plain step / vs the reference loop")
    for model, cfg in configs.items():
        plain = time_ours(cfg, train, device, args.option_iters, args.warmup)
        ref = time_reference(cfg, reference_loader(Path(args.data_dir), cfg.batch_size, args.workers), device,
                             args.option_iters, args.warmup)
        cells = [f"plain {1 / plain:.2f} it/s ({ref / plain:.2f}x ref)"]
        for label, kw in options.items():
            t = time_ours(cfg, train, device, args.option_iters, args.warmup, **kw)
            cells.append(f"{label} {plain / t:.2f}x / {ref / t:.2f}x")
        print(f"{model}: " + ", ".join(cells), flush=True)

    channels = configs["sagan"].g_ch
    for res in (8, 16, 32):
        fused, explicit = (time_attention(res, channels, 64, device, args.iters, f) for f in (True, False))
        print(f"self-attention {res}x{res}, {channels} channels, batch 64, forward+backward: fused {fused * 1e3:.1f} ms, "
              f"explicit (HW, HW) matrix {explicit * 1e3:.1f} ms ({explicit / fused:.2f}x)", flush=True)

    features = gh.load_feature_net(args.feature_net, device=device)
    G, _ = gh.build_models(configs["dcgan"])
    G = G.to(device)
    with tempfile.TemporaryDirectory() as cache:
        start = time.perf_counter()
        real = gh.real_stats(val, "val", features, cache)  # computes and writes the cache
        t_compute = time.perf_counter() - start
        start = time.perf_counter()
        gh.evaluate_generator(G, real, features, args.eval_samples)
        t_fake = time.perf_counter() - start
        start = time.perf_counter()
        gh.evaluate_generator(G, gh.real_stats(val, "val", features, cache), features, args.eval_samples)
        t_cached = time.perf_counter() - start
    print(f"validation {features.label}, {args.eval_samples} generated vs {len(val)} real: "
          f"cached real statistics {t_cached:.1f} s, recomputing them {t_compute + t_fake:.1f} s "
          f"({(t_compute + t_fake) / t_cached:.1f}x)")


if __name__ == "__main__":
    main()
