"""Study configuration (issue 11): architectures x conditioning x image sizes, ACGAN and CGAN losses by hand,
stabiliser switches, datasets (image folders, class subsets, 64x64, recorded splits), old checkpoints and
config validation. CPU, tiny widths."""
import copy
import dataclasses
import json
from pathlib import Path
from unittest import mock

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch.nn.utils import parametrize
from torch.testing import assert_close

import gan_helpers as gh
from gan_helpers import Config, GanError

ROOT = Path(__file__).resolve().parents[1]
K, Z = 3, 8                       # classes and latent size of the tiny models


def tiny_cfg(arch="dcgan", cond="projection", img_size=32, **overrides) -> Config:
    """A tiny, unconstrained-by-attention config of `arch`: BCE, no spectral norm unless overridden."""
    base = dict(arch=arch, cond=cond, img_size=img_size, num_classes=K, z_dim=Z, g_ch=4, d_ch=4, g_attn=(),
                d_attn=(), batch_size=6, spectral_norm="none", loss="bce", drift=0.0, ema_decay=0.0)
    return Config(**{**base, **overrides})


def one_step(cfg, G, D, real_batch):
    opt_g, opt_d = gh.make_optimizers(cfg, G, D)
    return gh.train_step(cfg, G, D, None, opt_g, opt_d, real_batch, 0)


# ---------------------------------------------------------------- every architecture x conditioning x size

@pytest.mark.parametrize("img_size", [32, 64])
@pytest.mark.parametrize("cond", sorted(gh.CONDITIONINGS))
@pytest.mark.parametrize("arch", sorted(gh.ARCHS))
def test_every_arch_cond_and_size_builds_and_uses_labels(arch, cond, img_size):
    gh.setup(0)
    cfg = tiny_cfg(arch, cond, img_size)
    G, D = gh.build_models(cfg)
    assert G.config is cfg and D.config is cfg
    z, y0, y1 = torch.randn(4, Z), torch.zeros(4, dtype=torch.int64), torch.full((4,), 2)
    with gh.eval_mode(G), gh.eval_mode(D), torch.no_grad():
        x = G(z, y0)
        logits = D(x, y0)
        assert x.shape == (4, 3, img_size, img_size) and x.min() >= -1 and x.max() <= 1
        assert logits.shape == (4,) and torch.isfinite(logits).all()
        g_changes = not torch.equal(G(z, y1), x)
        d_changes = not torch.equal(D(x, y1), logits)
        if gh.CONDITIONINGS[cond].d_classifier:   # the class head of the same pass reads x (and, for acgan,
            # the adversarial logit ignores y)
            adv, classes = D(x, y0, with_classes=True)
            assert_close(adv, logits)
            assert classes.shape == (4, K)
            # (float64: with N(0, 0.02) weights in tiny layers the class logits start around 1e-8)
            d_changes = gh.class_loss(classes.double(), y0).item() != gh.class_loss(classes.double(), y1).item()
        else:
            with pytest.raises(GanError, match="acgan"):
                D(x, y0, with_classes=True)
    if cond == "none":
        assert not g_changes and not d_changes
    elif cond.startswith("projection"):   # conditional BN starts as the identity: labels count after a step
        assert not g_changes and d_changes
    else:
        assert g_changes and d_changes


@pytest.mark.parametrize("arch", sorted(gh.ARCHS))
def test_projection_generator_uses_labels_after_one_step(arch):
    gh.setup(0)
    cfg = tiny_cfg(arch, "projection")
    G, D = gh.build_models(cfg)
    data = gh.synthetic_images(24, num_classes=K)
    one_step(cfg, G, D, lambda: data.batch(cfg.batch_size))
    z = torch.randn(4, Z)
    with gh.eval_mode(G), torch.no_grad():
        assert not torch.equal(G(z, torch.zeros(4, dtype=torch.int64)), G(z, torch.full((4,), 2)))


@pytest.mark.parametrize("arch", sorted(gh.ARCHS))
def test_128_pixels_build(arch):
    cfg = tiny_cfg(arch, img_size=128, g_ch=2, d_ch=2)
    G, D = gh.build_models(cfg)
    with torch.no_grad():
        x = G(torch.randn(2, Z), torch.arange(2))
        assert x.shape == (2, 3, 128, 128) and D(x, torch.arange(2)).shape == (2,)


def test_stages_follow_img_size():
    assert gh.attention_resolutions("resnet", "G", 64) == (8, 16, 32, 64)
    assert gh.attention_resolutions("resnet", "D", 64) == (64, 32, 16, 8)
    assert gh.attention_resolutions("dcgan", "G", 64) == (4, 8, 16, 32)
    assert gh.attention_resolutions("dcgan", "D", 64) == (32, 16, 8, 4)
    assert gh.attention_resolutions("mlp", "G", 32) == ()
    G, D = gh.build_models(tiny_cfg("dcgan", img_size=64, g_attn=(32,), d_attn=(8,)))
    assert len(G.convs) == 4 and [c.out_channels for c in G.convs] == [32, 16, 8, 4]   # 8c, 4c, 2c, c
    assert [c.out_channels for c in D.convs] == [4, 8, 16, 16]                         # c, 2c, 4c, 4c


# ---------------------------------------------------------------- ACGAN and CGAN losses by hand

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


def _step_and_its_draws(cond: str, **overrides):
    """One train_step of a tiny DCGAN (acgan_weight 0.7) on six fixed real images, and what a hand computation
    needs: G and D before the step (G0, D0), D after it, the real batch and labels, the step's own draws (fake
    labels, then z, replayed from the same seed) and the step's logged losses."""
    cfg = tiny_cfg("dcgan", cond, acgan_weight=0.7, **overrides)
    gh.setup(0)
    G, D = gh.build_models(cfg)
    G0, D0 = copy.deepcopy(G), copy.deepcopy(D)
    real, y_real = gh.to_float(gh.synthetic_images(6, num_classes=K).x), torch.tensor([0, 1, 2, 2, 1, 0])
    gh.setup(5)
    out = one_step(cfg, G, D, lambda: (real, y_real))
    gh.setup(5)                                              # the step's own draws: fake labels, then z
    y_fake = torch.randint(K, (6,))
    z = torch.randn(6, Z)
    return G0, D0, D, real, y_real, y_fake, z, out


@pytest.mark.parametrize("cond", ["acgan", "concat"])
def test_conditional_losses_match_hand_computation(cond):
    """train_step's D and G losses equal BCE (+ acgan_weight x cross-entropy for ACGAN) written out by hand,
    with the CGAN label planes and label embedding joined by hand."""
    G0, D0, D, real, y_real, y_fake, z, out = _step_and_its_draws(cond)

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
    assert out["d_loss"] == pytest.approx(d_expected.item(), rel=1e-5)
    assert out["g_loss"] == pytest.approx(g_expected.item(), rel=1e-5)


def test_projection_ac_adds_the_class_cross_entropy_to_the_projection_losses():
    """projection-ac: the projection D's BCE losses (logit + <embed(y), phi>) plus acgan_weight x the class
    head's cross-entropy, on real labels for D and on the asked-for labels for G."""
    G0, D0, D, real, y_real, y_fake, z, out = _step_and_its_draws("projection-ac")
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
    assert out["d_loss"] == pytest.approx(d_expected.item(), rel=1e-5)
    assert out["g_loss"] == pytest.approx(g_expected.item(), rel=1e-5)


def test_consistency_regularisation_adds_the_squared_logit_changes_to_the_d_loss():
    """cr_weight (bCR): D's loss gains cr_weight x (E[(D(x) - D(T(x)))^2] on real + the same on generated
    images), T being consistency_shift (here a plain mirror image, so the hand computation can repeat it)."""
    with mock.patch.object(gh, "consistency_shift", lambda x: x.flip(3)):
        G0, D0, D, real, y_real, y_fake, z, out = _step_and_its_draws("projection", cr_weight=2.5)
    with torch.no_grad():
        fake = G0(z, y_fake)
        r, f = D0(real, y_real), D0(fake, y_fake)
        r_shift, f_shift = D0(real.flip(3), y_real), D0(fake.flip(3), y_fake)
        d_expected = _bce_d(r, f) + 2.5 * ((r - r_shift).pow(2).mean() + (f - f_shift).pow(2).mean())
    assert (r - r_shift).abs().max() > 1e-3          # the term is not zero here
    assert out["d_loss"] == pytest.approx(d_expected.item(), rel=1e-5)


def test_consistency_shift_flips_and_shifts_each_image_within_an_eighth():
    torch.manual_seed(0)
    x = torch.rand(64, 3, 32, 32) + 1                 # positive everywhere: uncovered borders read 0
    y = gh.consistency_shift(x)
    mirrored = 0
    for a, b in zip(x, y):
        inside = b[0] != 0
        rows, cols = inside.any(1).nonzero().flatten(), inside.any(0).nonzero().flatten()
        dy, dx = 32 - len(rows), 32 - len(cols)
        assert dy <= 4 and dx <= 4
        top, left = rows[0].item(), cols[0].item()
        window = b[:, top:top + 32 - dy, left:left + 32 - dx]
        src_top, src_left = (0 if top else dy), (0 if left else dx)
        same, mirror = (torch.equal(window, s[:, src_top:src_top + 32 - dy, src_left:src_left + 32 - dx])
                        for s in (a, a.flip(2)))
        assert same or mirror
        mirrored += mirror
    assert 10 < mirrored < 54                         # about half the images are mirrored (binomial, p = 0.5)


# ---------------------------------------------------------------- stabilisers

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


def test_n_critic_and_n_gen_count_optimizer_steps():
    cfg = tiny_cfg("mlp", n_critic=3, n_gen=2)
    gh.setup(0)
    G, D = gh.build_models(cfg)
    opt_g, opt_d = gh.make_optimizers(cfg, G, D)
    data = gh.synthetic_images(24, num_classes=K)
    gh.train_step(cfg, G, D, None, opt_g, opt_d, lambda: data.batch(cfg.batch_size), 0)
    assert opt_d.state[next(D.parameters())]["step"].item() == 3
    assert opt_g.state[next(G.parameters())]["step"].item() == 2


# ---------------------------------------------------------------- config: validation and old values

@pytest.mark.parametrize("overrides,fix", [
    (dict(loss="wgan", spectral_norm="none", lipschitz="none"), "lipschitz='gp' or 'clip'"),
    (dict(arch="mlp", g_attn=(16,)), "g_attn=()"),
    (dict(arch="dcgan", d_attn=(32,)), "choose among resolutions \\(16, 8, 4\\)"),
    (dict(arch="resnet", img_size=64, g_attn=(128,)), "8, 16, 32, 64"),
    (dict(img_size=48), "img_size"),
    (dict(cond="acgan", num_classes=0), "cond='none'"),
    (dict(cond="acgan", acgan_weight=0.0), "acgan_weight > 0"),
    (dict(cond="projection-ac", acgan_weight=-1.0), "acgan_weight > 0"),
    (dict(cond="projection-ac", num_classes=0), "cond='none'"),
    (dict(spectral_norm="both"), "spectral_norm"),
    (dict(classes=("cat", "cat")), "twice"),
    (dict(n_gen=0), "n_gen"),
])
def test_bad_combinations_give_one_line_errors(overrides, fix):
    with pytest.raises(GanError, match=fix) as info:
        tiny_cfg(**overrides).validate()
    assert "\n" not in str(info.value)


def test_presets_validate_cleanly():
    for preset in gh.PRESETS.values():
        cfg = preset().validate()
        assert cfg.spectral_norm in gh.SPECTRAL_NORM and cfg.lipschitz in ("none", "clip", "gp")
    assert (Config.dcgan().spectral_norm, Config.dcgan().lipschitz) == ("none", "none")


def test_old_config_values_are_upgraded():
    old = {k: v for k, v in dataclasses.asdict(Config.dcgan()).items()
           if k not in ("dataset", "img_size", "classes", "val_size", "split_seed", "cond", "acgan_weight", "n_gen")}
    for sn, lip, k, expected in ((False, "sn", 10, ("none", "none", "projection")),
                                 (True, "clip", 0, ("gd", "clip", "none"))):
        cfg = Config.from_dict({**old, "spectral_norm": sn, "lipschitz": lip, "num_classes": k})
        assert (cfg.spectral_norm, cfg.lipschitz, cfg.cond) == expected
        assert (cfg.img_size, cfg.classes, cfg.n_gen) == (32, (), 1)
    assert Config.sagan().with_overrides(["spectral_norm=True", "classes=cat,dog"]).spectral_norm == "gd"
    assert (Config(spectral_norm=False).spectral_norm, Config(lipschitz="sn").lipschitz) == ("none", "none")
    assert Config.sagan().with_overrides(["classes=cat,dog"]).classes == ("cat", "dog")


def test_shipped_checkpoints_sample_as_before():
    """model/*.pt (saved before issue 11) load and give the images they gave then (tests/data reference)."""
    reference = torch.load(ROOT / "tests" / "fixtures" / "shipped_samples.pt")
    for name, images in reference.items():
        G = gh.load_generator(ROOT / "model" / f"{name}.pt")
        assert_close(gh.sample(G, len(images), seed=7), images, rtol=0, atol=1e-5)


# ---------------------------------------------------------------- data: folders, subsets, sizes, splits

def write_folder(root: Path, n: int, size: int, classes=("cat", "dog"), seed: int = 0) -> None:
    """n synthetic images as root/<class>/NNN.png (no train/test split), `size` pixels."""
    imgs = gh.synthetic_images(n, num_classes=len(classes), seed=seed, size=size)
    for c, name in enumerate(classes):
        picked = imgs.x[imgs.y == c]
        gh.save_pngs(gh.to_float(picked), root / name, [f"{i:03d}" for i in range(len(picked))])


def test_folder_without_test_split_is_split_three_ways(tmp_path):
    write_folder(tmp_path, 40, 32)
    cfg = Config(val_size=6, split_seed=3)
    train, val, test = gh.load_dataset(cfg, tmp_path, ("train", "val", "test"))
    assert (len(train), len(val), len(test)) == (28, 6, 6)
    rows = {p: {tuple(x.flatten().tolist()) for x in s.x} for p, s in (("train", train), ("val", val), ("test", test))}
    assert not (rows["train"] & rows["val"]) and not (rows["train"] & rows["test"]) and not (rows["val"] & rows["test"])
    assert train.classes == ("cat", "dog") and test.split["test"] == "held out" and test.split["dataset"] == "folder"
    (again,) = gh.load_dataset(cfg, tmp_path, ("test",))
    assert torch.equal(again.x, test.x)                               # fixed by split_seed
    (other,) = gh.load_dataset(dataclasses.replace(cfg, split_seed=4), tmp_path, ("test",))
    assert not torch.equal(other.x, test.x) and other.key != test.key  # another split, another cache key


def test_images_are_centre_cropped_and_resized(tmp_path):
    from PIL import Image
    wide = np.zeros((40, 60, 3), np.uint8)
    wide[:, :, 0] = 255                                                # red margins
    wide[:, 10:50] = (0, 0, 255)                                       # the centred 40x40 square is blue
    (tmp_path / "a").mkdir()
    Image.fromarray(wide).save(tmp_path / "a" / "wide.png")
    x = gh.read_image_folder(tmp_path, size=32).x
    assert x.shape == (1, 3, 32, 32)
    assert torch.equal(x[0, :, 0, 0], torch.tensor([0, 0, 255], dtype=torch.uint8))
    assert int(x[0, 0].max()) == 0                                     # no red survives the crop


def test_class_subset_relabels_and_trains(tmp_path):
    imgs = gh.synthetic_images(60, num_classes=3)                      # airplane, automobile, bird
    for part in ("train", "test"):
        for c, name in enumerate(imgs.classes):
            gh.save_pngs(gh.to_float(imgs.x[imgs.y == c]), tmp_path / part / name, [f"{i}" for i in range(20)])
    cfg = Config.sagan(classes=("bird",), cond="projection", val_size=4, g_ch=8, d_ch=8, batch_size=4, iters=2,
                       eval_every=2, eval_samples=8, checkpoint_every=2, ema_decay=0.0)
    train, val = gh.load_dataset(cfg, tmp_path)
    assert train.classes == ("bird",) and len(train) == 16 and int(train.y.max()) == 0
    birds = {x.numpy().tobytes() for x in imgs.x[imgs.y == 2]}
    assert all(x.numpy().tobytes() in birds for x in torch.cat([train.x, val.x]))
    cfg = gh.config_for_data(cfg, train)
    assert cfg.num_classes == 1
    history = gh.train(cfg, tmp_path / "run", train, val, gh.load_feature_net(gh.RandomFeatures()), progress=False)
    assert len(history["iter"]) == 2
    with pytest.raises(GanError, match="not in"):
        gh.load_dataset(dataclasses.replace(cfg, classes=("deer",)), tmp_path)


def test_data_that_does_not_fit_the_config_is_refused():
    data = gh.synthetic_images(20, num_classes=3, size=64)
    with pytest.raises(GanError, match="img_size=64"):
        gh.check_data(tiny_cfg(img_size=32), data)
    with pytest.raises(GanError, match="num_classes=3"):
        gh.check_data(tiny_cfg(img_size=64, num_classes=10), data)


def _run_cli(*argv: str) -> None:
    assert gh.main([str(a) for a in argv]) == 0


def test_64px_folder_trains_from_the_cli_resumes_exactly_samples_and_scores(tmp_path, capsys):
    """The issue's first command on a 64x64 folder without test split: train, resume, sample, evaluate."""
    data, net = tmp_path / "faces", tmp_path / "features.pt"
    write_folder(data, 48, 64)
    with gh.warnings_ignored():
        torch.jit.script(gh.RandomFeatures()).save(str(net))
    common = ["--data-dir", data, "--feature-net", net, "--eval-every", 2, "--eval-samples", 12, "--set",
              "img_size=64", "cond=acgan", "g_ch=4", "d_ch=4", "batch_size=4", "val_size=6", "checkpoint_every=1"]
    _run_cli("train", "dcgan", "--iters", 3, "--out", tmp_path / "straight", *common)
    assert "G " in capsys.readouterr().out                                # parameter counts are printed
    _run_cli("train", "dcgan", "--iters", 2, "--out", tmp_path / "resumed", *common)
    _run_cli("train", "dcgan", "--iters", 3, "--out", tmp_path / "resumed", "--resume", *common)
    a, b = (gh.load_checkpoint(tmp_path / run / "last.pt") for run in ("straight", "resumed"))
    for key in ("G", "D"):
        for name, tensor in a[key].items():
            assert torch.equal(tensor, b[key][name]), name
    best = tmp_path / "straight" / "best.pt"
    split = gh.load_checkpoint(best)["split"]
    assert split == {**split, "dataset": "folder", "img_size": 64, "val_size": 6, "split_seed": 0,
                     "test": "held out", "class_names": ["cat", "dog"]}
    _run_cli("sample", best, "--n", 5, "--out", tmp_path / "s.npz")
    with np.load(tmp_path / "s.npz") as f:
        assert f["x"].shape == (5, 64, 64, 3)
    _run_cli("evaluate", best, "--data-dir", data, "--n", 12, "--feature-net", net, "--json", tmp_path / "e.json",
             "--grid", tmp_path / "grid.png")
    scores = json.loads((tmp_path / "e.json").read_text())
    assert scores["n_real"] == 6 and scores["n_fake"] == 12              # the held-out test images of its split
    other = tmp_path / "other"
    write_folder(other, 48, 64, classes=("ant", "bee"))
    G = gh.load_generator(best)
    with pytest.raises(GanError, match="not the split"):
        gh.test_set_score(G, other, gh.load_feature_net(str(net)), 12, stats_dir=tmp_path, split=split)


def test_bad_combination_on_the_command_line_is_one_line(capsys):
    assert gh.main(["train", "sagan", "--set", "spectral_norm=none", "--iters", "1"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: loss='wgan'") and "lipschitz='gp'" in err and "\n" not in err
