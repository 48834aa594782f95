"""The DCGAN (Radford et al. 2016; the reference report's networks): G and D, registered as ARCHS['dcgan']."""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from ..registry import ARCHS, CONDITIONINGS, Architecture
from ..config import Config
from ..attention import attention_stack
from ..latent import latent_heads
from ..layers import ConditionalBatchNorm, discriminator_heads, discriminator_output, join_label_planes, stages
from .base import BaseGenerator

__all__ = ['DCGANGenerator', 'DCGANDiscriminator']


class DCGANGenerator(BaseGenerator):
    """The reference report's DCGAN generator: z -> 4x4 (4c) -> 8x8 (2c) -> 16x16 (c) -> 32x32 (3) at
    img_size 32 (one more doubling stage per doubling of img_size: 8c at 4x4 for 64), each transposed conv
    followed by (conditional) BatchNorm and LeakyReLU(0.1); Tanh output. c = g_ch."""
    first_attention = 4                                                  # 4, 8, ..., S/2

    def build(self, cfg: Config, z_in: int, cbn_classes: int) -> None:
        c, res = cfg.g_ch, self.attention_resolutions(cfg.img_size)
        widths = [c * 2 ** (len(res) - 1 - i) for i in range(len(res))]  # ..., 4c, 2c, c
        self.convs = nn.ModuleList([nn.ConvTranspose2d(z_in, widths[0], 4, 1, 0, bias=False)]
                                   + [nn.ConvTranspose2d(a, b, 4, 2, 1, bias=False)
                                      for a, b in zip(widths, widths[1:])])
        self.norms = nn.ModuleList([ConditionalBatchNorm(w, cbn_classes) for w in widths])
        self.attns = nn.ModuleList([attention_stack(r, cfg.g_attn, w) for r, w in zip(res, widths)])
        self.out = nn.ConvTranspose2d(c, 3, 4, 2, 1, bias=False)

    def synthesise(self, h: Tensor, y: Tensor | None) -> Tensor:
        h = h[:, :, None, None]                                          # (N, z_in, 1, 1)
        for conv, norm, attn in zip(self.convs, self.norms, self.attns):
            h = attn(F.leaky_relu(norm(conv(h), y), 0.1))
        return torch.tanh(self.out(h))


class DCGANDiscriminator(nn.Module):
    """The reference report's DCGAN discriminator: strided 4x4 convs 3 -> c -> 2c -> 2c (16x16, 8x8, 4x4)
    at img_size 32 (widths double per stage, the last two equal: c, 2c, 4c, 4c at 64), LeakyReLU(0.2),
    BatchNorm except after the first (none with d_batchnorm=False); a 4x4 conv to one logit plus the class terms."""

    def __init__(self, cfg: Config):
        super().__init__()
        self.config, c = cfg, cfg.d_ch
        res = self.attention_resolutions(cfg.img_size)                   # S/2, ..., 8, 4
        widths = [c * 2 ** min(i, len(res) - 2) for i in range(len(res))]
        self.label_planes = cfg.cond_classes if CONDITIONINGS[cfg.cond].d_input else 0
        self.convs = nn.ModuleList([nn.Conv2d(a, b, 4, 2, 1, bias=i > 0 and not cfg.d_batchnorm)  # BN has a shift
                                    for i, (a, b) in enumerate(zip([3 + self.label_planes] + widths, widths))])
        self.norms = nn.ModuleList([nn.Identity()] + [nn.BatchNorm2d(w) if cfg.d_batchnorm else nn.Identity()
                                                      for w in widths[1:]])
        self.attns = nn.ModuleList([attention_stack(r, cfg.d_attn, w) for r, w in zip(res, widths)])
        self.out = nn.Conv2d(widths[-1], 1, 4, 1, 0, bias=False)
        self.embed, self.classifier = discriminator_heads(cfg, widths[-1])
        self.q_head, self.joint = latent_heads(cfg, widths[-1])

    @staticmethod
    def attention_resolutions(img_size: int) -> tuple[int, ...]:
        return tuple(img_size // 2 ** (i + 1) for i in range(stages(img_size, 4)))

    def forward(self, x: Tensor, y: Tensor | None = None, with_classes: bool = False, z: Tensor | None = None,
                with_codes: bool = False) -> Tensor | tuple[Tensor, ...]:
        """x (N, 3, S, S) in [-1, 1], y (N,) or None (z (N, z_dim) for BiGAN's joint D) -> logits (N,)
        [, class logits (N, K)] [, InfoGAN's code predictions (N, info_cat + info_cont)]."""
        h = join_label_planes(x, y, self.label_planes)                   # (N, 3 [+ K], S, S)
        for conv, norm, attn in zip(self.convs, self.norms, self.attns):
            h = attn(F.leaky_relu(norm(conv(h)), 0.2))                  # ends at (N, C, 4, 4)
        return discriminator_output(self, self.out(h).flatten(), h.sum((2, 3)), y, with_classes, z, with_codes)


ARCHS.add("dcgan", Architecture(DCGANGenerator, DCGANDiscriminator, "normal"))
