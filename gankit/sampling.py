"""Sampling: fixed latents per seed, batched generation, interpolation, standing BatchNorm statistics."""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from .core import GanError
from .device import device_of, eval_mode
from .config import Config

__all__ = ['latents', 'generate', 'sample', 'slerp', 'interpolate_latents', 'interpolate_classes', 'standing_batch_norm']


def latents(G: nn.Module, n: int, labels: Tensor | int | None = None, seed: int = 0) -> tuple[Tensor, Tensor | None]:
    """The inputs sample() feeds G: z (n, z_dim) from `seed`, and labels (n,) or None (unconditional G).
    `labels`: (n,) class indices, one class for all, or None (a conditional G then cycles 0, 1, 2, ...)."""
    cfg: Config = G.config
    z = torch.randn(n, cfg.z_dim, generator=torch.Generator().manual_seed(seed))
    if not cfg.cond_classes:
        return z, None
    y = torch.arange(n) % cfg.cond_classes if labels is None else torch.as_tensor(labels, dtype=torch.int64).expand(n)
    if y.min() < 0 or y.max() >= cfg.cond_classes:
        raise GanError(f"labels must be class indices in [0, {cfg.cond_classes - 1}]")
    return z, y


@torch.no_grad()
def generate(G: nn.Module, z: Tensor, y: Tensor | None, batch_size: int = 500) -> Tensor:
    """G(z, y) in eval mode, in batches on G's device: z (n, z_dim), y (n,) class indices, (n, K) class
    weights or None -> images (n, 3, S, S) in [-1, 1] on the CPU."""
    device = device_of(G)
    with eval_mode(G):
        return torch.cat([G(z[i:i + batch_size].to(device), None if y is None else y[i:i + batch_size].to(device))
                          .float().cpu() for i in range(0, len(z), batch_size)])


def sample(G: nn.Module, n: int, labels: Tensor | int | None = None, seed: int = 0,
           batch_size: int = 500) -> Tensor:
    """n images (n, 3, 32, 32) in [-1, 1] on the CPU, the same for the same seed (see latents())."""
    return generate(G, *latents(G, n, labels, seed), batch_size)


def slerp(z0: Tensor, z1: Tensor, t: Tensor) -> Tensor:
    """Spherical interpolation (Shoemake 1985; for GAN latents White 2016) from z0 to z1 (D,) at t (T,)
    in [0, 1] -> (T, D). It follows the great circle, so the points between keep the norm Gaussian
    latents have; a straight line passes through short latents G has hardly ever seen."""
    cos = torch.dot(z0 / z0.norm(), z1 / z1.norm()).clamp(-1, 1)
    omega, t = torch.arccos(cos), t[:, None]
    if torch.sin(omega) < 1e-6:                                         # (anti)parallel: the line is the arc
        return (1 - t) * z0 + t * z1
    return (torch.sin((1 - t) * omega) * z0 + torch.sin(t * omega) * z1) / torch.sin(omega)


def interpolate_latents(G: nn.Module, seeds: tuple[int, int] = (0, 1), label: int | None = 0,
                        steps: int = 8) -> Tensor:
    """Within a class: images (steps, 3, 32, 32) along the slerp between the latents of
    sample(G, 1, label, seeds[0]) and sample(G, 1, label, seeds[1]); its ends are those two samples.
    `label` is ignored by an unconditional G."""
    (z0, y), (z1, _) = (latents(G, 1, label, seed) for seed in seeds)
    z = slerp(z0[0], z1[0], torch.linspace(0, 1, steps))                # (steps, z_dim)
    return generate(G, z, None if y is None else y.expand(steps))


def interpolate_classes(G: nn.Module, classes: tuple[int, int] = (0, 1), seed: int = 0, steps: int = 8) -> Tensor:
    """Between classes: images (steps, 3, 32, 32) from one latent (that of sample(G, 1, seed=seed)) with
    the class conditioning going from classes[0] to classes[1]: soft labels (1 - t) one_hot(a) +
    t one_hot(b), i.e. conditional BN's per-class scale and shift mixed linearly. The ends are
    sample(G, 1, a, seed) and sample(G, 1, b, seed)."""
    k = G.config.cond_classes
    if not k:
        raise GanError("interpolating between classes needs a class-conditional generator (cond != 'none')")
    if not all(0 <= c < k for c in classes):
        raise GanError(f"classes must be class indices in [0, {k - 1}], got {classes}")
    z, _ = latents(G, 1, seed=seed)
    t = torch.linspace(0, 1, steps)[:, None]
    a, b = (F.one_hot(torch.tensor(c), k).float() for c in classes)
    return generate(G, z.expand(steps, -1), (1 - t) * a + t * b)        # labels (steps, k)


@torch.no_grad()
def standing_batch_norm(G: nn.Module, n_batches: int = 16, batch_size: int = 128, seed: int = 99_991) -> nn.Module:
    """Recompute G's BatchNorm running statistics as the average over n_batches of its own batches
    ("standing statistics", Brock et al. 2019). An EMA generator needs this before it is evaluated or
    saved: the statistics copied from the trained G belong to other weights, and with them the EMA
    generator's samples are clearly worse. Only the BatchNorm layers run in training mode (spectral norm's
    power iteration is not advanced); latents come from `seed`, the global RNG is untouched."""
    norms = [m for m in G.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    momenta = [m.momentum for m in norms]
    device = device_of(G)
    G.eval()
    for m in norms:
        m.reset_running_stats()
        m.momentum = None                                  # None: cumulative average over the batches
        m.train()
    for i in range(n_batches):
        z, y = latents(G, batch_size, seed=seed + i)
        G(z.to(device), None if y is None else y.to(device))
    for m, momentum in zip(norms, momenta):
        m.momentum = momentum
    return G.eval()
