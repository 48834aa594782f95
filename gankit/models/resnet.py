"""The SNGAN/BigGAN ResNet (SAGAN's backbone): G and D, registered as ARCHS['resnet']."""
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

__all__ = ['GBlock', 'DBlock', 'ResNetGenerator', 'ResNetDiscriminator']


class GBlock(nn.Module):
    """Pre-activation residual up-block of SNGAN/BigGAN: CBN-ReLU-up-conv3x3-CBN-ReLU-conv3x3, plus a
    1x1-conv shortcut of the upsampled input. (N, C_in, H, W) -> (N, C_out, 2H, 2W)."""

    def __init__(self, c_in: int, c_out: int, num_classes: int):
        super().__init__()
        self.norm1 = ConditionalBatchNorm(c_in, num_classes)
        self.conv1 = nn.Conv2d(c_in, c_out, 3, padding=1)
        self.norm2 = ConditionalBatchNorm(c_out, num_classes)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1)
        self.shortcut = nn.Conv2d(c_in, c_out, 1)

    def forward(self, x: Tensor, y: Tensor | None) -> Tensor:
        h = F.interpolate(F.relu(self.norm1(x, y)), scale_factor=2)
        h = self.conv2(F.relu(self.norm2(self.conv1(h), y)))
        return h + self.shortcut(F.interpolate(x, scale_factor=2))


class DBlock(nn.Module):
    """Residual block of the SNGAN/BigGAN discriminator. The first block sees raw pixels, so it has no
    activation before its first conv (SNGAN's "optimized" block); `mid` (self-attention at the input
    resolution) sits between its two convs. Downsampling is 2x2 average pooling after the convs."""

    def __init__(self, c_in: int, c_out: int, down: bool, first: bool = False, mid: nn.Module | None = None):
        super().__init__()
        self.first, self.down = first, down
        self.conv1 = nn.Conv2d(c_in, c_out, 3, padding=1)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1)
        self.mid = mid if mid is not None else nn.Identity()
        self.shortcut = nn.Conv2d(c_in, c_out, 1) if (c_in != c_out or down) else nn.Identity()

    def _pool(self, h: Tensor) -> Tensor:
        return F.avg_pool2d(h, 2) if self.down else h

    def forward(self, x: Tensor) -> Tensor:
        h = x if self.first else F.relu(x)
        h = self.conv2(F.relu(self.mid(self.conv1(h))))
        # the first block pools before its shortcut conv (cheaper, as in SNGAN); the others after it
        sc = self.shortcut(self._pool(x)) if self.first else self._pool(self.shortcut(x))
        return self._pool(h) + sc


class ResNetGenerator(BaseGenerator):
    """z -> linear to 4x4 -> up-blocks to 8x8, 16x16, ..., SxS, each optionally followed by self-attention
    -> BN-ReLU-conv3x3 -> Tanh. All blocks have g_ch channels (SNGAN CIFAR: 256)."""
    first_attention = 8                                                  # 8, 16, ..., S

    def build(self, cfg: Config, z_in: int, cbn_classes: int) -> None:
        c, res = cfg.g_ch, self.attention_resolutions(cfg.img_size)
        self.ch = c
        self.linear = nn.Linear(z_in, 4 * 4 * c)
        self.blocks = nn.ModuleList([GBlock(c, c, cbn_classes) for _ in res])
        self.attns = nn.ModuleList([attention_stack(r, cfg.g_attn, c) for r in res])
        self.norm = nn.BatchNorm2d(c)
        self.out = nn.Conv2d(c, 3, 3, padding=1)

    def synthesise(self, h: Tensor, y: Tensor | None) -> Tensor:
        h = self.linear(h).view(len(h), self.ch, 4, 4)                  # (N, c, 4, 4)
        for block, attn in zip(self.blocks, self.attns):
            h = attn(block(h, y))                                       # (N, c, 8|16|..|S, same)
        return torch.tanh(self.out(F.relu(self.norm(h))))


class ResNetDiscriminator(nn.Module):
    """SNGAN's CIFAR discriminator: blocks S -> S/2 -> ... -> 8 (32: 32->16->8), then two blocks at 8x8,
    d_ch channels (SNGAN: 128); self-attention at S (inside the first block) or after the block producing
    S/2, ..., 8; ReLU, global sum pooling (or mean: cfg.d_pool), linear logit plus the class terms."""

    def __init__(self, cfg: Config):
        super().__init__()
        self.config, c = cfg, cfg.d_ch
        res = self.attention_resolutions(cfg.img_size)                   # S, S/2, ..., 8
        self.label_planes = cfg.cond_classes if CONDITIONINGS[cfg.cond].d_input else 0
        first = DBlock(3 + self.label_planes, c, down=True, first=True, mid=attention_stack(res[0], cfg.d_attn, c))
        self.blocks = nn.ModuleList([first] + [DBlock(c, c, down=True) for _ in res[2:]]
                                    + [DBlock(c, c, down=False), DBlock(c, c, down=False)])
        self.attns = nn.ModuleList([attention_stack(r, cfg.d_attn, c) for r in res[1:]]
                                   + [nn.Identity(), nn.Identity()])
        self.linear = nn.Linear(c, 1)
        self.embed, self.classifier = discriminator_heads(cfg, c)
        self.q_head, self.joint = latent_heads(cfg, c)

    @staticmethod
    def attention_resolutions(img_size: int) -> tuple[int, ...]:
        return tuple(img_size // 2 ** i for i in range(stages(img_size, 8) + 1))

    def forward(self, x: Tensor, y: Tensor | None = None, with_classes: bool = False, z: Tensor | None = None,
                with_codes: bool = False) -> Tensor | tuple[Tensor, ...]:
        """x (N, 3, S, S) in [-1, 1], y (N,) or None (z (N, z_dim) for BiGAN's joint D) -> logits (N,)
        [, class logits (N, K)] [, InfoGAN's code predictions (N, info_cat + info_cont)]."""
        h = join_label_planes(x, y, self.label_planes)                   # (N, 3 [+ K], S, S)
        for block, attn in zip(self.blocks, self.attns):
            h = attn(block(h))                                          # ends at (N, c, 8, 8)
        phi = F.relu(h).sum((2, 3)) if self.config.d_pool == "sum" else F.relu(h).mean((2, 3))   # (N, c)
        return discriminator_output(self, self.linear(phi).squeeze(1), phi, y, with_classes, z, with_codes)


ARCHS.add("resnet", Architecture(ResNetGenerator, ResNetDiscriminator, "orthogonal"))
