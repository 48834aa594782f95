"""The training step: EMA, every loss and Lipschitz constraint through train_step, channels-last agreement, n_critic and n_gen."""
import copy
import math

import pytest
import torch
import torch.nn as nn
from helpers import K, Z, small_cfg, tiny_cfg
from op_counts import SYNC, count
from reference_step import reference_optimizers, reference_step
from torch.nn.utils import parametrize
from torch.testing import assert_close

import gan_helpers as gh
import gankit.registry
import gankit.layers
import gankit.step
from gankit.attention import SelfAttention

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
    gankit.step.ema_update(ema, G, 0.9)
    for e, o, p in zip(ema.parameters(), old, G.parameters()):
        assert_close(e, 0.9 * o + 0.1 * p)
    for e, b in zip(ema.buffers(), G.buffers()):
        assert torch.equal(e, b)
    gankit.step.ema_update(ema, G, 0.0)
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
    assert all(v.shape == () and v.device == next(G.parameters()).device and math.isfinite(v) for v in out.values())
    for m, model in (("G", G), ("D", D)):
        changed = [k for k, v in model.named_parameters() if not torch.equal(v, before[m][k])]
        assert len(changed) >= len(list(model.parameters())) // 2, f"{m} barely changed: {changed}"
    for e, p in zip(G_ema.parameters(), G.parameters()):    # iteration < ema_start: the EMA copies G
        assert torch.equal(e, p)
    if cfg.lipschitz == "clip":
        assert all(p.abs().max() <= cfg.clip_value for p in D.parameters())


@pytest.mark.parametrize("arch", ["dcgan", "resnet"])
def test_channels_last_models_compute_the_same_values_and_gradients(arch):
    cfg = small_cfg(arch, g_attn=gankit.registry.attention_resolutions(arch, "G", 32)[:2], d_attn=gankit.registry.attention_resolutions(arch, "D", 32)[:2])
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


# the comparisons with the reference step: every loss, spectral norm on and off, attention, EMA, DiffAugment,
# ACGAN's head, weight clipping with RMSprop, D with BatchNorm (scored apart) and without (scored jointly)
EQUIVALENCE_CASES = {
    "dcgan": lambda: small_cfg("dcgan"),
    "sagan": lambda: small_cfg("resnet", ema_decay=0.9, ema_start=5),
    "sagan-hinge-diffaug": lambda: small_cfg("resnet", loss="hinge", drift=0.0, diffaug="translation,cutout",
                                             ema_decay=0.5, ema_start=0),
    "resnet-bce-plain": lambda: small_cfg("resnet", loss="bce", drift=0.0, spectral_norm="none", g_attn=(),
                                          d_attn=(), diffaug="color"),
    "dcgan-wgan-sn-attention": lambda: small_cfg("dcgan", loss="wgan", drift=1e-3, spectral_norm="gd",
                                                 d_batchnorm=False, g_attn=(16,), d_attn=(8,), ema_decay=0.9,
                                                 ema_start=0),
    "wgan-clip-rmsprop": lambda: small_cfg("dcgan", loss="wgan", lipschitz="clip", optimizer="rmsprop",
                                           betas=(0.0, 0.9), n_critic=2, n_gen=2, cond="projection"),
}


def _twenty_steps(cfg, step, optimizers):
    """20 steps in float64, so that rounding (1e-16) stays far below the tolerance however GAN training amplifies
    it: in float32 the joint and separate D passes, or fused and per-tensor Adam, drift apart by 1e-3 within 20
    iterations from differences of 1e-7 in the first."""
    torch.set_default_dtype(torch.float64)
    try:
        gh.setup(0)
        G, D = gh.build_models(cfg)
        G_ema = copy.deepcopy(G) if cfg.ema_decay else None
        opt_g, opt_d = optimizers(cfg, G, D)
        data = gh.synthetic_images(64, num_classes=10)
        batch = lambda: (lambda x, y: (x.double(), y))(*data.batch(cfg.batch_size, hflip=True))   # noqa: E731
        gh.setup(1)
        logs = [step(cfg, G, D, G_ema, opt_g, opt_d, batch, gankit.step.ema_decay(cfg, i)) for i in range(20)]
    finally:
        torch.set_default_dtype(torch.float32)
    return [[float(v) for v in x.values()] for x in logs], [G, D] + ([G_ema] if G_ema is not None else [])


@pytest.mark.parametrize("case", [pytest.param(c, marks=() if c in ("dcgan", "sagan") else pytest.mark.slow)
                                  for c in sorted(EQUIVALENCE_CASES)])   # the presets in the everyday subset
def test_step_equals_the_plain_reference_step_over_20_iterations(case):
    cfg = EQUIVALENCE_CASES[case]()
    ours, models = _twenty_steps(cfg, gh.train_step, gh.make_optimizers)
    ref, ref_models = _twenty_steps(cfg, reference_step, reference_optimizers)
    assert_close(torch.tensor(ours), torch.tensor(ref), rtol=1e-6, atol=1e-7)
    for model, ref_model in zip(models, ref_models):
        for (name, a), b in zip(model.state_dict().items(), ref_model.state_dict().values()):
            assert_close(a, b, rtol=1e-6, atol=1e-7, msg=lambda m: f"{name}: {m}")


@pytest.mark.parametrize("preset", ["dcgan", "sagan"])
def test_step_never_waits_for_the_device(preset):
    """No .item(), float(tensor) or bool(tensor) inside a step: each would be a host sync, and none can be captured
    in a CUDA graph. Counted with a dispatch mode at the preset's depth (widths do not change the count)."""
    cfg = getattr(gh.Config, preset)(g_ch=8, d_ch=8, batch_size=4, ema_start=0)
    gh.setup(0)
    G, D = gh.build_models(cfg)
    G_ema = copy.deepcopy(G) if cfg.ema_decay else None
    opt_g, opt_d = gh.make_optimizers(cfg, G, D)
    data = gh.synthetic_images(16, num_classes=10)
    step = lambda: gankit.step.stack_logs(gh.train_step(cfg, G, D, G_ema, opt_g, opt_d,   # noqa: E731
                                               lambda: data.batch(cfg.batch_size, True), 0.999))
    step()                                                   # optimizers create their state on the first step
    counted = count(step)
    assert counted.syncs == 0, counted.ops[SYNC]
    assert counted.total <= {"dcgan": 400, "sagan": 2000}[preset], counted.total


@pytest.mark.slow
@pytest.mark.parametrize("arch", ["dcgan", "resnet"])
def test_networks_compile_in_one_graph_and_match_eager(arch):
    """torch.compile(fullgraph=True) of G's and D's forward, spectral norm and attention included: no graph break
    (spectral norm's forward is a pure function of the weight), the same values as eager."""
    cfg = small_cfg(arch, spectral_norm="gd", loss="wgan", lipschitz="none", drift=1e-3, d_batchnorm=False,
                    g_attn=(16,), d_attn=(gankit.registry.attention_resolutions(arch, "D", 32)[0],))
    gh.setup(0)
    G, D = gh.build_models(cfg)
    for m in (G, D):
        for sa in m.modules():
            if isinstance(sa, SelfAttention):
                sa.gamma.data.fill_(0.5)
    z, y = torch.randn(4, Z), torch.randint(10, (4,))
    torch._dynamo.reset()
    G_c = torch.compile(G, fullgraph=True, backend="aot_eager")
    D_c = torch.compile(D, fullgraph=True, backend="aot_eager")
    eager, compiled = D(G(z, y), y), D_c(G_c(z, y), y)
    assert_close(compiled, eager, rtol=1e-5, atol=1e-5)
    compiled.sum().backward()


def test_spectral_norm_forward_and_power_iteration_equal_torchs():
    """Our forward is torch's sigma = u^T W v without its side effect; power_iteration() is the update torch's
    training-mode forward makes to u and v."""
    layer = nn.Conv2d(3, 5, 3)
    ours, theirs = copy.deepcopy(layer), copy.deepcopy(layer)
    gankit.layers.apply_spectral_norm(ours)
    torch.nn.utils.parametrizations.spectral_norm(theirs)
    with torch.no_grad():                                    # the same start: what differs is only when u, v move
        for name in ("_u", "_v"):
            getattr(theirs.parametrizations.weight[0], name).copy_(getattr(ours.parametrizations.weight[0], name))
    before = ours.parametrizations.weight[0]._u.clone()
    ours.weight                                              # a forward: u is not touched
    assert torch.equal(ours.parametrizations.weight[0]._u, before)
    gankit.layers.power_iteration(ours)
    theirs.train()
    expected = theirs.weight                                 # torch: one power iteration, then W / sigma
    for name in ("_u", "_v"):
        assert_close(getattr(ours.parametrizations.weight[0], name), getattr(theirs.parametrizations.weight[0], name))
    assert_close(ours.weight, expected)
