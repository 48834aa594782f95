"""Images to files: grids, PNGs, snapshots over training, one image per class."""
from __future__ import annotations

from pathlib import Path
import numpy as np
import torch
import torch.nn as nn
from torch import Tensor

from .core import CIFAR10_CLASSES, GanError
from .data import to_uint8
from .sampling import sample

__all__ = ['image_grid', 'class_names', 'save_pngs', 'snapshot_path', 'save_snapshot', 'save_class_samples']


def image_grid(images: Tensor, nrow: int = 8, pad: int = 2) -> np.ndarray:
    """Images (N, 3, H, W) in [-1, 1] -> one uint8 picture (rows, cols, 3), nrow images per row."""
    import torchvision.utils as vutils
    grid = vutils.make_grid(images.cpu(), nrow=nrow, padding=pad, pad_value=1.0)  # (3, rows, cols)
    return to_uint8(grid).permute(1, 2, 0).numpy()


def class_names(G: nn.Module, names: tuple[str, ...] | None = None) -> tuple[str, ...]:
    """The names of G's classes: `names` when given (a checkpoint's split records them), CIFAR-10's for 10
    classes, else the indices as text."""
    k = G.config.cond_classes
    return tuple(names) if names else (CIFAR10_CLASSES if k == 10 else tuple(map(str, range(k))))


def save_pngs(images: Tensor, folder: str | Path, names: list[str]) -> list[Path]:
    """Write images (N, 3, H, W) in [-1, 1] as 8-bit PNGs named `names` (without extension)."""
    from PIL import Image
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / f"{name}.png" for name in names]
    for img, path in zip(to_uint8(images).permute(0, 2, 3, 1).numpy(), paths):
        Image.fromarray(img).save(path)
    return paths


def snapshot_path(run_dir: str | Path, iteration: int) -> Path:
    return Path(run_dir) / "snapshots" / f"iter_{iteration:06d}.png"


def save_snapshot(G: nn.Module, path: str | Path, n: int = 64, seed: int = 0) -> Path:
    """An 8-per-row grid PNG of sample(G, n, seed): with the default seed the latents and labels (cycling
    through the classes) of every snapshot, and of the notebooks' 64-sample grids, are the same."""
    from PIL import Image
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(image_grid(sample(G, n, seed=seed))).save(path)
    return path


def save_class_samples(G: nn.Module, folder: str | Path, seed: int = 0,
                       names: tuple[str, ...] | None = None) -> list[Path]:
    """One generated image per class as <folder>/<index>_<class>.png (the DCGAN/ and SAGAN/ deliverables),
    named by class_names(G, names)."""
    k = G.config.cond_classes
    if not k:
        raise GanError("one image per class needs a class-conditional generator (cond != 'none')")
    names = class_names(G, names)
    return save_pngs(sample(G, k, labels=torch.arange(k), seed=seed), folder,
                     [f"{c:02d}_{name}" for c, name in enumerate(names)])
