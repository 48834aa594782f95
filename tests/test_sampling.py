"""Sampling: standing BatchNorm statistics, interpolation end points, slerp and soft labels."""
import torch
import torch.nn as nn
from helpers import tiny
from torch.testing import assert_close

import gan_helpers as gh
import gankit


def test_standing_batch_norm_averages_the_generators_own_batch_statistics():
    gh.setup(0)
    G = gh.build_models(tiny("dcgan"))[0].eval()
    first = G.norms[0].bn                                          # BN over the first transposed conv's output
    first.running_mean.fill_(5.0)                                  # stale statistics, as copied from another G
    buffers_before = [b.clone() for b in G.buffers()]
    rng = torch.random.get_rng_state()
    with torch.no_grad():                                          # the first BN's inputs do not depend on BN
        inputs = [G.convs[0](gankit.sampling.latents(G, 16, seed=7 + i)[0][:, :, None, None]) for i in range(3)]
    gh.standing_batch_norm(G, n_batches=3, batch_size=16, seed=7)
    assert_close(first.running_mean, torch.stack([x.mean((0, 2, 3)) for x in inputs]).mean(0))
    assert_close(first.running_var, torch.stack([x.var((0, 2, 3)) for x in inputs]).mean(0))
    assert not G.training and first.momentum == 0.1
    assert torch.equal(rng, torch.random.get_rng_state())
    assert not all(torch.equal(a, b) for a, b in zip(buffers_before, G.buffers()))


def test_standing_batch_norm_leaves_spectral_norm_vectors_alone():
    gh.setup(0)
    G = gh.build_models(tiny("sagan"))[0]
    u_before = {n: b.clone() for n, b in G.named_buffers() if n.endswith("_u")}
    gh.standing_batch_norm(G, n_batches=2, batch_size=8)
    assert u_before and all(torch.equal(b, dict(G.named_buffers())[n]) for n, b in u_before.items())


def test_interpolation_endpoints_reproduce_the_two_samples(conditional_G):
    G = conditional_G
    within = gankit.sampling.interpolate_latents(G, (3, 4), label=2, steps=5)
    assert_close(within[0], gh.sample(G, 1, labels=2, seed=3)[0])
    assert_close(within[-1], gh.sample(G, 1, labels=2, seed=4)[0])
    between = gankit.sampling.interpolate_classes(G, (2, 5), seed=7, steps=5)
    assert_close(between[0], gh.sample(G, 1, labels=2, seed=7)[0])
    assert_close(between[-1], gh.sample(G, 1, labels=5, seed=7)[0])
    assert (between[2] - between[0]).abs().max() > 0.01          # the middle is neither end


def test_slerp_keeps_the_norm_and_soft_labels_mix_the_conditioning():
    z0, z1 = torch.randn(2, 64, generator=torch.Generator().manual_seed(0))
    z1 = z1 / z1.norm() * z0.norm()
    path = gankit.sampling.slerp(z0, z1, torch.linspace(0, 1, 7))
    assert_close(path.norm(dim=1), z0.norm().expand(7))
    assert_close(path[[0, -1]], torch.stack([z0, z1]))
    cbn = gankit.layers.ConditionalBatchNorm(4, 3).eval()
    nn.init.normal_(cbn.gain.weight)
    x = torch.randn(2, 4, 5, 5)
    soft = torch.tensor([[0.25, 0.75, 0.0]]).expand(2, 3)
    mixed = 0.25 * cbn(x, torch.tensor([0, 0])) + 0.75 * cbn(x, torch.tensor([1, 1]))
    assert_close(cbn(x, soft), mixed)


def test_an_evaluation_takes_standing_batches_to_cover_its_samples_at_most_16_of_128():
    assert [gankit.sampling.standing_batches(n) for n in (1, 40, 128, 129, 1920, 1921, 2000, 5000, 10_000)] == \
        [1, 1, 1, 2, 15, 16, 16, 16, 16]
