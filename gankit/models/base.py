"""What every generator shares: the label input, BiGAN's encoder, the resolutions where attention may sit and
the forward pass's entry (labels checked, label embedding joined to z); each architecture builds its layers
(`build`) and maps the joined input to images (`synthesise`)."""
from __future__ import annotations

from typing import ClassVar

import torch.nn as nn
from torch import Tensor

from ..config import Config
from ..latent import make_encoder
from ..layers import check_labels, generator_input, join_label_embedding, stages
from ..registry import CONDITIONINGS

__all__ = ['BaseGenerator']


class BaseGenerator(nn.Module):
    """Base of the generators. `first_attention` is the smallest resolution where G may hold self-attention
    (then every doubling up to its last stage), None where it can hold none."""
    first_attention: ClassVar[int | None] = None

    def __init__(self, cfg: Config):
        super().__init__()
        self.config, self.num_classes = cfg, cfg.cond_classes
        self.label_embed, z_in = generator_input(cfg)
        self.build(cfg, z_in, cfg.cond_classes if CONDITIONINGS[cfg.cond].g_cbn else 0)
        self.encoder = make_encoder(cfg)                                 # BiGAN's E (encoder='bigan')

    def build(self, cfg: Config, z_in: int, cbn_classes: int) -> None:
        """Create the architecture's layers: z_in input values (z and any label embedding), conditional
        BatchNorm over cbn_classes classes (0: unconditional BatchNorm)."""
        raise NotImplementedError

    @classmethod
    def attention_resolutions(cls, img_size: int) -> tuple[int, ...]:
        if cls.first_attention is None:
            return ()
        return tuple(cls.first_attention * 2 ** i for i in range(stages(img_size, 4)))

    def synthesise(self, h: Tensor, y: Tensor | None) -> Tensor:
        """h (N, z_in), y (N,) or None -> images (N, 3, S, S) in [-1, 1]."""
        raise NotImplementedError

    def forward(self, z: Tensor, y: Tensor | None = None) -> Tensor:
        """z (N, z_dim), y (N,) int64 or None -> images (N, 3, S, S) in [-1, 1]."""
        y = check_labels(y, self.num_classes)
        return self.synthesise(join_label_embedding(self.label_embed, z, y), y)
