"""The training step: n_critic D updates, n_gen G updates, the EMA of G; TTUR optimizers."""
from __future__ import annotations

from typing import Callable
import torch
import torch.nn as nn
from torch import Tensor

from .device import Precision
from .config import Config
from .latent import draw_latents
from .losses import class_loss, discriminate, gradient_penalty, info_loss, loss_pair
from .augment import consistency_penalty, consistency_shift, diff_augment

__all__ = ['ema_update', 'make_optimizers', 'random_labels', 'train_step']


@torch.no_grad()
def ema_update(ema: nn.Module, model: nn.Module, decay: float) -> None:
    """ema_p <- decay * ema_p + (1 - decay) * p for parameters; buffers (BN statistics, spectral norm's
    u/v power-iteration vectors) are copied, not averaged (train() recomputes the EMA's BN statistics
    with standing_batch_norm before every evaluation)."""
    for e, p in zip(ema.parameters(), model.parameters()):
        e.lerp_(p, 1.0 - decay)
    for e, b in zip(ema.buffers(), model.buffers()):
        e.copy_(b)


def make_optimizers(cfg: Config, G: nn.Module, D: nn.Module) -> tuple[torch.optim.Optimizer, torch.optim.Optimizer]:
    """TTUR (Heusel 2017): separate learning rates for G and D."""
    if cfg.optimizer == "adam":
        return (torch.optim.Adam(G.parameters(), cfg.g_lr, betas=cfg.betas),
                torch.optim.Adam(D.parameters(), cfg.d_lr, betas=cfg.betas))
    return torch.optim.RMSprop(G.parameters(), cfg.g_lr), torch.optim.RMSprop(D.parameters(), cfg.d_lr)


def random_labels(n: int, num_classes: int, device: torch.device) -> Tensor | None:
    """Uniform class labels (n,) for generated images, or None for an unconditional model."""
    return torch.randint(num_classes, (n,), device=device) if num_classes else None


def train_step(cfg: Config, G: nn.Module, D: nn.Module, G_ema: nn.Module | None,
               opt_g: torch.optim.Optimizer, opt_d: torch.optim.Optimizer,
               real_batch: Callable[[], tuple[Tensor, Tensor]], iteration: int,
               prec: Precision | None = None) -> dict[str, float]:
    """One GAN round: cfg.n_critic D updates, then cfg.n_gen G updates and the EMA update.
    `real_batch()` returns images (N, 3, S, S) in [-1, 1] and labels (N,). `prec` (default: float32) runs
    G and D under autocast; logits, losses and the gradient penalty stay in float32. With cfg.diffaug every
    image D sees in training (real, generated, the penalty's interpolates) is augmented first (diff_augment:
    new draws at every D call); with cfg.cr_weight D also pays bCR's consistency penalty. InfoGAN (cfg.info_cat,
    info_cont): G's latents carry codes, and D (with its Q head) and G both pay info_weight x info_loss() of Q's
    reading of them. BiGAN (cfg.encoder): D scores pairs, (x, E(x)) as real and (G(z), z) as generated; G and E
    (inside G, in G's optimizer) minimise D's loss with the two swapped. Returns the last losses and mean D
    logits on real and generated images (D(x), D(G(z))) of the last D step."""
    d_loss_fn, g_loss_fn = loss_pair(cfg.loss)
    device = next(G.parameters()).device
    encoder = getattr(G, "encoder", None)
    prec = prec or Precision(device.type)
    # (1) Update D: minimise d_loss (+ Lipschitz terms) on a real batch and a detached generated batch
    for step in range(cfg.n_critic):
        real, y_real = real_batch()
        y_real = y_real if cfg.cond_classes else None
        n = len(real)
        y_fake = random_labels(n, cfg.cond_classes, device)
        z_fake = draw_latents(cfg, n, device=device)                    # (n, latent_dim): z [, codes]
        # the last critic step keeps G's graph: (2) reuses its batch, saving one G forward (pytorch/examples)
        with torch.set_grad_enabled(step == cfg.n_critic - 1), prec.autocast():
            fake = G(z_fake, y_fake)
        with torch.no_grad(), prec.autocast():                          # BiGAN: real images pair with E(x)
            z_real = None if encoder is None else encoder(real)
        seen_real, seen_fake = diff_augment(real, cfg.diffaug), diff_augment(fake.detach(), cfg.diffaug)
        with prec.autocast():
            real_logits, real_classes, _ = discriminate(D, seen_real, y_real, z_real)
            fake_logits, _, fake_codes = discriminate(D, seen_fake, y_fake, z_fake)
        loss_d = d_loss_fn(real_logits, fake_logits)
        if real_classes is not None:   # ACGAN: D also learns to classify real images
            loss_d = loss_d + cfg.acgan_weight * class_loss(real_classes, y_real)
        if fake_codes is not None:     # InfoGAN: D's Q head learns to read G's codes back from its images
            loss_d = loss_d + cfg.info_weight * info_loss(fake_codes, z_fake[:, cfg.z_dim:], cfg.info_cat)
        if cfg.drift:
            loss_d = loss_d + cfg.drift * real_logits.pow(2).mean()
        if cfg.cr_weight:              # bCR: D's scores of real and generated images barely move under a shift
            with prec.autocast():
                real_shifted = discriminate(D, consistency_shift(seen_real), y_real, z_real).logits
                fake_shifted = discriminate(D, consistency_shift(seen_fake), y_fake, z_fake).logits
            loss_d = loss_d + cfg.cr_weight * (consistency_penalty(real_logits, real_shifted)
                                               + consistency_penalty(fake_logits, fake_shifted))
        if cfg.lipschitz == "gp":
            eps = torch.rand(n, 1, 1, 1, device=device)
            loss_d = loss_d + cfg.gp_weight * gradient_penalty(D, seen_real, seen_fake.float(), y_real, eps)
        opt_d.zero_grad(set_to_none=True)
        prec.step(loss_d, opt_d, prec.scaler_d)
        if cfg.lipschitz == "clip":    # the critic's weights; InfoGAN's Q head reads codes, it scores nothing
            q_head = set(map(id, D.q_head.parameters())) if getattr(D, "q_head", None) is not None else set()
            with torch.no_grad():
                for p in D.parameters():
                    if id(p) not in q_head:
                        p.clamp_(-cfg.clip_value, cfg.clip_value)
    # (2) Update G cfg.n_gen times: minimise g_loss, scored by the updated D; the first step reuses the last
    # critic step's batch, later ones draw a new one
    for step in range(cfg.n_gen):
        with prec.autocast():
            if step > 0:
                y_fake = random_labels(n, cfg.cond_classes, device)
                z_fake = draw_latents(cfg, n, device=device)
                fake = G(z_fake, y_fake)
            g_logits, g_classes, g_codes = discriminate(D, diff_augment(fake, cfg.diffaug), y_fake, z_fake)
            if encoder is not None:    # BiGAN: E's pairs (x, E(x)) of the last real batch, with E's gradient
                e_logits = discriminate(D, diff_augment(real, cfg.diffaug), None, encoder(real)).logits
        # BiGAN: G and E flip D's labels, each pushing its pairs towards the other side (non-saturating for bce)
        loss_g = g_loss_fn(g_logits) if encoder is None else d_loss_fn(g_logits, e_logits)
        if g_classes is not None:      # ACGAN: G makes images D classifies as their labels
            loss_g = loss_g + cfg.acgan_weight * class_loss(g_classes, y_fake)
        if g_codes is not None:        # InfoGAN: G makes its codes readable from its images
            loss_g = loss_g + cfg.info_weight * info_loss(g_codes, z_fake[:, cfg.z_dim:], cfg.info_cat)
        opt_g.zero_grad(set_to_none=True)
        prec.step(loss_g, opt_g, prec.scaler_g)
    if G_ema is not None:
        ema_update(G_ema, G, cfg.ema_decay if iteration >= cfg.ema_start else 0.0)
    return {"d_loss": loss_d.item(), "g_loss": loss_g.item(),
            "d_real": real_logits.mean().item(), "d_fake": fake_logits.mean().item()}
