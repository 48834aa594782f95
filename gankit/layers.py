"""Layers the architectures share: conditional BatchNorm, spectral norm (float32 power iteration), and where
class labels enter G and D (CONDITIONINGS)."""
from __future__ import annotations

import hashlib
import math
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor
from torch.nn.utils import parametrize
from torch.nn.utils.parametrizations import _SpectralNorm, spectral_norm

from .core import GanError
from .registry import CONDITIONINGS
from .config import Config

__all__ = ['ConditionalBatchNorm', 'named_seed', 'apply_spectral_norm', 'power_iteration', 'check_labels', 'generator_input', 'embed_labels', 'join_label_embedding', 'one_hot', 'join_label_planes', 'discriminator_heads', 'class_projection', 'discriminator_output', 'stages']


class ConditionalBatchNorm(nn.Module):
    """BatchNorm whose scale and shift are looked up per class (de Vries 2017; used by SNGAN/SAGAN/BigGAN).
    With num_classes=0 it is a plain affine BatchNorm and ignores labels."""

    def __init__(self, channels: int, num_classes: int):
        super().__init__()
        self.conditional = num_classes > 0
        self.bn = nn.BatchNorm2d(channels, affine=num_classes == 0)
        if num_classes:
            self.gain = nn.Embedding(num_classes, channels)
            self.bias = nn.Embedding(num_classes, channels)
            nn.init.ones_(self.gain.weight)
            nn.init.zeros_(self.bias.weight)

    def forward(self, x: Tensor, y: Tensor | None) -> Tensor:
        """y: class indices (N,), or class weights (N, K) (a soft label: interpolate_classes mixes the
        scale and shift of two classes this way; a one-hot row gives exactly that class's)."""
        h = self.bn(x)
        if y is None or not self.conditional:
            return h
        gain, bias = embed_labels(self.gain, y), embed_labels(self.bias, y)   # (N, C) each
        return h * gain[:, :, None, None] + bias[:, :, None, None]


class _Float32SpectralNorm(_SpectralNorm):
    """torch's spectral-norm parametrization (its u, v buffers, their random start and first 15 power iterations)
    with a pure forward: W / sigma, sigma = u^T W v from the current u and v, computed in float32 even inside a
    bf16/fp16 autocast region. torch's forward also runs a power iteration, updating u and v in place, on every
    training-mode call (two or three per training step for D); here power_iteration() runs one, once per
    update (Miyato et al. 2018), so that the forward has no side effects: torch.compile traces it without a graph
    break and a CUDA graph can capture it."""

    def forward(self, weight: Tensor) -> Tensor:
        if weight.ndim == 1:   # torch's rule for vectors: plain normalisation
            return F.normalize(weight, dim=0, eps=self.eps)
        with torch.autocast(weight.device.type, enabled=False):
            weight = weight.float() if weight.dtype in (torch.float16, torch.bfloat16) else weight
            sigma = torch.vdot(self._u, torch.mv(self._reshape_weight_to_matrix(weight), self._v))
            return weight / sigma

    @torch.no_grad()
    def power_iteration(self, weight: Tensor) -> None:
        """One step of the power method on `weight` (the raw parameter): u <- Wv / |Wv|, v <- W^T u / |W^T u|."""
        if weight.ndim > 1:
            self._power_method(self._reshape_weight_to_matrix(weight.to(self._u.dtype)), 1)


def _spectral_norm(module: nn.Module) -> None:
    spectral_norm(module)
    module.parametrizations.weight[0].__class__ = _Float32SpectralNorm  # same state (u, v), float32 maths


@torch.no_grad()
def power_iteration(model: nn.Module) -> None:
    """One power iteration in every spectrally normalised layer of `model` (none without spectral norm): what
    the training step runs before each update of the model, outside the forward passes."""
    for module in model.modules():
        if parametrize.is_parametrized(module, "weight"):
            for p in module.parametrizations.weight:
                if isinstance(p, _Float32SpectralNorm):
                    p.power_iteration(module.parametrizations.weight.original)


def named_seed(seed: int, name: str) -> int:
    """A random seed keyed by a run's seed and a layer's name. Layers initialised from it start the same in
    every model of one seed that has them, whatever other layers (attention, class embeddings) it adds, so
    the arms of a study differ only in what they study."""
    return int.from_bytes(hashlib.sha256(f"{seed}/{name}".encode()).digest()[:8], "little")


def apply_spectral_norm(model: nn.Module, seed: int = 0) -> nn.Module:
    """Spectral norm (Miyato et al. 2018; sigma in float32, one power iteration per update: power_iteration()) on every
    conv and linear layer of `model`, attention convs included, and on a projection embedding named `embed`.
    Each layer's random power-iteration start comes from named_seed(seed, its name)."""
    for name, module in list(model.named_modules()):
        if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)) or (
                name == "embed" and isinstance(module, nn.Embedding)):
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(named_seed(seed, name))
                _spectral_norm(module)
    return model


def check_labels(y: Tensor | None, num_classes: int) -> Tensor | None:
    if num_classes and y is None:
        raise GanError(f"this model is class-conditional ({num_classes} classes): pass labels y of shape (N,)")
    return y if num_classes else None


def generator_input(cfg: Config) -> tuple[nn.Embedding | None, int]:
    """G's label embedding (concat, acgan; None otherwise) and the width of its input (z with any InfoGAN codes,
    cfg.latent_dim, then the label)."""
    if not (CONDITIONINGS[cfg.cond].g_input and cfg.cond_classes):
        return None, cfg.latent_dim
    return nn.Embedding(cfg.cond_classes, cfg.z_dim), cfg.latent_dim + cfg.z_dim


def embed_labels(embed: nn.Embedding, y: Tensor) -> Tensor:
    """embed(y) for class indices y (N,); for class weights y (N, K) (soft labels, e.g. interpolate_classes)
    the same mixture of the classes' embedding rows. -> (N, embedding_dim)."""
    return y.to(embed.weight.dtype) @ embed.weight if y.is_floating_point() else embed(y)


def join_label_embedding(embed: nn.Embedding | None, z: Tensor, y: Tensor | None) -> Tensor:
    """z (N, latent_dim) -> (N, latent_dim + z_dim) = [z, embed(y)] for a G with a label embedding; z itself
    otherwise."""
    return z if embed is None else torch.cat([z, embed_labels(embed, y)], 1)


def one_hot(index: Tensor, k: int, dtype: torch.dtype) -> Tensor:
    """Rows of the k x k identity for class indices (N,) -> (N, k) in `dtype`. Unlike F.one_hot it does not check
    the indices' range on the host (a device sync that a captured or compiled step cannot contain)."""
    return (index[:, None] == torch.arange(k, device=index.device)).to(dtype)


def join_label_planes(x: Tensor, y: Tensor | None, num_classes: int) -> Tensor:
    """D's input with the label joined (CGAN): x (N, 3, S, S) -> (N, 3 + K, S, S) with one-hot planes, or a
    flat x (N, F) -> (N, F + K) with the one-hot vector; x itself when num_classes is 0."""
    if not num_classes:
        return x
    onehot = one_hot(check_labels(y, num_classes), num_classes, x.dtype)   # (N, K)
    if x.dim() == 2:
        return torch.cat([x, onehot], 1)
    return torch.cat([x, onehot[:, :, None, None].expand(-1, -1, *x.shape[2:])], 1)


def discriminator_heads(cfg: Config, features: int) -> tuple[nn.Embedding | None, nn.Linear | None]:
    """The class terms at the end of D, read from phi (N, features): the projection embedding (projection)
    and the ACGAN classifier (acgan, projection-ac); None where cfg.cond does not use them."""
    cond, k = CONDITIONINGS[cfg.cond], cfg.cond_classes
    return (nn.Embedding(k, features) if cond.d_projection and k else None,
            nn.Linear(features, k) if cond.d_classifier and k else None)


def class_projection(embed: nn.Embedding | None, phi: Tensor, y: Tensor | None) -> Tensor:
    """Class term of a projection discriminator (Miyato & Koyama 2018): <embed(y), phi>, phi (N, C) -> (N,).
    Zero for a D without projection (embed is None)."""
    if embed is None:
        return phi.new_zeros(len(phi))
    y = check_labels(y, embed.num_embeddings)
    return (embed(y) * phi).sum(1)


def discriminator_output(D: nn.Module, logit: Tensor, phi: Tensor, y: Tensor | None, with_classes: bool,
                         z: Tensor | None = None, with_codes: bool = False) -> Tensor | tuple[Tensor, ...]:
    """The end of every D's forward: adversarial logits (N,) = logit + projection term (+ BiGAN's joint term of
    phi and the latents z (N, z_dim)); with `with_classes` also the ACGAN class logits (N, K), with `with_codes`
    InfoGAN's Q outputs (N, info_cat + info_cont), both from the same features phi (N, C), in that order."""
    logits = logit + class_projection(D.embed, phi, y)
    if D.joint is not None:
        if z is None:
            raise GanError("a BiGAN discriminator (encoder='bigan') scores pairs: pass its latents z (N, z_dim)")
        logits = logits + D.joint(phi, z)
    if not (with_classes or with_codes):
        return logits
    extra = []
    if with_classes:
        if D.classifier is None:
            raise GanError(f"class logits come only from a discriminator with a class head (cond='acgan' or "
                           f"'projection-ac'), not cond={D.config.cond!r}")
        extra.append(D.classifier(phi))
    if with_codes:
        if D.q_head is None:
            raise GanError("code predictions come only from an InfoGAN discriminator (info_cat or info_cont > 0)")
        extra.append(D.q_head(phi))
    return (logits, *extra)


def stages(img_size: int, smallest: int) -> int:
    """Doublings from `smallest` to img_size pixels (32 from 4: 3)."""
    return int(math.log2(img_size // smallest))
