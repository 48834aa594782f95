"""Differentiable augmentation (DiffAugment, Zhao et al. 2020; registered in AUGMENTS) and bCR's consistency shift."""
from __future__ import annotations

import torch
from torch import Tensor

from .registry import AUGMENTS, augment_policy

__all__ = ['augment_color', 'augment_translation', 'augment_cutout', 'consistency_shift', 'consistency_penalty', 'diff_augment']


def _per_image(x: Tensor) -> Tensor:
    """Uniform [0, 1) draws (N, 1, 1, 1), one per image of x (N, C, H, W)."""
    return torch.rand(len(x), 1, 1, 1, device=x.device, dtype=x.dtype)


def augment_color(x: Tensor) -> Tensor:
    """Per image: brightness + U(-0.5, 0.5), saturation x U(0, 2), contrast x U(0.5, 1.5) (DiffAugment's
    ranges for images in [-1, 1]); x (N, 3, H, W) -> (N, 3, H, W)."""
    x = x + (_per_image(x) - 0.5)
    grey = x.mean(dim=1, keepdim=True)
    x = (x - grey) * (2 * _per_image(x)) + grey
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    return (x - mean) * (_per_image(x) + 0.5) + mean


def augment_translation(x: Tensor, ratio: float = 0.125) -> Tensor:
    """Per image: shift by up to ratio * size pixels along each axis (integers, uniform), filling the
    uncovered border with zeros (mid-grey); x (N, C, H, W) -> (N, C, H, W)."""
    n, _, h, w = x.shape
    sy, sx = int(h * ratio + 0.5), int(w * ratio + 0.5)
    rows = torch.arange(h, device=x.device).view(1, h, 1) - torch.randint(-sy, sy + 1, (n, 1, 1), device=x.device)
    cols = torch.arange(w, device=x.device).view(1, 1, w) - torch.randint(-sx, sx + 1, (n, 1, 1), device=x.device)
    inside = (rows >= 0) & (rows < h) & (cols >= 0) & (cols < w)              # (N, H, W)
    batch = torch.arange(n, device=x.device).view(n, 1, 1)
    moved = x.permute(0, 2, 3, 1)[batch, rows.clamp(0, h - 1), cols.clamp(0, w - 1)]   # (N, H, W, C)
    return (moved * inside.unsqueeze(-1).to(x.dtype)).permute(0, 3, 1, 2)


def augment_cutout(x: Tensor, ratio: float = 0.5) -> Tensor:
    """Per image: zero (mid-grey) a ratio * size square centred on a uniform pixel, cut at the border;
    x (N, C, H, W) -> (N, C, H, W)."""
    n, _, h, w = x.shape
    ch, cw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    top = torch.randint(0, h, (n, 1, 1), device=x.device) - ch // 2
    left = torch.randint(0, w, (n, 1, 1), device=x.device) - cw // 2
    rows, cols = torch.arange(h, device=x.device).view(1, h, 1), torch.arange(w, device=x.device).view(1, 1, w)
    cut = (rows >= top) & (rows < top + ch) & (cols >= left) & (cols < left + cw)   # (N, H, W)
    return x * (~cut).unsqueeze(1).to(x.dtype)


def consistency_shift(x: Tensor) -> Tensor:
    """bCR's semantics-preserving transform (Zhang et al. 2020; Zhao et al. 2021): per image a random
    horizontal flip, then a shift by up to 1/8 of the size (augment_translation); x (N, C, H, W) -> same."""
    flip = torch.rand(len(x), 1, 1, 1, device=x.device) < 0.5
    return augment_translation(torch.where(flip, x.flip(3), x))


def consistency_penalty(logits: Tensor, shifted_logits: Tensor) -> Tensor:
    """bCR's term for one batch: E[(D(x) - D(T(x)))^2], logits (N,) of x and of its transform -> scalar."""
    return (logits - shifted_logits).pow(2).mean()


AUGMENTS.add("color", augment_color)
AUGMENTS.add("translation", augment_translation)
AUGMENTS.add("cutout", augment_cutout)


def diff_augment(x: Tensor, policy: str) -> Tensor:
    """x (N, C, H, W) through the policy's transforms (each drawn per image from the global RNG, so resumed
    training repeats them); policy "none" returns x itself."""
    for name in augment_policy(policy):
        x = AUGMENTS[name](x)
    return x
