"""The fully-connected GAN (Goodfellow et al. 2014): G and D, registered as ARCHS['mlp']."""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from ..registry import ARCHS, CONDITIONINGS, Architecture
from ..config import Config
from ..layers import ConditionalBatchNorm, discriminator_heads, discriminator_output, join_label_planes
from .base import BaseGenerator

__all__ = ['MLPGenerator', 'MLPDiscriminator']


class MLPGenerator(BaseGenerator):
    """The fully-connected GAN generator (Goodfellow et al. 2014): z -> two hidden layers of 16 g_ch units,
    each Linear-(conditional) BatchNorm-ReLU -> Linear to 3 S^2 values -> Tanh. No attention, no encoder."""

    def build(self, cfg: Config, z_in: int, cbn_classes: int) -> None:
        h = 16 * cfg.g_ch
        self.hidden = nn.ModuleList([nn.Linear(z_in, h), nn.Linear(h, h)])
        self.norms = nn.ModuleList([ConditionalBatchNorm(h, cbn_classes), ConditionalBatchNorm(h, cbn_classes)])
        self.out = nn.Linear(h, 3 * cfg.img_size ** 2)

    def synthesise(self, h: Tensor, y: Tensor | None) -> Tensor:
        for linear, norm in zip(self.hidden, self.norms):
            h = F.relu(norm(linear(h)[:, :, None, None], y).flatten(1))  # BN over (N, h, 1, 1) = BatchNorm1d
        s = self.config.img_size
        return torch.tanh(self.out(h)).view(len(h), 3, s, s)


class MLPDiscriminator(nn.Module):
    """The fully-connected GAN discriminator: flattened image (with the one-hot label for concat) -> two
    hidden layers of 16 d_ch units with LeakyReLU(0.2) -> one logit plus the class terms."""

    def __init__(self, cfg: Config):
        super().__init__()
        self.config, h = cfg, 16 * cfg.d_ch
        self.label_planes = cfg.cond_classes if CONDITIONINGS[cfg.cond].d_input else 0
        self.hidden = nn.ModuleList([nn.Linear(3 * cfg.img_size ** 2 + self.label_planes, h), nn.Linear(h, h)])
        self.out = nn.Linear(h, 1)
        self.embed, self.classifier = discriminator_heads(cfg, h)
        self.q_head = self.joint = None

    @staticmethod
    def attention_resolutions(img_size: int) -> tuple[int, ...]:
        return ()

    def forward(self, x: Tensor, y: Tensor | None = None, with_classes: bool = False) -> Tensor | tuple[Tensor, Tensor]:
        """x (N, 3, S, S) in [-1, 1], y (N,) or None -> logits (N,) [, class logits (N, K)]."""
        h = join_label_planes(x.flatten(1), y, self.label_planes)        # (N, 3 S^2 [+ K])
        for linear in self.hidden:
            h = F.leaky_relu(linear(h), 0.2)                             # (N, 16 d_ch)
        return discriminator_output(self, self.out(h).squeeze(1), h, y, with_classes)


ARCHS.add("mlp", Architecture(MLPGenerator, MLPDiscriminator, "normal"))
