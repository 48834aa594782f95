"""Losses: pure functions of logits (registered in LOSSES), ACGAN's class loss, InfoGAN's and MSGAN's terms, the
gradient penalty."""
from __future__ import annotations

from typing import Callable, NamedTuple
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor
from torch.nn.attention import SDPBackend, sdpa_kernel

from .registry import LOSSES

__all__ = ['loss_pair', 'd_loss', 'g_loss', 'class_loss', 'info_loss', 'mode_seeking_loss', 'DOutputs', 'discriminate', 'gradient_penalty']


def _wgan_d(real_logits: Tensor, fake_logits: Tensor) -> Tensor:
    """Wasserstein critic (Arjovsky 2017): E[D(fake)] - E[D(real)], minimised (dual form, negated)."""
    return fake_logits.mean() - real_logits.mean()


def _wgan_g(fake_logits: Tensor) -> Tensor:
    """Wasserstein generator: -E[D(fake)]."""
    return -fake_logits.mean()


def _hinge_d(real_logits: Tensor, fake_logits: Tensor) -> Tensor:
    """Hinge (Lim & Ye 2017; SAGAN's choice): E[relu(1 - D(real))] + E[relu(1 + D(fake))]."""
    return F.relu(1.0 - real_logits).mean() + F.relu(1.0 + fake_logits).mean()


def _bce_d(real_logits: Tensor, fake_logits: Tensor) -> Tensor:
    """GAN discriminator (Goodfellow 2014): -E[log sigmoid(D(real))] - E[log(1 - sigmoid(D(fake)))]."""
    return (F.binary_cross_entropy_with_logits(real_logits, torch.ones_like(real_logits))
            + F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits)))


def _bce_g(fake_logits: Tensor) -> Tensor:
    """Non-saturating generator loss: -E[log sigmoid(D(fake))]."""
    return F.binary_cross_entropy_with_logits(fake_logits, torch.ones_like(fake_logits))


# name -> (D loss (real_logits, fake_logits), G loss (fake_logits)); hinge's G loss is Wasserstein's
LOSSES.add("wgan", (_wgan_d, _wgan_g))
LOSSES.add("hinge", (_hinge_d, _wgan_g))
LOSSES.add("bce", (_bce_d, _bce_g))


def loss_pair(name: str) -> tuple[Callable[[Tensor, Tensor], Tensor], Callable[[Tensor], Tensor]]:
    return LOSSES.pick(name)


def d_loss(name: str, real_logits: Tensor, fake_logits: Tensor) -> Tensor:
    """Discriminator/critic loss to minimise; logits (N,) for real and generated images -> scalar."""
    return loss_pair(name)[0](real_logits, fake_logits)


def g_loss(name: str, fake_logits: Tensor) -> Tensor:
    """Generator loss to minimise; logits (N,) of generated images -> scalar."""
    return loss_pair(name)[1](fake_logits)


def class_loss(class_logits: Tensor, y: Tensor) -> Tensor:
    """ACGAN's auxiliary classifier loss (Odena et al. 2017): cross-entropy -E[log softmax(class_logits)[y]],
    class_logits (N, K), labels y (N,). D minimises it on real images, G on its images and their labels."""
    return F.cross_entropy(class_logits, y)


def info_loss(q: Tensor, codes: Tensor, info_cat: int) -> Tensor:
    """InfoGAN's mutual-information term (Chen et al. 2016), the variational bound's negative without its
    constant entropy H(c): Q's outputs q (N, info_cat + info_cont) (logits of the categorical code, then means of
    the continuous ones) against the codes G was given (N, info_cat + info_cont) (one-hot, then values in
    [-1, 1]) -> scalar: the categorical code's cross-entropy plus, per continuous code, the Gaussian negative
    log-likelihood with unit variance without its constant, (c - mu)^2 / 2, summed over codes, averaged over
    the batch. D (with Q) and G both minimise it."""
    loss = q.new_zeros(())
    if info_cat:
        loss = loss + F.cross_entropy(q[:, :info_cat], codes[:, :info_cat].argmax(1))
    if codes.shape[1] > info_cat:
        loss = loss + 0.5 * (q[:, info_cat:] - codes[:, info_cat:]).pow(2).sum(1).mean()
    return loss


def mode_seeking_loss(fake: Tensor, z: Tensor, eps: float = 1e-5) -> Tensor:
    """Mode seeking (MSGAN, Mao et al. 2019): 1 / (mean |x1 - x2| / mean |z1 - z2| + eps) for generated images
    fake (N, C, H, W) and their latents z (N, Z), row i paired with row m + i (m = N // 2; an odd last row is left
    out) -> scalar in float32. Large when G maps distinct latents to nearly the same image; G minimises it."""
    m = len(fake) // 2
    images = (fake[:m].float() - fake[m:2 * m].float()).abs().mean()
    latents = (z[:m].float() - z[m:2 * m].float()).abs().mean()
    return 1.0 / (images / latents + eps)


class DOutputs(NamedTuple):
    """What one forward pass of D gives the training step, in float32."""
    logits: Tensor                   # adversarial logits (N,)
    classes: Tensor | None           # ACGAN class logits (N, K), None without a class head
    codes: Tensor | None             # InfoGAN's Q outputs (N, info_cat + info_cont), None without codes


def discriminate(D: nn.Module, x: Tensor, y: Tensor | None, z: Tensor | None = None) -> DOutputs:
    """D's adversarial logits (N,), its class logits for an ACGAN D and its code predictions for an InfoGAN D
    (else None), from one forward pass, in float32 (under autocast too: losses are computed in float32).
    z (N, z_dim): the latents paired with x, for a BiGAN D (ignored by any other)."""
    with_classes, with_codes = D.classifier is not None, getattr(D, "q_head", None) is not None
    pair = {"z": z} if getattr(D, "joint", None) is not None else {}
    if not (with_classes or with_codes):
        return DOutputs(D(x, y, **pair).float(), None, None)
    out = [t.float() for t in D(x, y, with_classes=with_classes, with_codes=with_codes, **pair)]
    return DOutputs(out[0], out[1] if with_classes else None, out[-1] if with_codes else None)


def gradient_penalty(D: nn.Module, real: Tensor, fake: Tensor, y: Tensor | None, eps: Tensor) -> Tensor:
    """WGAN-GP (Gulrajani 2017): E[(||grad_x D(x_hat)||_2 - 1)^2] at x_hat = eps * real + (1 - eps) * fake,
    eps (N, 1, 1, 1) in [0, 1]. Differentiable w.r.t. D's parameters: attention runs as plain matrix products here,
    since the fused attention kernels (flash, memory-efficient) have no second derivative."""
    x_hat = (eps * real + (1 - eps) * fake).detach().requires_grad_(True)
    with sdpa_kernel(SDPBackend.MATH):
        (grad,) = torch.autograd.grad(D(x_hat, y).sum(), x_hat, create_graph=True)
    return (grad.flatten(1).norm(dim=1) - 1).pow(2).mean()
