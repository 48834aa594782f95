"""Train the kit's CIFAR-10 evaluation classifier (model/eval/cifar10_classifier.pt, used for the class accuracy
of conditional samples and the proxy Inception Score): a small VGG-style CNN with BatchNorm, trained on the kit's
45,000 training images, selected by accuracy on its 5,000 validation images, scored once on the 10,000 test
images, and exported as TorchScript taking images (N, 3, 32, 32) in [0, 1] (the normalisation is inside) and
giving logits (N, 10) in torchvision's CIFAR10 class order.

    OMP_NUM_THREADS=1 python tools/train_classifier.py --data-dir data/cifar10-jpeg \
        --out model/eval/cifar10_classifier.pt --json model/eval/cifar10_classifier.json --epochs 30
"""
from __future__ import annotations

import argparse
import copy
import datetime
import shlex
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from tqdm.auto import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import gan_helpers as gh  # noqa: E402
import gankit  # noqa: E402

# per-channel mean and standard deviation of the CIFAR-10 training images in [0, 1]
CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR10_STD = (0.2470, 0.2435, 0.2616)


def conv_bn(c_in: int, c_out: int) -> nn.Sequential:
    """3x3 convolution (no bias: BatchNorm's shift replaces it), BatchNorm, ReLU; keeps the spatial size."""
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True))


class Classifier(nn.Module):
    """VGG-style CNN: three stages of two conv_bn layers and a 2x2 max pool (32 -> 16 -> 8 -> 4 pixels),
    global average pooling and a linear layer. Takes images in [0, 1] and normalises them itself, so the
    exported module needs nothing else."""

    def __init__(self, widths: tuple[int, ...] = (32, 64, 128), num_classes: int = 10) -> None:
        super().__init__()
        self.register_buffer("mean", torch.tensor(CIFAR10_MEAN).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(CIFAR10_STD).view(1, 3, 1, 1))
        stages, c_in = [], 3
        for c in widths:
            stages += [conv_bn(c_in, c), conv_bn(c, c), nn.MaxPool2d(2)]
            c_in = c
        self.features = nn.Sequential(*stages)
        self.head = nn.Linear(c_in, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        """x (N, 3, 32, 32) in [0, 1] -> logits (N, num_classes)."""
        h = self.features((x - self.mean) / self.std)  # (N, widths[-1], 4, 4)
        return self.head(h.mean(dim=(2, 3)))            # (N, widths[-1]) -> (N, num_classes)


def augment(x: Tensor, pad: int = 4) -> Tensor:
    """Random crop of the image padded by `pad` zero pixels on each side, and a random horizontal flip
    (global torch RNG). x (N, 3, S, S) uint8 -> (N, 3, S, S) uint8."""
    n, _, s, _ = x.shape
    padded = F.pad(x, (pad,) * 4)                                              # (N, 3, S+2p, S+2p)
    dy, dx = torch.randint(2 * pad + 1, (2, n, 1), device=x.device)           # (N, 1) offsets each
    grid = torch.arange(s, device=x.device)
    rows, cols = dy + grid, dx + grid                                          # (N, S) each
    flip = torch.rand(n, 1, device=x.device) < 0.5
    cols = torch.where(flip, cols.flip(1), cols)
    batch = torch.arange(n, device=x.device).view(n, 1, 1, 1)
    channel = torch.arange(3, device=x.device).view(1, 3, 1, 1)
    return padded[batch, channel, rows.view(n, 1, s, 1), cols.view(n, 1, 1, s)]  # (N, 3, S, S)


def as_input(x: Tensor) -> Tensor:
    """uint8 (N, 3, S, S) -> float (N, 3, S, S) in [0, 1], channels_last (see gh.to_device)."""
    return x.float().div(255).contiguous(memory_format=torch.channels_last)


def accuracy(model: nn.Module, data: gh.ImageSet, batch_size: int = 500) -> float:
    """Fraction of `data` that `model` (images in [0, 1] -> logits) classifies as its label."""
    model.eval()
    predicted = gankit.core.batched(lambda x: model(as_input(x)).argmax(1), data.x, batch_size=batch_size,
                                    device=next(model.parameters()).device)
    return (predicted == data.y).float().mean().item()


def learning_rate(step: int, steps_per_epoch: int, epochs: int, peak: float) -> float:
    """Linear warm-up from peak/10 to `peak` over the first epoch, then linear decay to 0 at the end of the
    last one (the one-cycle shape). The first epoch does not depend on `epochs`, so a time limit can still
    choose the number of epochs after it."""
    if step < steps_per_epoch:
        return peak * (0.1 + 0.9 * step / steps_per_epoch)
    rest = max(1, (epochs - 1) * steps_per_epoch)
    return peak * max(0.0, 1 - (step - steps_per_epoch) / rest)


def train_classifier(train: gh.ImageSet, val: gh.ImageSet, epochs: int = 30, batch_size: int = 128,
                     lr: float = 0.1, weight_decay: float = 5e-4, time_limit_s: float | None = None,
                     device: torch.device | str = "cpu") -> tuple[Classifier, dict]:
    """Train a Classifier on `train` (SGD, Nesterov momentum, one-cycle learning rate, crop + flip
    augmentation) and return the one of the epoch with the best accuracy on `val` (in eval mode, on `device`),
    with a record of the run. With `time_limit_s`, the number of epochs is cut after the first one to what
    fits (so the learning rate still ends at 0), and training stops at the end of any epoch past the limit."""
    model = gh.to_device(Classifier(num_classes=len(train.classes)), device)
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9, nesterov=True, weight_decay=weight_decay)
    steps_per_epoch = len(train) // batch_size     # drop the last partial batch (BatchNorm needs a full one)
    x_all, y_all = train.x.to(device), train.y.to(device)
    best_acc, best_state, best_epoch, history = -1.0, None, 0, []
    start, step, epoch = time.perf_counter(), 0, 0
    bar = tqdm(total=epochs * steps_per_epoch, desc="classifier", unit="step")
    while epoch < epochs:
        model.train()
        perm = torch.randperm(len(train), device=device)
        for i in range(steps_per_epoch):
            idx = perm[i * batch_size:(i + 1) * batch_size]
            for group in opt.param_groups:
                group["lr"] = learning_rate(step, steps_per_epoch, epochs, lr)
            loss = F.cross_entropy(model(as_input(augment(x_all[idx]))), y_all[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            step += 1
            bar.update()
            bar.set_postfix(loss=f"{loss.item():.3f}", refresh=False)
        epoch += 1
        val_acc = accuracy(model, val)
        history.append(val_acc)
        if val_acc > best_acc:
            best_acc, best_state, best_epoch = val_acc, copy.deepcopy(model.state_dict()), epoch
        elapsed = time.perf_counter() - start
        if time_limit_s is not None and epoch == 1:
            epochs = max(1, min(epochs, int(time_limit_s / elapsed)))
            bar.total = epochs * steps_per_epoch
        tqdm.write(f"epoch {epoch}/{epochs}: loss {loss.item():.3f}, validation accuracy {val_acc:.4f}"
                   f"{' (best)' if best_epoch == epoch else ''}, {elapsed / 60:.1f} min")
        if time_limit_s is not None and elapsed > time_limit_s:
            break
    bar.close()
    model.load_state_dict(best_state)
    return model.eval(), {"val_accuracy": best_acc, "best_epoch": best_epoch, "epochs": epoch,
                          "val_accuracy_per_epoch": history, "seconds": round(time.perf_counter() - start, 1)}


def export(model: nn.Module, path: str | Path) -> None:
    """Script `model` (in eval mode, on the CPU) and save it to `path` atomically (a crash never leaves half a
    file)."""
    with gankit.files.atomic_path(path) as tmp, gh.warnings_ignored():   # TorchScript's deprecation FutureWarning
        torch.jit.save(torch.jit.script(model.cpu().eval()), str(tmp))


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data-dir", default="data/cifar10-jpeg",
                   help="CIFAR-10 as cifar-10-batches-py or an image tree {train,test}/<class>/*.png|jpg")
    p.add_argument("--out", default="model/eval/cifar10_classifier.pt", help="TorchScript file to write")
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--time-limit", type=float, help="minutes of training at most (cuts the epochs to what fits)")
    p.add_argument("--json", help="write accuracies, epochs, time and the command here")
    argv = sys.argv[1:] if argv is None else argv
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    if not Path(args.data_dir).is_dir():
        raise SystemExit(f"error: data folder {args.data_dir} not found: pass --data-dir DIR holding CIFAR-10 "
                         f"(cifar-10-batches-py or {{train,test}}/<class>/ images, e.g. data/cifar10-jpeg)")
    device = gh.setup(args.seed)
    try:
        cfg = gh.Config()
        train, val = gh.load_dataset(cfg, args.data_dir)
        model, record = train_classifier(train, val, args.epochs, args.batch_size, device=device,
                                         time_limit_s=None if args.time_limit is None else 60 * args.time_limit)
        test, = gh.load_dataset(cfg, args.data_dir, ("test",))
    except gh.GanError as exc:
        raise SystemExit(f"error: {exc}") from None
    test_acc = accuracy(model, test)
    export(model, args.out)
    print(f"validation accuracy {record['val_accuracy']:.4f} (epoch {record['best_epoch']} of {record['epochs']}), "
          f"test accuracy {test_acc:.4f}, {record['seconds'] / 60:.1f} min; wrote {args.out}")
    if args.json:
        gh.write_json_atomic({"test_accuracy": test_acc, **record, "batch_size": args.batch_size, "seed": args.seed,
                              "device": str(device), "threads": args.threads, "data": train.source,
                              "command": shlex.join(["python", "tools/train_classifier.py", *argv]),
                              "torch": torch.__version__,
                              "date": datetime.datetime.now().isoformat(timespec="seconds")}, args.json)


if __name__ == "__main__":
    main()
