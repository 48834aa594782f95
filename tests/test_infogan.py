"""InfoGAN as a configuration of the kit (info_cat, info_cont, info_weight): the mutual-information term against a
hand computation, its gradient through Q into G, codes drawn by seed, traversals that move one code, cluster
accuracy under a known permutation, save/load, and the combinations refused."""
import dataclasses
import math

import pytest
import torch
import torch.nn as nn
from torch.testing import assert_close

import gan_helpers as gh
import gankit
from helpers import Z, tiny_cfg, write_image_tree


def info_cfg(arch="dcgan", **overrides):
    return tiny_cfg(arch, "none", num_classes=0, info_cat=3, info_cont=2, **overrides).validate()


def test_info_loss_is_cross_entropy_plus_half_squared_error():
    q = torch.tensor([[2.0, 0.0, -1.0, 0.5, -0.2],
                      [0.0, 1.0, 0.0, -0.4, 0.9]])
    codes = torch.tensor([[1.0, 0.0, 0.0, 0.3, -0.6],
                          [0.0, 0.0, 1.0, -1.0, 1.0]])
    ce = [-(2.0 - math.log(math.exp(2.0) + 1 + math.exp(-1.0))), -(0.0 - math.log(1 + math.e + 1))]
    half_sq = [0.5 * ((0.5 - 0.3) ** 2 + (-0.2 + 0.6) ** 2), 0.5 * ((-0.4 + 1.0) ** 2 + (0.9 - 1.0) ** 2)]
    expected = sum(ce) / 2 + sum(half_sq) / 2
    assert gankit.losses.info_loss(q, codes, 3).item() == pytest.approx(expected, rel=1e-6)
    assert gankit.losses.info_loss(q[:, 3:], codes[:, 3:], 0).item() == pytest.approx(sum(half_sq) / 2, rel=1e-6)
    assert gankit.losses.info_loss(q[:, :3], codes[:, :3], 3).item() == pytest.approx(sum(ce) / 2, rel=1e-6)


@pytest.mark.parametrize("arch", ["dcgan", "resnet"])
def test_the_q_heads_term_reaches_G_and_G_takes_the_codes(arch):
    cfg = info_cfg(arch)
    G, D = gh.build_models(cfg)
    assert D.q_head is not None and G.encoder is None
    z = gankit.latent.draw_latents(cfg, 6)
    assert z.shape == (6, Z + 5)
    out = gankit.losses.discriminate(D, G(z), None)
    assert out.codes.shape == (6, 5) and out.classes is None
    gankit.losses.info_loss(out.codes, z[:, Z:], cfg.info_cat).backward()
    grads = [p.grad for p in G.parameters()]
    assert all(g is not None for g in grads) and all(g.abs().sum() > 0 for g in grads)


@pytest.mark.parametrize("loss", sorted(gankit.registry.LOSSES))
@pytest.mark.parametrize("cond, lipschitz", [("none", "none"), ("projection-ac", "none"), ("none", "clip")])
def test_infogan_trains_with_every_loss_conditional_or_not(loss, cond, lipschitz):
    cfg = tiny_cfg("dcgan", cond, info_cat=3, info_cont=2, loss=loss, lipschitz=lipschitz,
                   spectral_norm="none" if lipschitz == "clip" else "d").validate()
    G, D = gh.build_models(cfg)
    data = gh.synthetic_images(12, num_classes=3)
    logs = gh.train_step(cfg, G, D, None, *gh.make_optimizers(cfg, G, D), lambda: data.batch(6), 0)
    assert all(math.isfinite(v) for v in logs.values())
    if lipschitz == "clip":                              # the critic is clipped, Q's head is not
        assert D.out.weight.abs().max() <= cfg.clip_value
        assert D.q_head.net[0].weight.abs().max() > cfg.clip_value


def test_latents_draw_the_codes_by_seed_and_leave_plain_z_as_it_was():
    cfg = info_cfg()
    G, _ = gh.build_models(cfg)
    z, y = gankit.sampling.latents(G, 50, seed=3)
    assert y is None and z.shape == (50, Z + 5)
    onehot, cont = z[:, Z:Z + 3], z[:, Z + 3:]
    assert torch.equal(onehot.sum(1), torch.ones(50)) and set(onehot.unique().tolist()) == {0.0, 1.0}
    assert cont.abs().max() <= 1 and len(gankit.latent.split_codes(cfg, z)[0].unique()) == 3
    assert torch.equal(gankit.sampling.latents(G, 50, seed=3)[0], z) and not torch.equal(gankit.sampling.latents(G, 50, seed=4)[0], z)
    assert_close(gh.sample(G, 4, seed=3), gh.sample(G, 4, seed=3))
    plain = tiny_cfg()                                   # no codes: exactly the z drawn before codes existed
    assert torch.equal(gankit.latent.draw_latents(plain, 5, torch.Generator().manual_seed(1)),
                       torch.randn(5, Z, generator=torch.Generator().manual_seed(1)))


def test_a_traversal_moves_only_the_swept_code():
    cfg = info_cfg()
    G, _ = gh.build_models(cfg)
    z = gankit.sampling.traversal_latents(G, [2, 0], cont_index=1, steps=5, seed=7)          # rows: code 2, code 0
    base = gankit.sampling.latents(G, 1, seed=7)[0][0]
    expected = base.repeat(10, 1)                        # z and continuous code 0 of the seed everywhere
    expected[:5, Z:Z + 3] = torch.tensor([0.0, 0, 1])
    expected[5:, Z:Z + 3] = torch.tensor([1.0, 0, 0])
    expected[:, Z + 4] = torch.linspace(-1, 1, 5).repeat(2)                      # the swept code
    assert torch.equal(z, expected)
    images = gh.traversal(G, [2, 0], 1, 5, seed=7)
    assert images.shape == (10, 3, 32, 32)
    by_seed = gankit.sampling.traversal_latents(G, None, cont_index=None, steps=3, seed=7)  # columns: seeds 7, 8, 9
    assert by_seed.shape == (9, Z + 5) and torch.equal(by_seed[0, :Z], base[:Z])
    with pytest.raises(gh.GanError, match="cont_index"):
        gankit.sampling.traversal_latents(G, None, cont_index=2)


def test_matched_accuracy_undoes_a_known_permutation():
    perm = torch.tensor([3, 0, 2, 1])                    # cluster c holds class perm[c]
    clusters = torch.arange(40) % 4
    classes = perm[clusters].clone()
    classes[:4] = torch.tensor([1, 2, 3, 0])             # 4 of 40 mislabelled (none matching their cluster's class)
    acc, mapping = gankit.probes.matched_accuracy(clusters, classes)
    assert acc == pytest.approx(36 / 40) and mapping == {0: 3, 1: 0, 2: 2, 3: 1}


class CodeAsBrightness(nn.Module):
    """A stand-in G: every pixel is the categorical code's value / 4 (in [0, 1] after sample()'s mapping)."""

    def __init__(self, cfg):
        super().__init__()
        self.config, self.scale = cfg, nn.Parameter(torch.ones(()))

    def forward(self, z, y=None):
        value = z[:, Z:Z + 4].argmax(1).float()
        return (value / 4 * 2 - 1)[:, None, None, None].expand(-1, 3, 32, 32) * self.scale


class BrightnessClassifier(nn.Module):
    """Images in [0, 1] -> class perm[round(4 * brightness)] of 10."""

    def __init__(self, perm):
        super().__init__()
        self.perm = perm

    def forward(self, x):
        return nn.functional.one_hot(self.perm[(x.mean((1, 2, 3)) * 4).round().long()], 10).float()


def test_cluster_accuracy_finds_the_classes_the_code_values_make():
    cfg = tiny_cfg("dcgan", "none", num_classes=0, info_cat=4).validate()
    perm = torch.tensor([7, 2, 9, 0])
    result = gh.cluster_accuracy(CodeAsBrightness(cfg), BrightnessClassifier(perm), per_value=30)
    assert result["cluster_acc"] == 1.0 and result["mapping"] == {0: 7, 1: 2, 2: 9, 3: 0}
    assert result["shuffled_acc"] < 0.6 and result["predicted_classes"][7] == 30
    assert "cluster accuracy" in gh.format_probes(result)


@pytest.mark.parametrize("overrides, message", [
    (dict(arch="mlp", info_cat=10), "arch='dcgan'"),
    (dict(info_cat=1), "info_cat=1"),
    (dict(info_cont=-1), "info_cont"),
    (dict(info_cat=10, info_weight=-1.0), "info_weight must be >= 0"),
])
def test_bad_infogan_settings_are_refused_in_one_line(overrides, message):
    with pytest.raises(gh.GanError, match=message) as err:
        tiny_cfg(**{"arch": "dcgan", "cond": "none", **overrides}).validate()
    assert "\n" not in str(err.value)
    with pytest.raises(gh.GanError, match="arch='dcgan'"):
        gh.Config.reference_dcgan().with_overrides(["arch=mlp", "info_cont=2"]).validate()


def test_an_infogan_run_saves_loads_and_scores(tmp_path):
    train_data, val_data = gh.train_val_split(gh.synthetic_images(60, num_classes=3), val_size=20)
    features = gh.load_feature_net(gh.RandomFeatures(), classifier=gh.random_classifier())
    cfg = info_cfg(iters=2, eval_every=2, eval_samples=20, checkpoint_every=2, batch_size=4, val_size=10)
    gh.train(cfg, tmp_path, train_data, val_data, features, progress=False)
    state = gh.load_checkpoint(tmp_path / "last.pt")
    G, _ = gh.build_models(gh.Config.from_dict(state["config"]))
    G.load_state_dict(state["G"])
    loaded = gh.load_generator(tmp_path / "last.pt")
    assert loaded.config.info_cat == 3 and loaded.config.latent_dim == Z + 5
    assert_close(gh.sample(loaded, 8, seed=1), gh.sample(G.eval(), 8, seed=1))
    best = gh.load_generator(tmp_path / "best.pt")
    write_image_tree(tmp_path / "data", gh.synthetic_images(30, num_classes=3))
    score = gh.test_set_score(best, tmp_path / "data", features, n=30)          # what `evaluate` prints
    assert {"fd", "is", "diversity", "clusters"} <= set(score) and score["clusters"]["per_value"] == 10
    assert gh.traversal(best, None, 0, 4).shape == (12, 3, 32, 32)


def test_the_traversal_figure_labels_a_row_per_code_value():
    import matplotlib
    matplotlib.use("Agg")
    G, _ = gh.build_models(info_cfg())
    ax = gh.traversal_figure(G, steps=4)
    assert [t.get_text() for t in ax.get_yticklabels()] == ["code 0", "code 1", "code 2"]
    assert "continuous code 0" in ax.get_title()


def test_info_weight_0_feeds_the_codes_without_the_mutual_information_term():
    """InfoGAN's baseline: the same G input and Q head, but the step's losses are those without the MI term."""
    cfg = tiny_cfg(arch="dcgan", cond="none", info_cat=4, info_cont=1, info_weight=0.0).validate()
    G, D = gh.build_models(cfg)
    data = gh.synthetic_images(12, num_classes=1)
    opt_g, opt_d = gh.make_optimizers(cfg, G, D)
    gh.setup(0)
    logs = gh.train_step(cfg, G, D, None, opt_g, opt_d, lambda: data.batch(cfg.batch_size), 0)
    plain = dataclasses.replace(cfg, info_weight=1.0)
    G1, D1 = gh.build_models(plain)
    opt_g1, opt_d1 = gh.make_optimizers(plain, G1, D1)
    gh.setup(0)
    with_mi = gh.train_step(plain, G1, D1, None, opt_g1, opt_d1, lambda: data.batch(plain.batch_size), 0)
    assert G.config.latent_dim == cfg.z_dim + 5
    assert logs["d_loss"] < with_mi["d_loss"] and logs["g_loss"] < with_mi["g_loss"]   # the MI term is >= 0
