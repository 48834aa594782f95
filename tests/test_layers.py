"""Spectral norm (every layer 1-Lipschitz, the modes), where class labels enter G and D (conditional BatchNorm, projection), the DCGAN critic's BatchNorm switch."""
import pytest
import torch
import torch.nn as nn
from helpers import K, Z, labels, small_cfg, tiny_cfg
from torch.nn.utils import parametrize
from torch.testing import assert_close

import gan_helpers as gh
import gankit.registry
import gankit.layers


def _sn_matrix(module):
    """Weight as the 2-D matrix spectral norm normalises (torch: output dim first; dim 1 for ConvTranspose)."""
    w = module.weight
    return (w.transpose(0, 1) if isinstance(module, nn.ConvTranspose2d) else w).flatten(1)


SN_TARGETS = (nn.Conv2d, nn.ConvTranspose2d, nn.Linear, nn.Embedding)


@pytest.mark.parametrize("arch", ["resnet", "dcgan"])
def test_spectral_norm_makes_every_layer_1_lipschitz(arch):
    gh.setup(0)
    cfg = small_cfg(arch, spectral_norm="gd", g_attn=(gankit.registry.attention_resolutions(arch, "G", 32)[1],),
                    d_attn=(gankit.registry.attention_resolutions(arch, "D", 32)[1],))
    G, D = gh.build_models(cfg)
    with torch.no_grad():                             # raw weights 3x larger: only the normalisation gives 1
        for m in list(G.modules()) + list(D.modules()):
            if parametrize.is_parametrized(m, "weight"):
                m.parametrizations.weight.original.mul_(3.0)
        for _ in range(20):                           # one power iteration per update (train_step runs them)
            gankit.layers.power_iteration(G), gankit.layers.power_iteration(D)
    G.eval(), D.eval()
    for model in (G, D):
        targets = [m for m in model.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear))]
        normed = [m for m in model.modules() if parametrize.is_parametrized(m, "weight")]
        assert len(normed) == len(targets) + (model is D)   # every conv/linear, plus D's projection
        with torch.no_grad():
            sigmas = [torch.linalg.matrix_norm(_sn_matrix(m), ord=2).item() for m in normed]
        assert sigmas == pytest.approx([1.0] * len(normed), rel=0.05)


@pytest.mark.parametrize("arch", ["resnet", "dcgan"])
def test_without_spectral_norm_some_layer_is_far_from_1(arch):
    gh.setup(0)
    G, D = gh.build_models(small_cfg(arch, spectral_norm="none", lipschitz="gp"))
    layers = [m for model in (G, D) for m in model.modules() if isinstance(m, SN_TARGETS)]
    assert not any(parametrize.is_parametrized(m) for m in layers)
    sigmas = [torch.linalg.matrix_norm(_sn_matrix(m), ord=2).item() for m in layers]
    assert max(abs(s - 1) for s in sigmas) > 0.5


@pytest.mark.parametrize("arch", ["dcgan", "resnet"])
def test_generator_output_depends_on_label(arch):
    gh.setup(0)
    G, _ = gh.build_models(small_cfg(arch))
    G.eval()                                                 # running stats: samples independent of the batch
    z = torch.randn(4, Z)
    with torch.no_grad():
        assert_close(G(z, labels(4, 0)), G(z, labels(4, 1)))  # fresh CBN: gain 1, bias 0 for every class
        for m in G.modules():
            if isinstance(m, gankit.layers.ConditionalBatchNorm):
                nn.init.normal_(m.gain.weight, 1.0, 0.2)
                nn.init.normal_(m.bias.weight, 0.0, 0.2)
        x0, x1 = G(z, labels(4, 0)), G(z, labels(4, 1))
        mixed = torch.tensor([0, 1, 1, 0])
        x_mixed = G(z, mixed)
    assert not torch.allclose(x0, x1, atol=1e-3)
    assert_close(x_mixed, torch.where(mixed[:, None, None, None] == 1, x1, x0))  # each sample its own label


@pytest.mark.parametrize("arch", ["dcgan", "resnet"])
def test_discriminator_projection_term(arch):
    """logit(x, y) - logit(x, y') = <embed(y) - embed(y'), phi(x)> with phi the pooled features."""
    gh.setup(0)
    _, D = gh.build_models(small_cfg(arch))
    D.eval()
    feats = []
    if arch == "resnet":
        D.linear.register_forward_pre_hook(lambda mod, inp: feats.append(inp[0]))
    else:
        D.out.register_forward_pre_hook(lambda mod, inp: feats.append(inp[0].sum((2, 3))))
    x = torch.rand(4, 3, 32, 32) * 2 - 1
    with torch.no_grad():
        nn.init.normal_(D.embed.parametrizations.weight.original if parametrize.is_parametrized(D.embed)
                        else D.embed.weight)
        y0, y1 = torch.tensor([0, 1, 2, 3]), torch.tensor([5, 5, 9, 0])
        l0, l1 = D(x, y0), D(x, y1)
        phi, emb = feats[0], D.embed.weight
    assert not torch.allclose(l0, l1, atol=1e-3)
    assert_close(l1 - l0, ((emb[y1] - emb[y0]) * phi).sum(1), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("mode,in_g,in_d", [("none", False, False), ("d", False, True), ("gd", True, True)])
def test_spectral_norm_modes(mode, in_g, in_d):
    G, D = gh.build_models(tiny_cfg("dcgan", spectral_norm=mode))
    assert parametrize.is_parametrized(G.convs[0]) == in_g
    assert parametrize.is_parametrized(D.convs[0]) == in_d


@pytest.mark.parametrize("batchnorm", [True, False])
def test_dcgan_critic_without_batchnorm_scores_each_image_on_its_own(batchnorm):
    """d_batchnorm=False: no BatchNorm in the DCGAN D (conv biases instead), so in training mode an image's
    score no longer depends on the other images of its batch; with BatchNorm it does."""
    cfg = tiny_cfg("dcgan", d_batchnorm=batchnorm)    # no spectral norm: its power iteration moves per forward
    G, D = gh.build_models(cfg)
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in D.modules()) == batchnorm
    assert [c.bias is not None for c in D.convs] == [False] + [not batchnorm] * (len(D.convs) - 1)
    x, y = torch.rand(6, 3, 32, 32) * 2 - 1, torch.arange(6) % K
    D.train()
    alone = torch.cat([D(x[i:i + 1], y[i:i + 1]) for i in range(3)])
    together = D(x, y)[:3]
    assert torch.allclose(alone, together, atol=1e-6) != batchnorm
