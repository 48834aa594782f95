"""Every architecture, conditioning, image size and preset builds, gives images and logits of the right shapes and ranges, places attention where asked and trains a step."""
import copy
import dataclasses
import math

import pytest
import torch
from helpers import K, Z, one_step, small_cfg, tiny_cfg
from torch.testing import assert_close

import gan_helpers as gh
import gankit
from gan_helpers import GanError
from gankit.attention import SelfAttention


def _model_cases():
    cases = []
    for arch in ("dcgan", "resnet"):
        g_res, d_res = gankit.registry.attention_resolutions(arch, "G", 32), gankit.registry.attention_resolutions(arch, "D", 32)
        cases += [(arch, 10, (), ()), (arch, 0, (), ())]
        cases += [(arch, 10, (g,), (d,)) for g, d in zip(g_res, d_res)]     # each resolution alone
        cases += [(arch, 0, g_res, d_res),                                  # all at once
                  (arch, 10, (g_res[1],) * 2, (d_res[1],) * 2)]             # a stack of two
    return cases


@pytest.mark.parametrize("arch,num_classes,g_attn,d_attn", _model_cases())
def test_model_shapes_ranges_and_attention_placement(arch, num_classes, g_attn, d_attn):
    gh.setup(0)
    cond = {} if num_classes else {"cond": "none"}                   # unconditional
    G, D = gh.build_models(small_cfg(arch, num_classes=num_classes, g_attn=g_attn, d_attn=d_attn, **cond))
    seen = {"G": [], "D": []}
    for who, model in (("G", G), ("D", D)):
        for m in model.modules():
            if isinstance(m, SelfAttention):
                m.register_forward_hook(lambda mod, inp, out, who=who: seen[who].append(inp[0].shape[-1]))
    y = torch.arange(4) if num_classes else None
    with torch.no_grad():
        x = G(torch.randn(4, Z), y)
        logits = D(x, y)
    assert x.shape == (4, 3, 32, 32)
    assert x.min() >= -1 and x.max() <= 1
    assert logits.shape == (4,) and torch.isfinite(logits).all()
    assert sorted(seen["G"]) == sorted(g_attn)   # one SelfAttention per requested resolution, at that size
    assert sorted(seen["D"]) == sorted(d_attn)


@pytest.mark.parametrize("arch,who,res", [("resnet", "G", 4), ("resnet", "D", 4), ("dcgan", "G", 32),
                                          ("dcgan", "D", 32)])
def test_invalid_attention_resolution_raises(arch, who, res):
    with pytest.raises(GanError, match="attention"):
        gh.build_models(small_cfg(arch, **{f"{who.lower()}_attn": (res,)}))


@pytest.mark.parametrize("arch", ["dcgan", "resnet"])
def test_conditional_models_require_labels(arch):
    G, D = gh.build_models(small_cfg(arch, num_classes=10))
    with pytest.raises(GanError):
        G(torch.randn(2, Z), None)
    with pytest.raises(GanError):
        D(torch.zeros(2, 3, 32, 32), None)


@pytest.mark.parametrize("name", sorted(gankit.config.PRESETS))
def test_every_preset_builds_and_steps(name):
    """Full-size presets validate and build; a narrowed copy takes one finite training step."""
    cfg = gankit.config.PRESETS[name]()
    G, D = gh.build_models(cfg)
    assert gh.count_parameters(G) > 0 and gh.count_parameters(D) > 0
    small = dataclasses.replace(cfg, g_ch=8, d_ch=8, batch_size=4)
    G, D = gh.build_models(small)
    opt_g, opt_d = gh.make_optimizers(small, G, D)
    data = gh.synthetic_images(16)
    logs = gh.train_step(small, G, D, None, opt_g, opt_d, lambda: data.batch(4), 0)
    assert all(math.isfinite(v) for v in logs.values())
    if small.lipschitz == "clip":
        assert max(float(p.detach().abs().max()) for p in D.parameters()) <= small.clip_value


@pytest.mark.parametrize("img_size", [32, 64])
@pytest.mark.parametrize("cond", sorted(gankit.registry.CONDITIONINGS))
@pytest.mark.parametrize("arch", sorted(gankit.registry.ARCHS))
def test_every_arch_cond_and_size_builds_and_uses_labels(arch, cond, img_size):
    gh.setup(0)
    cfg = tiny_cfg(arch, cond, img_size)
    G, D = gh.build_models(cfg)
    assert G.config is cfg and D.config is cfg
    z, y0, y1 = torch.randn(4, Z), torch.zeros(4, dtype=torch.int64), torch.full((4,), 2)
    with gankit.device.eval_mode(G), gankit.device.eval_mode(D), torch.no_grad():
        x = G(z, y0)
        logits = D(x, y0)
        assert x.shape == (4, 3, img_size, img_size) and x.min() >= -1 and x.max() <= 1
        assert logits.shape == (4,) and torch.isfinite(logits).all()
        g_changes = not torch.equal(G(z, y1), x)
        d_changes = not torch.equal(D(x, y1), logits)
        if gankit.registry.CONDITIONINGS[cond].d_classifier:   # the class head of the same pass reads x (and, for acgan,
            # the adversarial logit ignores y)
            adv, classes = D(x, y0, with_classes=True)
            assert_close(adv, logits)
            assert classes.shape == (4, K)
            # (float64: with N(0, 0.02) weights in tiny layers the class logits start around 1e-8)
            d_changes = gankit.losses.class_loss(classes.double(), y0).item() != gankit.losses.class_loss(classes.double(), y1).item()
        else:
            with pytest.raises(GanError, match="acgan"):
                D(x, y0, with_classes=True)
    if cond == "none":
        assert not g_changes and not d_changes
    elif cond.startswith("projection"):   # conditional BN starts as the identity: labels count after a step
        assert not g_changes and d_changes
    else:
        assert g_changes and d_changes


@pytest.mark.parametrize("arch", sorted(gankit.registry.ARCHS))
def test_projection_generator_uses_labels_after_one_step(arch):
    gh.setup(0)
    cfg = tiny_cfg(arch, "projection")
    G, D = gh.build_models(cfg)
    data = gh.synthetic_images(24, num_classes=K)
    one_step(cfg, G, D, lambda: data.batch(cfg.batch_size))
    z = torch.randn(4, Z)
    with gankit.device.eval_mode(G), torch.no_grad():
        assert not torch.equal(G(z, torch.zeros(4, dtype=torch.int64)), G(z, torch.full((4,), 2)))


def test_a_seeds_images_are_the_values_each_conditional_batchnorm_and_the_batch_make(conditional_G):
    """A fixed seed's output values, not only shapes, checked against two other computations: in eval mode every
    conditional BatchNorm of G gives exactly its class's scale and shift of the normalised input (de Vries 2017),
    each image is the same alone as in its batch, and sample() gives what G makes of latents() of the same seed."""
    G = copy.deepcopy(conditional_G)                            # the fixture is shared: change a copy
    with torch.no_grad():
        for m in G.modules():                                   # running statistics other than 0 and 1
            if isinstance(m, gankit.layers.ConditionalBatchNorm):
                m.bn.running_mean.normal_(0.0, 0.3)
                m.bn.running_var.uniform_(0.5, 2.0)
    seen = []
    hooks = [m.register_forward_hook(lambda mod, inputs, out: seen.append((mod, *inputs, out)))
             for m in G.modules() if isinstance(m, gankit.layers.ConditionalBatchNorm)]
    z, y = gankit.sampling.latents(G, 6, seed=3)
    try:
        images = gh.sample(G, 6, seed=3)
    finally:
        for hook in hooks:
            hook.remove()
    assert seen and images.abs().max() <= 1 and images.std() > 0.01
    for m, x, labels, out in seen:
        normalised = (x - m.bn.running_mean[:, None, None]) / (m.bn.running_var[:, None, None] + m.bn.eps).sqrt()
        expected = normalised * m.gain.weight[labels][:, :, None, None] + m.bias.weight[labels][:, :, None, None]
        assert_close(out, expected, rtol=1e-5, atol=1e-5)
    with torch.no_grad(), gankit.device.eval_mode(G):
        assert_close(images, G(z, y))
        alone = torch.cat([G(z[i:i + 1], y[i:i + 1]) for i in range(6)])
    assert_close(alone, images, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("arch", sorted(gankit.registry.ARCHS))
def test_128_pixels_build(arch):
    cfg = tiny_cfg(arch, img_size=128, g_ch=2, d_ch=2)
    G, D = gh.build_models(cfg)
    with torch.no_grad():
        x = G(torch.randn(2, Z), torch.arange(2))
        assert x.shape == (2, 3, 128, 128) and D(x, torch.arange(2)).shape == (2,)


def test_stages_follow_img_size():
    assert gankit.registry.attention_resolutions("resnet", "G", 64) == (8, 16, 32, 64)
    assert gankit.registry.attention_resolutions("resnet", "D", 64) == (64, 32, 16, 8)
    assert gankit.registry.attention_resolutions("dcgan", "G", 64) == (4, 8, 16, 32)
    assert gankit.registry.attention_resolutions("dcgan", "D", 64) == (32, 16, 8, 4)
    assert gankit.registry.attention_resolutions("mlp", "G", 32) == ()
    G, D = gh.build_models(tiny_cfg("dcgan", img_size=64, g_attn=(32,), d_attn=(8,)))
    assert len(G.convs) == 4 and [c.out_channels for c in G.convs] == [32, 16, 8, 4]   # 8c, 4c, 2c, c
    assert [c.out_channels for c in D.convs] == [4, 8, 16, 16]                         # c, 2c, 4c, 4c


def test_mean_pooling_critic_scores_a_64th_of_the_sum():
    """d_pool='mean': the resnet D's pooled features are the sum's over its 8x8 positions divided by 64, so with the
    same weights (no bias, no spectral norm) its logits are the sum-pooling D's over 64."""
    cfg = gh.Config.sagan(g_ch=16, d_ch=16, spectral_norm="none", lipschitz="gp", g_attn=(), d_attn=())
    gh.setup(0)
    _, summed = gh.build_models(cfg)
    _, meaned = gh.build_models(dataclasses.replace(cfg, d_pool="mean"))
    meaned.load_state_dict(summed.state_dict())
    with torch.no_grad():
        for D in (summed, meaned):
            D.linear.bias.zero_()
    x, y = torch.rand(4, 3, 32, 32) * 2 - 1, torch.arange(4)
    torch.testing.assert_close(meaned(x, y) * 64, summed(x, y), rtol=1e-5, atol=1e-4)
    with pytest.raises(gh.GanError, match="only the resnet D pools"):
        gh.Config.dcgan(d_pool="mean").validate()
