"""The losses against hand computations: Wasserstein, hinge, BCE values and gradient signs, the gradient penalty,
the ACGAN, CGAN and mode-seeking terms."""
import copy
import dataclasses
import math

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from helpers import K, Z, one_step, step_and_its_draws, tiny_cfg
from torch.testing import assert_close

import gan_helpers as gh
import gankit
from gan_helpers import GanError


def _hand_dcgan_d(D, x_in):
    """DCGAN D's adversarial logit and pooled features, computed layer by layer from its (joined) input."""
    h = x_in
    for conv, norm, attn in zip(D.convs, D.norms, D.attns):
        h = F.leaky_relu(norm(conv(h)), 0.2)
    return D.out(h).flatten(), h.sum((2, 3))


def _bce_d(real, fake):
    return -torch.log(torch.sigmoid(real)).mean() - torch.log(1 - torch.sigmoid(fake)).mean()


def _cross_entropy(logits, y):
    return -(logits - logits.exp().sum(1, keepdim=True).log())[torch.arange(len(y)), y].mean()


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


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_loss_values(name):
    d, g = EXPECTED[name]
    assert gankit.losses.d_loss(name, torch.tensor(REAL), torch.tensor(FAKE)).item() == pytest.approx(d, rel=1e-6)
    assert gankit.losses.g_loss(name, torch.tensor(FAKE)).item() == pytest.approx(g, rel=1e-6)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_losses_are_batch_means(name):
    """Each loss is a mean over its batch: the same for the batch repeated or reordered, whatever its size."""
    real, fake = torch.tensor(REAL), torch.tensor(FAKE)
    for r, f in ((real.repeat(3), fake.repeat(3)), (real.flip(0), fake.flip(0))):
        assert_close(gankit.losses.d_loss(name, r, f), gankit.losses.d_loss(name, real, fake))
        assert_close(gankit.losses.g_loss(name, f), gankit.losses.g_loss(name, fake))


@pytest.mark.parametrize("name", ["wgan", "hinge", "bce"])
def test_loss_gradient_signs(name):
    real = torch.linspace(-2, 2, 8).requires_grad_(True)
    fake = torch.linspace(-2, 2, 8).requires_grad_(True)
    gankit.losses.d_loss(name, real, fake).backward()
    assert (real.grad <= 0).all() and real.grad.sum() < 0   # higher real scores lower D's loss
    assert (fake.grad >= 0).all() and fake.grad.sum() > 0   # higher fake scores raise it
    if name != "hinge":                                     # hinge is flat beyond the margin
        assert (real.grad < 0).all() and (fake.grad > 0).all()
    fake_g = torch.linspace(-2, 2, 8).requires_grad_(True)
    gankit.losses.g_loss(name, fake_g).backward()
    assert (fake_g.grad < 0).all()                          # G wants its scores higher


def test_unknown_loss_raises():
    with pytest.raises(GanError, match="unknown loss"):
        gankit.losses.d_loss("foo", torch.zeros(2), torch.zeros(2))
    with pytest.raises(GanError):
        gankit.losses.g_loss("foo", torch.zeros(2))


def test_gradient_penalty_of_a_linear_critic():
    torch.manual_seed(0)
    D = LinearCritic(torch.randn(1, 3, 4, 4) * 0.5)
    real, fake, eps = torch.randn(5, 3, 4, 4), torch.randn(5, 3, 4, 4), torch.rand(5, 1, 1, 1)
    gp = gankit.losses.gradient_penalty(D, real, fake, None, eps)
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
    assert gankit.losses.gradient_penalty(SquareCritic(), real, fake, None, eps).item() == pytest.approx(expected, rel=1e-5)


def test_gradient_penalty_through_fused_attention_equals_the_explicit_path():
    """The fused attention kernels have no second derivative: the penalty through a 32x32 SelfAttention (fused on the
    CPU from that size, always on a GPU) runs, and its value and D's gradients equal the explicit softmax path's."""
    torch.manual_seed(0)
    attn = gankit.attention.SelfAttention(16).double()
    attn.gamma.data.fill_(0.5)

    def critic(x: torch.Tensor, y: None) -> torch.Tensor:
        return attn(x).tanh().sum(dim=(1, 2, 3))

    real, fake = torch.randn(2, 16, 32, 32).double(), torch.randn(2, 16, 32, 32).double()
    eps = torch.rand(2, 1, 1, 1).double()
    results = []
    for fused_from in (32 * 32, 10 ** 9):
        attn.cpu_fused_from = fused_from
        attn.zero_grad()
        gp = gankit.losses.gradient_penalty(critic, real, fake, None, eps)
        gp.backward()
        results.append((gp.detach(), {n: p.grad.clone() for n, p in attn.named_parameters()}))
    (gp_fused, grads_fused), (gp_explicit, grads_explicit) = results
    assert_close(gp_fused, gp_explicit)
    for name, grad in grads_explicit.items():
        assert_close(grads_fused[name], grad, atol=1e-9, rtol=1e-9)


@pytest.mark.parametrize("cond", ["acgan", "concat"])
def test_conditional_losses_match_hand_computation(cond):
    """train_step's D and G losses equal BCE (+ acgan_weight x cross-entropy for ACGAN) written out by hand,
    with the CGAN label planes and label embedding joined by hand."""
    G0, D0, D, real, y_real, y_fake, z, out = step_and_its_draws(cond)

    def g_forward(Gm):
        joined = torch.cat([z, Gm.label_embed(y_fake)], 1)   # CGAN/ACGAN: [z, embedding(y)]
        h = joined[:, :, None, None]
        for conv, norm, attn in zip(Gm.convs, Gm.norms, Gm.attns):
            h = F.leaky_relu(norm(conv(h), None), 0.1)
        return torch.tanh(Gm.out(h))

    def joined(x, y):                                        # CGAN's D input: one-hot label planes joined
        if cond == "acgan":
            return x
        return torch.cat([x, torch.eye(K)[y][:, :, None, None].expand(-1, -1, 32, 32)], 1)

    with torch.no_grad():
        fake = g_forward(G0)
        assert_close(fake, G0(z, y_fake))
        r_logit, r_phi = _hand_dcgan_d(D0, joined(real, y_real))
        f_logit, _ = _hand_dcgan_d(D0, joined(fake, y_fake))
        d_expected = _bce_d(r_logit, f_logit)
        if cond == "acgan":
            d_expected = d_expected + 0.7 * _cross_entropy(D0.classifier(r_phi), y_real)
        g_logit, g_phi = _hand_dcgan_d(D, joined(fake, y_fake))   # G is scored by the updated D
        g_expected = -torch.log(torch.sigmoid(g_logit)).mean()
        if cond == "acgan":
            g_expected = g_expected + 0.7 * _cross_entropy(D.classifier(g_phi), y_fake)
    assert float(out["d_loss"]) == pytest.approx(d_expected.item(), rel=1e-5)
    assert float(out["g_loss"]) == pytest.approx(g_expected.item(), rel=1e-5)


def test_projection_ac_adds_the_class_cross_entropy_to_the_projection_losses():
    """projection-ac: the projection D's BCE losses (logit + <embed(y), phi>) plus acgan_weight x the class
    head's cross-entropy, on real labels for D and on the asked-for labels for G."""
    G0, D0, D, real, y_real, y_fake, z, out = step_and_its_draws("projection-ac")
    with torch.no_grad():
        fake = G0(z, y_fake)
        r_logit, r_phi = _hand_dcgan_d(D0, real)
        f_logit, f_phi = _hand_dcgan_d(D0, fake)
        r_logit = r_logit + (D0.embed(y_real) * r_phi).sum(1)      # the projection term
        f_logit = f_logit + (D0.embed(y_fake) * f_phi).sum(1)
        d_expected = _bce_d(r_logit, f_logit) + 0.7 * _cross_entropy(D0.classifier(r_phi), y_real)
        g_logit, g_phi = _hand_dcgan_d(D, fake)
        g_logit = g_logit + (D.embed(y_fake) * g_phi).sum(1)
        g_expected = -torch.log(torch.sigmoid(g_logit)).mean() + 0.7 * _cross_entropy(D.classifier(g_phi), y_fake)
    assert float(out["d_loss"]) == pytest.approx(d_expected.item(), rel=1e-5)
    assert float(out["g_loss"]) == pytest.approx(g_expected.item(), rel=1e-5)


def test_mode_seeking_loss_is_one_over_the_image_to_latent_distance_ratio_of_the_halves():
    """MSGAN: rows i and m + i are pairs; 1 / (mean |x_i - x_m+i| / mean |z_i - z_m+i| + 1e-5); an odd last row
    takes no part."""
    fake = torch.tensor([[0.0, 1.0], [1.0, 1.0], [0.5, 0.0], [1.0, -1.0], [9.0, 9.0]]).view(5, 2, 1, 1)
    z = torch.tensor([[0.0, 0.0, 0.0], [1.0, 2.0, 3.0], [3.0, 0.0, 0.0], [1.0, 2.0, 0.0], [7.0, 7.0, 7.0]])
    images = (0.5 + 1.0 + 0.0 + 2.0) / 4                 # |[0, 1] - [.5, 0]|, |[1, 1] - [1, -1]|
    latents = (3.0 + 0 + 0 + 0 + 0 + 3.0) / 6            # |[0, 0, 0] - [3, 0, 0]|, |[1, 2, 3] - [1, 2, 0]|
    assert float(gankit.losses.mode_seeking_loss(fake, z)) == pytest.approx(1 / (images / latents + 1e-5))
    assert float(gankit.losses.mode_seeking_loss(fake[:4], z[:4])) == float(gankit.losses.mode_seeking_loss(fake, z))
    identical = torch.cat([fake[:2], fake[:2]])          # two latents, one image: the loss is 1 / eps
    assert float(gankit.losses.mode_seeking_loss(identical, z[:4])) == pytest.approx(1e5)


def test_paired_labels_repeat_the_first_half_and_draw_as_many_values():
    """random_labels(paired=True): row m + i has row i's label; the stream after the draw is the unpaired one's."""
    draws = []
    for paired in (False, True):
        torch.manual_seed(3)
        draws.append((gankit.step.random_labels(7, 10, torch.device("cpu"), paired), torch.randn(4)))
    (plain, after_plain), (paired, after_paired) = draws
    assert torch.equal(paired[:3], plain[:3]) and torch.equal(paired[3:6], plain[:3]) and paired[6] == plain[6]
    assert torch.equal(after_paired, after_plain)


def test_ms_weight_adds_the_mode_seeking_term_to_the_g_loss_over_same_label_pairs():
    """ms_weight: G's batch is drawn in halves with the same labels, and G's loss gains ms_weight x
    mode_seeking_loss of its images and latents (here on top of projection-ac's BCE and class terms); D's loss
    is unchanged."""
    G0, D0, D, real, y_real, y_drawn, z, out = step_and_its_draws("projection-ac", ms_weight=0.5)
    y_fake = torch.cat([y_drawn[:3], y_drawn[:3]])        # the pairing the step applies to its draw
    with torch.no_grad():
        fake = G0(z, y_fake)
        r_logit, r_phi = _hand_dcgan_d(D0, real)
        f_logit, f_phi = _hand_dcgan_d(D0, fake)
        r_logit = r_logit + (D0.embed(y_real) * r_phi).sum(1)
        f_logit = f_logit + (D0.embed(y_fake) * f_phi).sum(1)
        d_expected = _bce_d(r_logit, f_logit) + 0.7 * _cross_entropy(D0.classifier(r_phi), y_real)
        g_logit, g_phi = _hand_dcgan_d(D, fake)
        g_logit = g_logit + (D.embed(y_fake) * g_phi).sum(1)
        spread = (fake[:3] - fake[3:]).abs().mean() / (z[:3] - z[3:]).abs().mean()
        g_expected = (-torch.log(torch.sigmoid(g_logit)).mean() + 0.7 * _cross_entropy(D.classifier(g_phi), y_fake)
                      + 0.5 / (spread + 1e-5))
    assert float(out["d_loss"]) == pytest.approx(d_expected.item(), rel=1e-5)
    assert float(out["g_loss"]) == pytest.approx(g_expected.item(), rel=1e-5)


def test_the_drift_term_adds_drift_times_the_mean_squared_real_logit_to_d_loss():
    """ProGAN's drift term inside train_step: D's loss is the Wasserstein loss plus drift * mean(D(x)^2) of the
    real logits, from D before its update (weight clipping acts after it)."""
    G0, D0, _, real, y_real, y_fake, z, out = step_and_its_draws("projection", loss="wgan", lipschitz="clip",
                                                                 drift=0.5)
    with torch.no_grad():
        real_logits, fake_logits = D0(real, y_real), D0(G0(z, y_fake), y_fake)
        wasserstein = gankit.losses.d_loss("wgan", real_logits, fake_logits)
        drift = 0.5 * real_logits.pow(2).mean()
    assert drift > 1e-3 * abs(wasserstein)                  # the term is large enough to be seen
    assert float(out["d_loss"]) == pytest.approx((wasserstein + drift).item(), rel=1e-5)


def test_a_second_generator_step_scores_the_updated_generator():
    """n_gen=2: G's second update draws new labels and latents and is scored on the G its first update left (the
    G a one-update step ends with), by the D of the critic step; not on the G the round started with."""
    cfg = tiny_cfg("dcgan", "projection")
    gh.setup(0)
    G0, D0 = gh.build_models(cfg)
    real, y_real = gh.to_float(gh.synthetic_images(6, num_classes=K).x), torch.tensor([0, 1, 2, 2, 1, 0])
    ends = {}
    for n_gen in (1, 2):
        G, D = copy.deepcopy(G0), copy.deepcopy(D0)
        gh.setup(5)
        ends[n_gen] = G, D, one_step(dataclasses.replace(cfg, n_gen=n_gen), G, D, lambda: (real, y_real))
    gh.setup(5)                                               # the round's draws: critic step, then G's second
    torch.randint(K, (6,)), torch.randn(6, Z)
    y2, z2 = torch.randint(K, (6,)), torch.randn(6, Z)
    (G1, D1, _), (_, D2, out) = ends[1], ends[2]
    assert all(torch.equal(a, b) for a, b in zip(D1.parameters(), D2.parameters()))   # one critic step in both
    with torch.no_grad():
        after_first = gankit.losses.g_loss("bce", D1(G1(z2, y2), y2))
        at_start = gankit.losses.g_loss("bce", D1(copy.deepcopy(G0)(z2, y2), y2))
    assert float(out["g_loss"]) == pytest.approx(after_first.item(), rel=1e-5)
    assert after_first.item() != pytest.approx(at_start.item(), rel=1e-3)
