"""Sampling: fixed latents per seed, batched generation, interpolation, standing BatchNorm statistics."""
from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from .core import GanError, batched
from .device import device_of, eval_mode
from .config import Config
from .latent import draw_latents

__all__ = ['latents', 'generate', 'sample', 'slerp', 'interpolate_latents', 'interpolate_classes', 'traversal_latents',
           'traversal', 'encode', 'reconstruct', 'standing_batches', 'standing_batch_norm']


def latents(G: nn.Module, n: int, labels: Tensor | int | None = None, seed: int = 0) -> tuple[Tensor, Tensor | None]:
    """The inputs sample() feeds G: latents (n, latent_dim) from `seed` (z, then any InfoGAN codes; see
    draw_latents), and labels (n,) or None (unconditional G).
    `labels`: (n,) class indices, one class for all, or None (a conditional G then cycles 0, 1, 2, ...)."""
    cfg: Config = G.config
    z = draw_latents(cfg, n, torch.Generator().manual_seed(seed))
    if not cfg.cond_classes:
        return z, None
    y = torch.arange(n) % cfg.cond_classes if labels is None else torch.as_tensor(labels, dtype=torch.int64).expand(n)
    if y.min() < 0 or y.max() >= cfg.cond_classes:
        raise GanError(f"labels must be class indices in [0, {cfg.cond_classes - 1}]")
    return z, y


def generate(G: nn.Module, z: Tensor, y: Tensor | None, batch_size: int = 500) -> Tensor:
    """G(z, y) in eval mode, in batches on G's device: z (n, latent_dim), y (n,) class indices, (n, K) class
    weights or None -> images (n, 3, S, S) in [-1, 1] on the CPU."""
    with eval_mode(G):
        return batched(lambda z, y: G(z, y).float(), z, y, batch_size=batch_size, device=device_of(G))


def sample(G: nn.Module, n: int, labels: Tensor | int | None = None, seed: int = 0,
           batch_size: int = 500) -> Tensor:
    """n images (n, 3, S, S) in [-1, 1] on the CPU, the same for the same seed (see latents())."""
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
    """Within a class: images (steps, 3, S, S) along the slerp between the latents of
    sample(G, 1, label, seeds[0]) and sample(G, 1, label, seeds[1]); its ends are those two samples.
    `label` is ignored by an unconditional G."""
    (z0, y), (z1, _) = (latents(G, 1, label, seed) for seed in seeds)
    z = slerp(z0[0], z1[0], torch.linspace(0, 1, steps))                # (steps, latent_dim)
    return generate(G, z, None if y is None else y.expand(steps))


def interpolate_classes(G: nn.Module, classes: tuple[int, int] = (0, 1), seed: int = 0, steps: int = 8) -> Tensor:
    """Between classes: images (steps, 3, S, S) from one latent (that of sample(G, 1, seed=seed)) with
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


def traversal_latents(G: nn.Module, cat_values: list[int] | None = None, cont_index: int | None = 0,
                      steps: int = 8, seed: int = 0) -> Tensor:
    """InfoGAN's latent traversal (Chen et al. 2016, Figure 2): latents (len(cat_values) * steps, latent_dim),
    one row per value of the categorical code (all values when None), one column per step of the continuous
    code `cont_index` swept evenly from -1 to 1; z and the other continuous codes are those of
    latents(G, 1, seed=seed) throughout. With cont_index=None (or no continuous code) the columns are the
    latents of seeds seed, seed + 1, ... instead, each with every categorical value."""
    cfg: Config = G.config
    if not cfg.code_dim:
        raise GanError("a traversal needs an InfoGAN generator: train with info_cat or info_cont > 0")
    cat_values = list(range(cfg.info_cat)) if cat_values is None else list(cat_values)
    if any(not 0 <= c < cfg.info_cat for c in cat_values) or (cfg.info_cat and not cat_values):
        raise GanError(f"cat_values must be values of the categorical code in [0, {cfg.info_cat - 1}], got {cat_values}")
    if cont_index is not None and not 0 <= cont_index < cfg.info_cont:
        raise GanError(f"cont_index must be a continuous code in [0, {cfg.info_cont - 1}] or None, got {cont_index}")
    if cont_index is None:
        columns = torch.cat([latents(G, 1, seed=seed + i)[0] for i in range(steps)])      # (steps, latent_dim)
    else:
        columns = latents(G, 1, seed=seed)[0].repeat(steps, 1)
        columns[:, cfg.z_dim + cfg.info_cat + cont_index] = torch.linspace(-1, 1, steps)
    rows = []
    for c in cat_values or [None]:
        row = columns.clone()
        if c is not None:
            row[:, cfg.z_dim:cfg.z_dim + cfg.info_cat] = F.one_hot(torch.tensor(c), cfg.info_cat).to(row.dtype)
        rows.append(row)
    return torch.cat(rows)


def traversal(G: nn.Module, cat_values: list[int] | None = None, cont_index: int | None = 0, steps: int = 8,
              seed: int = 0) -> Tensor:
    """Images (rows * steps, 3, S, S) in [-1, 1] of traversal_latents() (unconditional G: the labels are those
    of a conditional G's latents(G, 1) for every image)."""
    z = traversal_latents(G, cat_values, cont_index, steps, seed)
    _, y = latents(G, 1, seed=seed)
    return generate(G, z, None if y is None else y.expand(len(z)))


def encode(G: nn.Module, images: Tensor, batch_size: int = 500) -> Tensor:
    """BiGAN's encoder E (G.encoder) in eval mode, in batches on G's device: images (N, 3, S, S) in [-1, 1]
    -> latents (N, z_dim) on the CPU."""
    if getattr(G, "encoder", None) is None:
        raise GanError("this generator has no encoder: train with encoder='bigan'")
    with eval_mode(G):
        return batched(lambda x: G.encoder(x).float(), images, batch_size=batch_size, device=device_of(G))


def reconstruct(G: nn.Module, images: Tensor) -> Tensor:
    """BiGAN's reconstructions G(E(x)) (N, 3, S, S) in [-1, 1] of images (N, 3, S, S) in [-1, 1]."""
    return generate(G, encode(G, images), None)


STANDING_BATCHES, STANDING_BATCH_SIZE = 16, 128   # standing statistics: at most 16 batches of 128 (2,048 samples)


def standing_batches(n_samples: int) -> int:
    """How many standing-statistics batches an evaluation on n_samples generated images takes: enough to cover
    them, at most STANDING_BATCHES (every evaluation of 1,921 samples or more takes all 16)."""
    return max(1, min(STANDING_BATCHES, math.ceil(n_samples / STANDING_BATCH_SIZE)))


@torch.no_grad()
def standing_batch_norm(G: nn.Module, n_batches: int = STANDING_BATCHES, batch_size: int = STANDING_BATCH_SIZE,
                        seed: int = 99_991) -> nn.Module:
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
