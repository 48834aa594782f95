"""Tests of gan_helpers' config, layers, models, losses and training step (CPU, tiny widths, seconds)."""
import copy
import dataclasses
import json
import math

import pytest
import torch
import torch.nn as nn
from torch.nn.utils import parametrize
from torch.testing import assert_close

import gan_helpers as gh
from gan_helpers import Config, GanError, SelfAttention

PRESETS = {"dcgan": Config.dcgan, "resnet": Config.sagan}
Z = 8  # small latent size everywhere


def small_cfg(arch="resnet", **overrides):
    """The arch's preset (dcgan: BCE, no SN; resnet: SAGAN) at test-sized widths."""
    return PRESETS[arch](**{"z_dim": Z, "g_ch": 16, "d_ch": 16, "batch_size": 8, **overrides})


def labels(n, k):
    return torch.full((n,), k, dtype=torch.int64)


# ---------------------------------------------------------------- 1. shapes, ranges, attention placement

def _model_cases():
    cases = []
    for arch in ("dcgan", "resnet"):
        g_res, d_res = gh.attention_resolutions(arch, "G", 32), gh.attention_resolutions(arch, "D", 32)
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


# ---------------------------------------------------------------- 2. self-attention

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


# ---------------------------------------------------------------- 3. spectral norm

def _sn_matrix(module):
    """Weight as the 2-D matrix spectral norm normalises (torch: output dim first; dim 1 for ConvTranspose)."""
    w = module.weight
    return (w.transpose(0, 1) if isinstance(module, nn.ConvTranspose2d) else w).flatten(1)


SN_TARGETS = (nn.Conv2d, nn.ConvTranspose2d, nn.Linear, nn.Embedding)


@pytest.mark.parametrize("arch", ["resnet", "dcgan"])
def test_spectral_norm_makes_every_layer_1_lipschitz(arch):
    gh.setup(0)
    cfg = small_cfg(arch, spectral_norm="gd", g_attn=(gh.attention_resolutions(arch, "G", 32)[1],),
                    d_attn=(gh.attention_resolutions(arch, "D", 32)[1],))
    G, D = gh.build_models(cfg)
    with torch.no_grad():                             # raw weights 3x larger: only the normalisation gives 1
        for m in list(G.modules()) + list(D.modules()):
            if parametrize.is_parametrized(m, "weight"):
                m.parametrizations.weight.original.mul_(3.0)
        for _ in range(20):                           # one power iteration per training-mode forward
            D(G(torch.randn(2, Z), torch.randint(10, (2,))), torch.randint(10, (2,)))
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


# ---------------------------------------------------------------- 4. losses

def softplus(t):
    return math.log(1 + math.exp(t))


REAL, FAKE = [0.5, 2.0], [-1.5, 0.5]
EXPECTED = {  # name: (d_loss, g_loss) written out by hand
    "wgan": ((-1.5 + 0.5) / 2 - (0.5 + 2.0) / 2, -(-1.5 + 0.5) / 2),
    "hinge": ((max(0, 1 - 0.5) + max(0, 1 - 2.0)) / 2 + (max(0, 1 - 1.5) + max(0, 1 + 0.5)) / 2,
              -(-1.5 + 0.5) / 2),
    "bce": ((softplus(-0.5) + softplus(-2.0)) / 2 + (softplus(-1.5) + softplus(0.5)) / 2,
            (softplus(1.5) + softplus(-0.5)) / 2),
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_loss_values(name):
    d, g = EXPECTED[name]
    assert gh.d_loss(name, torch.tensor(REAL), torch.tensor(FAKE)).item() == pytest.approx(d, rel=1e-6)
    assert gh.g_loss(name, torch.tensor(FAKE)).item() == pytest.approx(g, rel=1e-6)


def test_hand_values_are_the_known_numbers():
    assert EXPECTED["wgan"] == pytest.approx((-1.75, 0.5))
    assert EXPECTED["hinge"][0] == pytest.approx(1.0)


@pytest.mark.parametrize("name", ["wgan", "hinge", "bce"])
def test_loss_gradient_signs(name):
    real = torch.linspace(-2, 2, 8).requires_grad_(True)
    fake = torch.linspace(-2, 2, 8).requires_grad_(True)
    gh.d_loss(name, real, fake).backward()
    assert (real.grad <= 0).all() and real.grad.sum() < 0   # higher real scores lower D's loss
    assert (fake.grad >= 0).all() and fake.grad.sum() > 0   # higher fake scores raise it
    if name != "hinge":                                     # hinge is flat beyond the margin
        assert (real.grad < 0).all() and (fake.grad > 0).all()
    fake_g = torch.linspace(-2, 2, 8).requires_grad_(True)
    gh.g_loss(name, fake_g).backward()
    assert (fake_g.grad < 0).all()                          # G wants its scores higher


def test_unknown_loss_raises():
    with pytest.raises(GanError, match="unknown loss"):
        gh.d_loss("foo", torch.zeros(2), torch.zeros(2))
    with pytest.raises(GanError):
        gh.g_loss("foo", torch.zeros(2))


# ---------------------------------------------------------------- 5. gradient penalty

class LinearCritic(nn.Module):
    """D(x) = <w, x> per sample: its input gradient is w everywhere."""

    def __init__(self, w):
        super().__init__()
        self.w = nn.Parameter(w)

    def forward(self, x, y=None):
        return (x * self.w).sum((1, 2, 3))


class SquareCritic(nn.Module):
    """D(x) = 0.5 ||x||^2 per sample: its input gradient at x is x."""

    def forward(self, x, y=None):
        return 0.5 * x.pow(2).sum((1, 2, 3))


def test_gradient_penalty_of_a_linear_critic():
    torch.manual_seed(0)
    D = LinearCritic(torch.randn(1, 3, 4, 4) * 0.5)
    real, fake, eps = torch.randn(5, 3, 4, 4), torch.randn(5, 3, 4, 4), torch.rand(5, 1, 1, 1)
    gp = gh.gradient_penalty(D, real, fake, None, eps)
    norm = D.w.detach().norm().item()
    assert gp.item() == pytest.approx((norm - 1) ** 2, rel=1e-5)
    gp.backward()                                            # differentiable w.r.t. D's parameters
    assert_close(D.w.grad, 2 * (norm - 1) * D.w.detach() / norm)


def test_gradient_penalty_of_a_nonlinear_critic_uses_eps():
    torch.manual_seed(0)
    real, fake = torch.randn(3, 3, 4, 4), torch.randn(3, 3, 4, 4)
    eps = torch.tensor([0.0, 0.3, 1.0]).view(3, 1, 1, 1)
    expected = 0.0
    for n in range(3):
        e = eps[n].item()
        x_hat = e * real[n] + (1 - e) * fake[n]
        expected += (x_hat.norm().item() - 1) ** 2 / 3
    assert gh.gradient_penalty(SquareCritic(), real, fake, None, eps).item() == pytest.approx(expected, rel=1e-5)


# ---------------------------------------------------------------- 6. conditioning

@pytest.mark.parametrize("arch", ["dcgan", "resnet"])
def test_generator_output_depends_on_label(arch):
    gh.setup(0)
    G, _ = gh.build_models(small_cfg(arch))
    G.eval()                                                 # running stats: samples independent of the batch
    z = torch.randn(4, Z)
    with torch.no_grad():
        assert_close(G(z, labels(4, 0)), G(z, labels(4, 1)))  # fresh CBN: gain 1, bias 0 for every class
        for m in G.modules():
            if isinstance(m, gh.ConditionalBatchNorm):
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


# ---------------------------------------------------------------- 7. EMA

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


# ---------------------------------------------------------------- 8. training step

TRAIN_CASES = {
    "dcgan": lambda: small_cfg("dcgan"),
    "sagan": lambda: small_cfg("resnet"),
    "wgan-clip-rmsprop": lambda: small_cfg("dcgan", loss="wgan", lipschitz="clip", optimizer="rmsprop",
                                           n_critic=2),
    "wgan-gp": lambda: small_cfg("resnet", spectral_norm="none", lipschitz="gp", g_attn=(), d_attn=()),
}


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


# ---------------------------------------------------------------- 9. config

def test_config_round_trips_through_dict_and_json():
    for cfg in (Config.dcgan(), Config.sagan(g_attn=(8, 16), betas=(0.1, 0.2))):
        assert Config.from_dict(dataclasses.asdict(cfg)) == cfg
        assert Config.from_dict(json.loads(json.dumps(dataclasses.asdict(cfg)))) == cfg  # lists -> tuples
    with pytest.raises(GanError, match="unknown"):
        Config.from_dict({"nope": 1})


def test_config_overrides_parse_types():
    cfg = Config.sagan().with_overrides(["g_ch=32", "g_attn=(8, 16)", "loss=hinge", "spectral_norm=False",
                                         "g_lr=3e-4", "betas=[0.5, 0.99]"])
    assert cfg.g_ch == 32 and isinstance(cfg.g_ch, int)
    assert cfg.g_attn == (8, 16) and cfg.loss == "hinge" and cfg.spectral_norm == "none"  # the old bool, upgraded
    assert cfg.g_lr == pytest.approx(3e-4) and cfg.betas == (0.5, 0.99)
    assert Config.sagan().g_ch == 256                       # the original is left alone
    for bad in (["nope=1"], ["g_ch"]):
        with pytest.raises(GanError):
            Config.sagan().with_overrides(bad)


def test_config_validate():
    assert Config.dcgan().validate() == Config.dcgan() and Config.sagan().validate() == Config.sagan()
    for bad in (dict(loss="foo"), dict(arch="vgg"), dict(lipschitz="lip"), dict(ema_decay=1.0),
                dict(spectral_norm="none"), dict(g_ch=0)):    # spectral_norm="none": wgan left unconstrained
        with pytest.raises(GanError):
            Config.sagan(**bad).validate()


@pytest.mark.parametrize("name", sorted(gh.PRESETS))
def test_every_preset_builds_and_steps(name):
    """Full-size presets validate and build; a narrowed copy takes one finite training step."""
    cfg = gh.PRESETS[name]()
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


def test_query_dependence_is_0_for_identical_rows_and_1_minus_1_over_n_for_private_one_hot_rows():
    n = 16
    same = torch.softmax(torch.randn(2, 1, n), -1).expand(2, n, n)
    assert gh.query_dependence(same) == pytest.approx(0.0, abs=1e-12)
    assert gh.query_dependence(torch.eye(n).expand(3, n, n)) == pytest.approx(1 - 1 / n)
    half = torch.stack([torch.eye(4)[[0, 0, 0, 0]], torch.eye(4)[[0, 0, 1, 1]]])   # an image of each kind
    # second image: rows are one-hot on 0 or 1, mean row (0.5, 0.5, 0, 0): every row is 0.5 away
    assert gh.query_dependence(half) == pytest.approx(0.25)


def test_by_image_regroups_one_layer_into_rows_of_images():
    images, attn = torch.randn(5, 3, 8, 8), torch.rand(5, 4, 4)
    rows = gh.by_image((images, attn), ["a", "b"], [3, 1])
    assert list(rows) == ["a", "b"]
    assert torch.equal(rows["a"][0], images[3:4]) and torch.equal(rows["b"][1], attn[1:2])
