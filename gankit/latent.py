"""What two GANs beside the kit's add to G's latents and D's heads, as configurations of the kit's own models:
InfoGAN's codes (Chen et al. 2016; Config.info_cat, info_cont), drawn beside z, joined to G's input and predicted
by a Q head on D's features; and BiGAN/ALI's encoder E (Donahue et al. 2017, Dumoulin et al. 2017;
Config.encoder), an image -> z network that lives inside G (G.encoder: G's optimizer trains it, G's checkpoints
carry it), judged with G by a joint term of D(x, z)."""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from .core import GanError
from .config import Config
from .layers import one_hot, stages

__all__ = ['draw_latents', 'split_codes', 'Encoder', 'QHead', 'JointHead', 'make_encoder', 'latent_heads']


def draw_latents(cfg: Config, n: int, generator: torch.Generator | None = None,
                 device: torch.device | str | None = None) -> Tensor:
    """G's latents (n, latent_dim): z ~ N(0, 1) (n, z_dim), then the categorical code one-hot (n, info_cat),
    uniform over its values, then info_cont codes ~ Uniform(-1, 1). Without codes exactly torch.randn(n, z_dim)
    (the same draws from the same RNG as before codes existed)."""
    z = torch.randn(n, cfg.z_dim, generator=generator, device=device)
    parts = [z]
    if cfg.info_cat:
        index = torch.randint(cfg.info_cat, (n,), generator=generator, device=device)
        parts.append(one_hot(index, cfg.info_cat, z.dtype))
    if cfg.info_cont:
        parts.append(torch.rand(n, cfg.info_cont, generator=generator, device=device) * 2 - 1)
    return torch.cat(parts, 1) if len(parts) > 1 else z


def split_codes(cfg: Config, latents: Tensor) -> tuple[Tensor | None, Tensor | None]:
    """Latents (N, latent_dim) -> the categorical code's values (N,) int64 (None without one) and the continuous
    codes (N, info_cont) (None without them)."""
    if latents.shape[1] != cfg.latent_dim:
        raise GanError(f"latents of width {latents.shape[1]} given to a model taking {cfg.latent_dim} "
                       f"(z_dim {cfg.z_dim} + codes {cfg.code_dim})")
    codes = latents[:, cfg.z_dim:]
    cat = codes[:, :cfg.info_cat].argmax(1) if cfg.info_cat else None
    return cat, codes[:, cfg.info_cat:] if cfg.info_cont else None


class Encoder(nn.Module):
    """BiGAN's encoder E: x (N, 3, S, S) in [-1, 1] -> z (N, z_dim), a DCGAN discriminator's conv trunk (strided
    4x4 convs to 4x4 with D's widths, c = d_ch: c, 2c, 2c at 32; c, 2c, 4c, 4c at 64; LeakyReLU(0.2)) and a
    linear layer. No BatchNorm: E
    lives in G, and standing_batch_norm() recomputes G's BatchNorm statistics from G's own forward passes,
    which never run E."""

    def __init__(self, cfg: Config):
        super().__init__()
        n = stages(cfg.img_size, 4)                                      # S/2, ..., 4
        widths = [cfg.d_ch * 2 ** min(i, max(n - 2, 0)) for i in range(n)]
        self.convs = nn.ModuleList([nn.Conv2d(a, b, 4, 2, 1) for a, b in zip([3] + widths, widths)])
        self.out = nn.Linear(widths[-1] * 16, cfg.z_dim)

    def features(self, x: Tensor) -> Tensor:
        """The trunk's features (N, 16 * last width): what a linear probe reads."""
        h = x
        for conv in self.convs:
            h = F.leaky_relu(conv(h), 0.2)                               # ends at (N, C, 4, 4)
        return h.flatten(1)

    def forward(self, x: Tensor) -> Tensor:
        return self.out(self.features(x))                               # (N, z_dim)


class QHead(nn.Module):
    """InfoGAN's Q head on D's features phi (N, F): LayerNorm, a hidden LeakyReLU layer, then the logits of the
    categorical code and the means of the continuous ones (N, info_cat + info_cont). The LayerNorm keeps the
    codes' losses on one scale whatever D's pooling (a sum over 4x4 or 8x8 positions) makes of phi's size."""

    def __init__(self, features: int, outputs: int):
        super().__init__()
        self.net = nn.Sequential(nn.LayerNorm(features), nn.Linear(features, features), nn.LeakyReLU(0.2),
                                 nn.Linear(features, outputs))

    def forward(self, phi: Tensor) -> Tensor:
        return self.net(phi)


class JointHead(nn.Module):
    """BiGAN's joint term: D's image features phi (N, F) and an embedding of z (two LeakyReLU layers) ->
    one logit (N,) from their concatenation. D adds it to its image logit (BigBiGAN sums such scores)."""

    def __init__(self, features: int, z_dim: int):
        super().__init__()
        self.z_embed = nn.Sequential(nn.Linear(z_dim, features), nn.LeakyReLU(0.2),
                                     nn.Linear(features, features), nn.LeakyReLU(0.2))
        self.joint = nn.Sequential(nn.Linear(2 * features, features), nn.LeakyReLU(0.2), nn.Linear(features, 1))

    def forward(self, phi: Tensor, z: Tensor) -> Tensor:
        return self.joint(torch.cat([phi, self.z_embed(z.to(phi.dtype))], 1)).squeeze(1)


def make_encoder(cfg: Config) -> Encoder | None:
    """G's encoder (cfg.encoder="bigan"), else None."""
    return Encoder(cfg) if cfg.encoder == "bigan" else None


def latent_heads(cfg: Config, features: int) -> tuple[QHead | None, JointHead | None]:
    """D's heads on its features phi (N, features): InfoGAN's Q head (phi -> info_cat logits of the categorical
    code, then info_cont means of the continuous ones) and BiGAN's joint term; None where cfg has neither."""
    return (QHead(features, cfg.code_dim) if cfg.code_dim else None,
            JointHead(features, cfg.z_dim) if cfg.encoder == "bigan" else None)
