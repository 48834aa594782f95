"""The training step: n_critic D updates, n_gen G updates, the EMA of G; TTUR optimizers. Sync-free: it returns
device tensors and never waits for the device."""
from __future__ import annotations

from typing import Callable
import torch
import torch.nn as nn
from torch import Tensor

from .device import Precision
from .config import Config
from .latent import draw_latents
from .layers import power_iteration
from .losses import (DOutputs, class_loss, discriminate, gradient_penalty, info_loss, loss_pair,
                     mode_seeking_loss)
from .augment import consistency_penalty, consistency_shift, diff_augment

__all__ = ['LOG_KEYS', 'ema_update', 'ema_decay', 'make_optimizers', 'random_labels', 'scores_jointly', 'train_step', 'stack_logs']


LOG_KEYS = ("d_loss", "g_loss", "d_real", "d_fake")   # what train_step returns, in the order stack_logs stacks them


@torch.no_grad()
def ema_update(ema: nn.Module, model: nn.Module, decay: float | Tensor) -> None:
    """ema_p <- decay * ema_p + (1 - decay) * p for parameters, in one foreach kernel; buffers (BN statistics,
    spectral norm's u/v power-iteration vectors) are copied, not averaged (train() recomputes the EMA's BN
    statistics with standing_batch_norm before every evaluation). `decay` may be a 0-d tensor on the models'
    device, so that a captured step reads its current value instead of baking one in."""
    weight = 1.0 - decay
    torch._foreach_lerp_(list(ema.parameters()), list(model.parameters()), weight)
    torch._foreach_copy_(list(ema.buffers()), list(model.buffers()))


def ema_decay(cfg: Config, iteration: int) -> float:
    """The EMA's decay at `iteration` (0-based): cfg.ema_decay from cfg.ema_start on; 0 before (the EMA copies G)."""
    return cfg.ema_decay if iteration >= cfg.ema_start else 0.0


def make_optimizers(cfg: Config, G: nn.Module, D: nn.Module) -> tuple[torch.optim.Optimizer, torch.optim.Optimizer]:
    """TTUR (Heusel 2017): separate learning rates for G and D. Each optimizer updates all its tensors in a few
    large kernels: Adam fused on CUDA and CPU (foreach elsewhere), RMSprop foreach; on CUDA they are capturable
    (their step counters stay on the GPU) so that a CUDA graph can record the whole training step."""
    device = next(G.parameters()).device
    capturable = device.type == "cuda"
    if cfg.optimizer == "adam":
        kind = {"fused": True} if device.type in ("cuda", "cpu") else {"foreach": True}
        return tuple(torch.optim.Adam(model.parameters(), lr, betas=cfg.betas, capturable=capturable, **kind)
                     for model, lr in ((G, cfg.g_lr), (D, cfg.d_lr)))
    return tuple(torch.optim.RMSprop(model.parameters(), lr, foreach=True, capturable=capturable)
                 for model, lr in ((G, cfg.g_lr), (D, cfg.d_lr)))


def random_labels(n: int, num_classes: int, device: torch.device, paired: bool = False) -> Tensor | None:
    """Uniform class labels (n,) for generated images, or None for an unconditional model. `paired` (mode
    seeking): rows m..2m-1 (m = n // 2) repeat rows 0..m-1, so that row i and row m + i share a label; the same n
    values are drawn either way, so the random stream after the draw does not depend on it."""
    if not num_classes:
        return None
    y = torch.randint(num_classes, (n,), device=device)
    m = n // 2
    return torch.cat([y[:m], y[:m], y[2 * m:]]) if paired else y


def scores_jointly(D: nn.Module) -> bool:
    """Whether D may score real and generated images in one forward pass of both batches: only without
    BatchNorm, whose statistics would mix the two batches (a DCGAN critic with d_batchnorm scores them apart,
    as in Radford et al. 2016)."""
    return not any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in D.modules())


def _cat(a: Tensor | None, b: Tensor | None) -> Tensor | None:
    return None if a is None else torch.cat([a, b])


def _split(t: Tensor | None, n: int) -> tuple[Tensor | None, Tensor | None]:
    return (None, None) if t is None else (t[:n], t[n:])


def _score_pair(D: nn.Module, real: Tensor, fake: Tensor, y_real: Tensor | None, y_fake: Tensor | None,
                z_real: Tensor | None, z_fake: Tensor | None, joint: bool) -> tuple[DOutputs, DOutputs]:
    """D's outputs on a real and a generated batch (n each): one forward pass of both (2n) when `joint`, else
    two; the same values either way (D treats every image on its own)."""
    if not joint:
        return discriminate(D, real, y_real, z_real), discriminate(D, fake, y_fake, z_fake)
    both = discriminate(D, torch.cat([real, fake]), _cat(y_real, y_fake), _cat(z_real, z_fake))
    parts = [_split(t, len(real)) for t in both]
    return DOutputs(*(p[0] for p in parts)), DOutputs(*(p[1] for p in parts))


def _critic_loss(cfg: Config, D: nn.Module, real: Tensor, fake: Tensor, labels: tuple[Tensor | None, Tensor | None],
                 latents: tuple[Tensor | None, Tensor | None], joint: bool, prec: Precision
                 ) -> tuple[Tensor, Tensor, Tensor]:
    """D's loss on a real and a (detached) generated batch (n each, as D sees them: augmented where cfg.diffaug) with
    their `labels` (y_real, y_fake) and BiGAN/InfoGAN `latents` (z_real, z_fake): the objective, plus each term cfg
    asks for (ACGAN's classes, InfoGAN's codes, the drift, bCR's consistency, the gradient penalty). Returns the loss
    and D's logits (n,) on the real and the generated batch."""
    d_loss_fn, _ = loss_pair(cfg.loss)
    (y_real, y_fake), (z_real, z_fake) = labels, latents
    with prec.autocast():
        (real_logits, real_classes, _), (fake_logits, _, fake_codes) = _score_pair(
            D, real, fake, y_real, y_fake, z_real, z_fake, joint)
    loss = d_loss_fn(real_logits, fake_logits)
    if real_classes is not None:   # ACGAN: D also learns to classify real images
        loss = loss + cfg.acgan_weight * class_loss(real_classes, y_real)
    if fake_codes is not None:     # InfoGAN: D's Q head learns to read G's codes back from its images
        loss = loss + cfg.info_weight * info_loss(fake_codes, z_fake[:, cfg.z_dim:], cfg.info_cat)
    if cfg.drift:
        loss = loss + cfg.drift * real_logits.pow(2).mean()
    if cfg.cr_weight:              # bCR: D's scores of real and generated images barely move under a shift
        real_moved, fake_moved = consistency_shift(real), consistency_shift(fake)
        with prec.autocast():
            real_shifted, fake_shifted = (o.logits for o in _score_pair(
                D, real_moved, fake_moved, y_real, y_fake, z_real, z_fake, joint))
        loss = loss + cfg.cr_weight * (consistency_penalty(real_logits, real_shifted)
                                       + consistency_penalty(fake_logits, fake_shifted))
    if cfg.lipschitz == "gp":
        eps = torch.rand(len(real), 1, 1, 1, device=real.device)
        loss = loss + cfg.gp_weight * gradient_penalty(D, real, fake.float(), y_real, eps)
    return loss, real_logits, fake_logits


@torch.no_grad()
def _clip_critic(D: nn.Module, clip_value: float) -> None:
    """Weight clipping (WGAN): the critic's weights into [-clip_value, clip_value]; InfoGAN's Q head reads codes, it
    scores nothing, so it is left alone."""
    q_head = set(map(id, D.q_head.parameters())) if getattr(D, "q_head", None) is not None else set()
    critic = [p for p in D.parameters() if id(p) not in q_head]
    torch._foreach_clamp_min_(critic, -clip_value)
    torch._foreach_clamp_max_(critic, clip_value)


def _generator_loss(cfg: Config, D: nn.Module, fake: Tensor, y_fake: Tensor | None, z_fake: Tensor,
                    real: Tensor, encoder: nn.Module | None, prec: Precision) -> Tensor:
    """G's loss on its batch `fake` (with G's graph), scored by D, plus ACGAN's, InfoGAN's and MSGAN's terms where cfg
    asks for them. BiGAN (`encoder`): G and E flip D's labels, each pushing its pairs towards the other side:
    (G(z), z) as real, (x, E(x)) of the last `real` batch as generated (non-saturating for bce)."""
    d_loss_fn, g_loss_fn = loss_pair(cfg.loss)
    with prec.autocast():
        g_logits, g_classes, g_codes = discriminate(D, diff_augment(fake, cfg.diffaug), y_fake, z_fake)
        if encoder is not None:    # E's pairs, with E's gradient
            e_logits = discriminate(D, diff_augment(real, cfg.diffaug), None, encoder(real)).logits
    loss = g_loss_fn(g_logits) if encoder is None else d_loss_fn(g_logits, e_logits)
    if g_classes is not None:      # ACGAN: G makes images D classifies as their labels
        loss = loss + cfg.acgan_weight * class_loss(g_classes, y_fake)
    if g_codes is not None:        # InfoGAN: G makes its codes readable from its images
        loss = loss + cfg.info_weight * info_loss(g_codes, z_fake[:, cfg.z_dim:], cfg.info_cat)
    if cfg.ms_weight:              # MSGAN: G keeps the pairs of its batch (same label, other latents) apart
        loss = loss + cfg.ms_weight * mode_seeking_loss(fake, z_fake)
    return loss


def train_step(cfg: Config, G: nn.Module, D: nn.Module, G_ema: nn.Module | None,
               opt_g: torch.optim.Optimizer, opt_d: torch.optim.Optimizer,
               real_batch: Callable[[], tuple[Tensor, Tensor]], decay: float | Tensor = 0.0,
               prec: Precision | None = None) -> dict[str, Tensor]:
    """One GAN round: cfg.n_critic D updates, then cfg.n_gen G updates and the EMA update with `decay`
    (ema_decay(): 0 copies G). `real_batch()` returns images (N, 3, S, S) in [-1, 1] and labels (N,). `prec`
    (default: float32) runs G and D under autocast, one region per network pass; logits, losses and the gradient
    penalty stay in float32. Spectral norm's power iteration runs once per update of each network, before it.
    With cfg.diffaug every image D sees in training (real, generated, the penalty's interpolates) is augmented
    first (diff_augment: new draws at every D call); with cfg.cr_weight D also pays bCR's consistency penalty.
    InfoGAN (cfg.info_cat, info_cont): G's latents carry codes, and D (with its Q head) and G both pay
    info_weight x info_loss() of Q's reading of them. BiGAN (cfg.encoder): D scores pairs, (x, E(x)) as real
    and (G(z), z) as generated; G and E (inside G, in G's optimizer) minimise D's loss with the two swapped.
    Mode seeking (cfg.ms_weight): every generated batch is drawn in two halves with the same labels, and G pays
    ms_weight x mode_seeking_loss() over the pairs.

    Returns 0-d tensors on the models' device (LOG_KEYS): the last losses and mean D logits on real and generated
    images (D(x), D(G(z))) of the last D step. Nothing in the step waits for the device (no .item(), no
    tensor-valued branch): the training loop moves these values to the host in chunks (stack_logs), and a CUDA
    graph can record the whole step (gankit/capture.py)."""
    device = next(G.parameters()).device
    encoder = getattr(G, "encoder", None)
    prec = prec or Precision(device.type)
    joint = scores_jointly(D)
    paired = cfg.ms_weight > 0                                          # mode seeking compares same-label pairs
    power_iteration(G)                                                  # G's update comes after the D steps,
    # (1) Update D: minimise d_loss (+ Lipschitz terms) on a real batch and a detached generated batch
    for step in range(cfg.n_critic):                                    # but its forward comes first
        power_iteration(D)
        real, y_real = real_batch()
        y_real = y_real if cfg.cond_classes else None
        n = len(real)
        y_fake = random_labels(n, cfg.cond_classes, device, paired)
        z_fake = draw_latents(cfg, n, device=device)                    # (n, latent_dim): z [, codes]
        # the last critic step keeps G's graph: (2) reuses its batch, saving one G forward (pytorch/examples)
        with torch.set_grad_enabled(step == cfg.n_critic - 1), prec.autocast():
            fake = G(z_fake, y_fake)
        with torch.no_grad(), prec.autocast():                          # BiGAN: real images pair with E(x)
            z_real = None if encoder is None else encoder(real)
        seen_real, seen_fake = diff_augment(real, cfg.diffaug), diff_augment(fake.detach(), cfg.diffaug)
        loss_d, real_logits, fake_logits = _critic_loss(cfg, D, seen_real, seen_fake, (y_real, y_fake),
                                                        (z_real, z_fake), joint, prec)
        opt_d.zero_grad(set_to_none=True)
        prec.step(loss_d, opt_d, prec.scaler_d)
        if cfg.lipschitz == "clip":
            _clip_critic(D, cfg.clip_value)
    # (2) Update G cfg.n_gen times: minimise g_loss, scored by the updated D; the first step reuses the last
    # critic step's batch, later ones draw a new one
    for step in range(cfg.n_gen):
        if step > 0:
            power_iteration(G)
            y_fake = random_labels(n, cfg.cond_classes, device, paired)
            z_fake = draw_latents(cfg, n, device=device)
            with prec.autocast():
                fake = G(z_fake, y_fake)
        loss_g = _generator_loss(cfg, D, fake, y_fake, z_fake, real, encoder, prec)
        opt_g.zero_grad(set_to_none=True)
        prec.step(loss_g, opt_g, prec.scaler_g, inputs=list(G.parameters()))   # no gradients for D's weights
    if G_ema is not None:
        ema_update(G_ema, G, decay)
    return {"d_loss": loss_d.detach(), "g_loss": loss_g.detach(),
            "d_real": real_logits.detach().mean(), "d_fake": fake_logits.detach().mean()}


def stack_logs(logs: dict[str, Tensor]) -> Tensor:
    """A step's values as one tensor (len(LOG_KEYS),) on its device: what the loop collects per iteration and
    moves to the host once per chunk."""
    return torch.stack([logs[k] for k in LOG_KEYS])
