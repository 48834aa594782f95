"""BiGAN/ALI as a configuration of the kit (encoder="bigan"): E's shapes, a joint D that reads both x and z, E trained
with G, the linear probe on a separable toy set, save/load of E with G, reconstructions, the combinations refused."""
import copy

import matplotlib
import pytest
import torch
from torch.testing import assert_close

import gan_helpers as gh
import gankit
from helpers import Z, one_step, tiny_cfg, write_image_tree

matplotlib.use("Agg")


def bigan_cfg(arch="dcgan", **overrides):
    return tiny_cfg(arch, "none", num_classes=0, encoder="bigan", **overrides).validate()


@pytest.mark.parametrize("arch, img_size, last_width", [("dcgan", 32, 2), ("dcgan", 64, 4), ("resnet", 32, 2)])
def test_the_encoder_maps_images_to_latents(arch, img_size, last_width):
    cfg = bigan_cfg(arch, img_size=img_size)
    G, D = gh.build_models(cfg)
    x = torch.rand(3, 3, img_size, img_size) * 2 - 1
    assert G.encoder(x).shape == (3, Z) and gankit.sampling.encode(G, x).shape == (3, Z)
    assert gankit.probes.encoder_features(G, x).shape == (3, 16 * last_width * cfg.d_ch)     # 4x4 positions of the last conv
    assert gh.reconstruct(G, x).shape == x.shape
    assert D.joint is not None and D.q_head is None


@pytest.mark.parametrize("arch", ["dcgan", "resnet"])
def test_the_joint_discriminator_reads_both_the_image_and_the_latent(arch):
    G, D = gh.build_models(bigan_cfg(arch))
    D.eval()
    x, z = torch.rand(4, 3, 32, 32) * 2 - 1, torch.randn(4, Z)
    with torch.no_grad():
        base = D(x, z=z)
        assert base.shape == (4,)
        assert not torch.allclose(D(x, z=torch.randn(4, Z)), base)         # another z, another score
        assert not torch.allclose(D(x.flip(0), z=z), base)                  # another x, another score
    with pytest.raises(gh.GanError, match="pass its latents z"):
        D(x)


@pytest.mark.parametrize("loss", sorted(gankit.registry.LOSSES))
def test_a_training_step_moves_the_encoder_with_G(loss):
    cfg = bigan_cfg(loss=loss, spectral_norm="d")
    G, D = gh.build_models(cfg)
    before = [p.detach().clone() for p in G.encoder.parameters()]
    data = gh.synthetic_images(16, num_classes=1)
    logs = one_step(cfg, G, D, lambda: data.batch(cfg.batch_size))
    assert all(torch.isfinite(torch.tensor(v)) for v in logs.values())
    assert all(not torch.equal(a, b) for a, b in zip(before, G.encoder.parameters()))


def test_g_and_e_minimise_ds_loss_with_the_pairs_swapped():
    """The BiGAN objective's sign: D's loss scores (x, E(x)) as real and (G(z), z) as generated; G and E pay D's
    loss with the two swapped, scored by the updated D (wgan: mean D(x, E(x)) - mean D(G(z), z))."""
    cfg = bigan_cfg(loss="wgan", lipschitz="clip")           # clipping acts after D's update: D's loss is D0's
    gh.setup(0)
    G, D = gh.build_models(cfg)
    G0, D0 = copy.deepcopy(G), copy.deepcopy(D)
    real = gh.to_float(gh.synthetic_images(6, num_classes=1).x)
    gh.setup(5)
    out = one_step(cfg, G, D, lambda: (real, torch.zeros(6, dtype=torch.long)))
    gh.setup(5)
    z = torch.randn(6, Z)                                     # the step's only draw: G's latents
    with torch.no_grad():
        fake, z_real = G0(z), G0.encoder(real)
        d_expected = D0(fake, None, z=z).mean() - D0(real, None, z=z_real).mean()
        g_expected = D(real, None, z=z_real).mean() - D(fake, None, z=z).mean()
    assert float(out["d_loss"]) == pytest.approx(d_expected.item(), rel=1e-5)
    assert float(out["g_loss"]) == pytest.approx(g_expected.item(), rel=1e-5)


def test_the_linear_probe_separates_a_linearly_separable_set_and_not_shuffled_labels():
    gen = torch.Generator().manual_seed(0)
    y = torch.arange(300) % 3
    x = torch.randn(300, 20, generator=gen) * 0.5
    x[torch.arange(300), y] += 3.0                       # class c sits 3 along axis c: separable by a plane
    result = gankit.probes.logistic_probe(x[:150], y[:150], x[150:], y[150:])
    assert result == {"train_acc": 1.0, "test_acc": 1.0}
    shuffled = y[torch.randperm(300, generator=gen)]
    assert gankit.probes.logistic_probe(x[:150], shuffled[:150], x[150:], shuffled[150:])["test_acc"] < 0.5


def test_bad_bigan_settings_are_refused_in_one_line():
    cases = [(dict(cond="projection", num_classes=3), "cond='none'"), (dict(info_cat=4), "two studies"),
             (dict(lipschitz="gp"), "lipschitz='none'"), (dict(arch="mlp"), "arch='dcgan'"),
             (dict(encoder="vae"), "encoder='vae' is not one of")]
    for overrides, message in cases:
        settings = {"arch": "dcgan", "cond": "none", "encoder": "bigan", **overrides}
        with pytest.raises(gh.GanError, match=message) as err:
            tiny_cfg(**settings).validate()
        assert "\n" not in str(err.value)


def test_a_bigan_run_saves_its_encoder_with_G_and_the_probe_runs_from_the_file(tmp_path):
    train_data, val_data = gh.train_val_split(gh.synthetic_images(60, num_classes=3), val_size=20)
    features = gh.load_feature_net(gh.RandomFeatures(), classifier=gh.random_classifier())
    cfg = bigan_cfg(iters=2, eval_every=2, eval_samples=20, checkpoint_every=2, batch_size=4, ema_decay=0.9,
                    ema_start=1, val_size=10)
    gh.train(cfg, tmp_path, train_data, val_data, features, progress=False)
    state = gh.load_checkpoint(tmp_path / "last.pt")
    assert any(k.startswith("encoder.") for k in state["G_ema"])
    G, _ = gh.build_models(gh.Config.from_dict(state["config"]))
    G.load_state_dict(state["G_ema"])
    loaded = gh.load_generator(tmp_path / "last.pt")
    x = gh.to_float(val_data.x[:6])
    assert_close(gankit.sampling.encode(loaded, x), gankit.sampling.encode(G, x))
    assert_close(gh.sample(loaded, 6, seed=2), gh.sample(G.eval(), 6, seed=2))
    best = gh.load_generator(tmp_path / "best.pt")
    assert best.encoder is not None
    probe = gh.probe_encoder(best, train_data, val_data, n_train=30, n_test=20, steps=20)
    assert all(0 <= probe[k] <= 1 for k in ("encoder", "random_encoder", "pixels"))
    assert "pixels" in gh.format_probes(probe)
    assert gh.probe_encoder(best, train_data, val_data, 30, 20, steps=5, part="z")["n_train"] == 30
    write_image_tree(tmp_path / "data", gh.synthetic_images(30, num_classes=3))
    score = gh.test_set_score(best, tmp_path / "data", features, n=20)          # what `evaluate` prints
    assert {"fd", "is", "diversity", "probe"} <= set(score) and score["probe"]["n_test"] == 30
    ax = gh.reconstruction_figure(best, x)
    assert ax.images[0].get_array().shape[0] > 2 * 32    # two rows: images, then their reconstructions
