"""The training step: EMA, every loss and Lipschitz constraint through train_step, channels-last agreement, n_critic and n_gen."""
import copy
import math

import pytest
import torch
import torch.nn as nn
from helpers import K, Z, small_cfg, tiny_cfg
from torch.nn.utils import parametrize
from torch.testing import assert_close

import gan_helpers as gh
from gan_helpers import SelfAttention

TRAIN_CASES = {
    "dcgan": lambda: small_cfg("dcgan"),
    "sagan": lambda: small_cfg("resnet"),
    "wgan-clip-rmsprop": lambda: small_cfg("dcgan", loss="wgan", lipschitz="clip", optimizer="rmsprop",
                                           n_critic=2),
    "wgan-gp": lambda: small_cfg("resnet", spectral_norm="none", lipschitz="gp", g_attn=(), d_attn=()),
}


def test_ema_update_averages_parameters_and_copies_buffers():
    gh.setup(0)
    G, _ = gh.build_models(small_cfg("resnet", g_attn=(8,)))   # BN statistics and SN u/v buffers
    ema = copy.deepcopy(G)
    with torch.no_grad():
        for p in G.parameters():
            p.add_(torch.randn_like(p))
        G(torch.randn(4, Z), torch.randint(10, (4,)))        # training-mode forward moves G's buffers
    names = [n for n, _ in G.named_buffers()]
    assert any("running_mean" in n for n in names) and any(n.endswith("_u") for n in names)
    assert not all(torch.equal(e, b) for e, b in zip(ema.buffers(), G.buffers()))
    old = [e.detach().clone() for e in ema.parameters()]
    gh.ema_update(ema, G, 0.9)
    for e, o, p in zip(ema.parameters(), old, G.parameters()):
        assert_close(e, 0.9 * o + 0.1 * p)
    for e, b in zip(ema.buffers(), G.buffers()):
        assert torch.equal(e, b)
    gh.ema_update(ema, G, 0.0)
    for e, p in zip(ema.parameters(), G.parameters()):
        assert torch.equal(e, p)


@pytest.mark.parametrize("case", sorted(TRAIN_CASES))
def test_train_step(case):
    cfg = TRAIN_CASES[case]()
    gh.setup(0)
    G, D = gh.build_models(cfg)
    G_ema = copy.deepcopy(G)
    opt_g, opt_d = gh.make_optimizers(cfg, G, D)
    data = gh.ImageSet(torch.randint(0, 256, (32, 3, 32, 32), dtype=torch.uint8), torch.randint(0, 10, (32,)))
    before = {m: copy.deepcopy(model.state_dict()) for m, model in (("G", G), ("D", D))}
    out = gh.train_step(cfg, G, D, G_ema, opt_g, opt_d, lambda: data.batch(cfg.batch_size, hflip=True), 0)
    assert set(out) == {"d_loss", "g_loss", "d_real", "d_fake"}
    assert all(isinstance(v, float) and math.isfinite(v) for v in out.values())
    for m, model in (("G", G), ("D", D)):
        changed = [k for k, v in model.named_parameters() if not torch.equal(v, before[m][k])]
        assert len(changed) >= len(list(model.parameters())) // 2, f"{m} barely changed: {changed}"
    for e, p in zip(G_ema.parameters(), G.parameters()):    # iteration < ema_start: the EMA copies G
        assert torch.equal(e, p)
    if cfg.lipschitz == "clip":
        assert all(p.abs().max() <= cfg.clip_value for p in D.parameters())


@pytest.mark.parametrize("arch", ["dcgan", "resnet"])
def test_channels_last_models_compute_the_same_values_and_gradients(arch):
    cfg = small_cfg(arch, g_attn=gh.attention_resolutions(arch, "G", 32)[:2], d_attn=gh.attention_resolutions(arch, "D", 32)[:2])
    gh.setup(0)
    models = gh.build_models(cfg)
    for m in models:   # non-zero attention so that the attention branch counts
        for sa in m.modules():
            if isinstance(sa, SelfAttention):
                sa.gamma.data.fill_(0.5)
    fast = [gh.to_device(copy.deepcopy(m), "cpu") for m in models]
    convs = [mod for mod in fast[1].modules() if isinstance(mod, nn.Conv2d)]
    weight = convs[0].parametrizations.weight.original if parametrize.is_parametrized(convs[0]) else convs[0].weight
    assert weight.is_contiguous(memory_format=torch.channels_last)
    z, y = torch.randn(4, Z), torch.randint(10, (4,))
    outs = []
    for G, D in (models, fast):
        gh.setup(1)                           # same SN power-iteration state and data for both copies
        logits = D(G(z, y), y)
        logits.sum().backward()
        outs.append((logits, [p.grad for p in G.parameters()]))
    assert_close(outs[1][0], outs[0][0], rtol=1e-4, atol=1e-5)
    scale = max(g.abs().max().item() for g in outs[0][1])
    for a, b in zip(outs[1][1], outs[0][1]):   # (biases before a BN have gradients ~0: rounding noise only)
        assert_close(a, b, rtol=1e-3, atol=1e-5 * scale)


def test_n_critic_and_n_gen_count_optimizer_steps():
    cfg = tiny_cfg("mlp", n_critic=3, n_gen=2)
    gh.setup(0)
    G, D = gh.build_models(cfg)
    opt_g, opt_d = gh.make_optimizers(cfg, G, D)
    data = gh.synthetic_images(24, num_classes=K)
    gh.train_step(cfg, G, D, None, opt_g, opt_d, lambda: data.batch(cfg.batch_size), 0)
    assert opt_d.state[next(D.parameters())]["step"].item() == 3
    assert opt_g.state[next(G.parameters())]["step"].item() == 2
