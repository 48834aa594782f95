"""Self-attention (Zhang et al. 2019), our own: gamma starts at 0, so a network first relies on convolutions."""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

__all__ = ['SelfAttention', 'attention_stack']


class SelfAttention(nn.Module):
    """Self-attention of SAGAN (Zhang et al. 2019, Sec. 3; the paper's variant, no pooling of keys).

    query f(x) and key g(x) are 1x1 convs to C/8 channels, value h(x) a 1x1 conv to C channels;
    attn[j, i] = softmax_i(f(x_j) . g(x_i)) is how much output position j attends to input position i;
    o_j = sum_i attn[j, i] h(x_i); output gamma * o + x, with gamma a learned scalar that starts at 0 so the
    network first relies on local convolutions and brings in non-local evidence gradually.
    """

    def __init__(self, channels: int):
        super().__init__()
        inner = max(channels // 8, 1)
        self.query = nn.Conv2d(channels, inner, 1)
        self.key = nn.Conv2d(channels, inner, 1)
        self.value = nn.Conv2d(channels, channels, 1)
        self.gamma = nn.Parameter(torch.zeros(1))

    def attention(self, x: Tensor) -> Tensor:
        """x (N, C, H, W) -> attn (N, HW, HW), rows (queries) sum to 1 over key positions."""
        q = self.query(x).flatten(2)                   # (N, C/8, HW)
        k = self.key(x).flatten(2)                     # (N, C/8, HW)
        scores = torch.bmm(q.transpose(1, 2), k)       # (N, HW_query, HW_key)
        return scores.softmax(dim=-1)

    # On the CPU the fused kernel only pays off for large maps (tests/benchmarks/train_speed.py, one thread:
    # 0.70x at 8x8, 0.88x at 16x16, 2.44x at 32x32); on GPUs it is used at every size.
    cpu_fused_from: int = 32 * 32                      # positions (HW)

    def forward(self, x: Tensor, return_attention: bool = False) -> Tensor | tuple[Tensor, Tensor]:
        v = self.value(x).flatten(2)                   # (N, C, HW)
        explicit = x.device.type == "cpu" and v.shape[2] < self.cpu_fused_from
        if return_attention or explicit:
            attn = self.attention(x)                   # (N, HW, HW)
            o = torch.bmm(v, attn.transpose(1, 2))     # (N, C, HW): o[:, :, j] = sum_i attn[j, i] v[:, :, i]
            out = self.gamma * o.view_as(x) + x
            return (out, attn) if return_attention else out
        # Same o through the fused kernel, which never stores the (HW, HW) matrix (2.4x faster at 32x32 on
        # CPU, flash attention on GPU). Zero-padding query and key to C channels leaves q.k unchanged and
        # gives the equal head sizes the fused kernels need; scale=1 as in the paper (no 1/sqrt(d)).
        pad = (0, v.shape[1] - self.query.out_channels)
        q = F.pad(self.query(x).flatten(2).transpose(1, 2), pad)  # (N, HW, C)
        k = F.pad(self.key(x).flatten(2).transpose(1, 2), pad)    # (N, HW, C)
        v = v.transpose(1, 2).contiguous()                       # (N, HW, C), unit stride as the kernels need
        o = F.scaled_dot_product_attention(q[:, None], k[:, None], v[:, None], scale=1.0)
        return self.gamma * o[:, 0].transpose(1, 2).reshape_as(x) + x   # (N, HW, C) -> (N, C, H, W)


def attention_stack(resolution: int, placements: tuple[int, ...], channels: int) -> nn.Module:
    """One SelfAttention per time `resolution` appears in `placements` (identity when it does not)."""
    layers = [SelfAttention(channels) for r in placements if r == resolution]
    return nn.Sequential(*layers) if layers else nn.Identity()
