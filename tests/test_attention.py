"""Our self-attention: identity at initialisation (gamma 0), rows of the map are distributions, the explicit maths against pixel loops, the fused kernel against the explicit one."""
import math

import pytest
import torch
from torch.testing import assert_close

from gankit.attention import SelfAttention


def test_self_attention_is_identity_at_init_and_rows_are_distributions():
    torch.manual_seed(0)
    sa = SelfAttention(16)
    x = torch.randn(2, 16, 5, 4)
    out, attn = sa(x, return_attention=True)
    assert sa.gamma.item() == 0
    assert torch.equal(out, x)
    assert attn.shape == (2, 20, 20)
    assert (attn >= 0).all()
    assert_close(attn.sum(-1), torch.ones(2, 20))


def test_self_attention_matches_naive_pixel_loops():
    torch.manual_seed(0)
    sa = SelfAttention(16)
    with torch.no_grad():
        sa.gamma.fill_(0.7)
    x = torch.randn(2, 16, 3, 4)                      # H != W catches a transposed flattening
    out, attn = sa(x, return_attention=True)

    def conv1x1(conv, v):                             # a 1x1 conv applied to one pixel's channel vector
        return conv.weight[:, :, 0, 0] @ v + conv.bias

    n_img, c, hw = x.shape[0], x.shape[1], 12
    pix = x.flatten(2)                                # (N, C, HW), pixel j = row j // 4, column j % 4
    ref_attn, ref_out = torch.zeros(n_img, hw, hw), torch.zeros(n_img, c, hw)
    with torch.no_grad():
        for n in range(n_img):
            for j in range(hw):
                s = [float(conv1x1(sa.query, pix[n, :, j]) @ conv1x1(sa.key, pix[n, :, i])) for i in range(hw)]
                e = [math.exp(v - max(s)) for v in s]
                beta = [v / sum(e) for v in e]
                o_j = sum(beta[i] * conv1x1(sa.value, pix[n, :, i]) for i in range(hw))
                ref_attn[n, j] = torch.tensor(beta)
                ref_out[n, :, j] = 0.7 * o_j + pix[n, :, j]
    assert_close(attn, ref_attn)
    assert_close(out, ref_out.view_as(x))
    assert_close(sa(x), out)                          # without the map (small: explicit path) the same output
    sa.cpu_fused_from = 0
    assert_close(sa(x), out)                          # and through the fused kernel


@pytest.mark.parametrize("channels, hw", [(16, (3, 4)), (8, (8, 8)), (64, (4, 2))])
def test_fused_self_attention_matches_explicit_in_value_and_gradient(channels, hw):
    torch.manual_seed(0)
    sa = SelfAttention(channels)
    sa.cpu_fused_from = 0                             # the fused kernel at every size (CPU default: from 32x32)
    with torch.no_grad():
        sa.gamma.fill_(-1.3)
    x = torch.randn(3, channels, *hw, requires_grad=True)
    grads = []
    for fused in (True, False):
        out = sa(x) if fused else sa(x, return_attention=True)[0]
        out.pow(2).sum().backward()
        grads.append([x.grad.clone()] + [p.grad.clone() for p in sa.parameters()])
        x.grad = None
        sa.zero_grad()
    for g_fused, g_explicit in zip(*grads):
        assert_close(g_fused, g_explicit, rtol=1e-4, atol=1e-4)
