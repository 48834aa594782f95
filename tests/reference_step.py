"""A plain GAN training step, written for reading rather than speed, that gankit's train_step is checked against:
D called once on the real and once on the generated batch, a per-tensor EMA and clipping loop, optimizers built
here in their per-tensor form, every value moved to the host with .item() at the end (pytorch/examples'
dcgan/main.py in shape). It covers what tests/test_step.py compares: the losses, ACGAN's class head, the drift
term, weight clipping, DiffAugment, spectral norm (one power iteration per update) and the EMA."""
import torch
import torch.nn as nn

import gan_helpers as gh
from gankit.augment import diff_augment
from gankit.latent import draw_latents
from gankit.layers import power_iteration
from gankit.losses import class_loss, discriminate, loss_pair


def reference_optimizers(cfg: gh.Config, G: nn.Module, D: nn.Module) -> tuple[torch.optim.Optimizer, ...]:
    """Adam or RMSprop updating one tensor at a time (foreach=False): the textbook loop."""
    if cfg.optimizer == "adam":
        return tuple(torch.optim.Adam(m.parameters(), lr, betas=cfg.betas, foreach=False)
                     for m, lr in ((G, cfg.g_lr), (D, cfg.d_lr)))
    return tuple(torch.optim.RMSprop(m.parameters(), lr, foreach=False) for m, lr in ((G, cfg.g_lr), (D, cfg.d_lr)))


def reference_step(cfg: gh.Config, G: nn.Module, D: nn.Module, G_ema: nn.Module | None, opt_g, opt_d,
                   real_batch, decay: float) -> dict[str, float]:
    d_loss_fn, g_loss_fn = loss_pair(cfg.loss)
    power_iteration(G)
    for step in range(cfg.n_critic):
        # (1) Update D
        power_iteration(D)
        real, y_real = real_batch()
        y_real = y_real if cfg.cond_classes else None
        y_fake = torch.randint(cfg.cond_classes, (len(real),)) if cfg.cond_classes else None
        z = draw_latents(cfg, len(real))
        with torch.set_grad_enabled(step == cfg.n_critic - 1):
            fake = G(z, y_fake)
        seen_real, seen_fake = diff_augment(real, cfg.diffaug), diff_augment(fake.detach(), cfg.diffaug)
        real_out = discriminate(D, seen_real, y_real)
        fake_out = discriminate(D, seen_fake, y_fake)
        loss_d = d_loss_fn(real_out.logits, fake_out.logits)
        if real_out.classes is not None:
            loss_d = loss_d + cfg.acgan_weight * class_loss(real_out.classes, y_real)
        if cfg.drift:
            loss_d = loss_d + cfg.drift * real_out.logits.pow(2).mean()
        opt_d.zero_grad()
        loss_d.backward()
        opt_d.step()
        if cfg.lipschitz == "clip":
            with torch.no_grad():
                for p in D.parameters():
                    p.clamp_(-cfg.clip_value, cfg.clip_value)
    # (2) Update G
    for step in range(cfg.n_gen):
        if step > 0:
            power_iteration(G)
            y_fake = torch.randint(cfg.cond_classes, (len(real),)) if cfg.cond_classes else None
            z = draw_latents(cfg, len(real))
            fake = G(z, y_fake)
        g_out = discriminate(D, diff_augment(fake, cfg.diffaug), y_fake)
        loss_g = g_loss_fn(g_out.logits)
        if g_out.classes is not None:
            loss_g = loss_g + cfg.acgan_weight * class_loss(g_out.classes, y_fake)
        opt_g.zero_grad()
        loss_g.backward()
        opt_g.step()
    if G_ema is not None:
        with torch.no_grad():
            for e, p in zip(G_ema.parameters(), G.parameters()):
                e.mul_(decay).add_(p, alpha=1 - decay)
            for e, b in zip(G_ema.buffers(), G.buffers()):
                e.copy_(b)
    return {"d_loss": loss_d.item(), "g_loss": loss_g.item(),
            "d_real": real_out.logits.mean().item(), "d_fake": fake_out.logits.mean().item()}
