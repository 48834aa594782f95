"""Every entry of every registry (gankit/registry.py) works end to end, picked up from the registry itself: a new
architecture, loss, conditioning, augmentation, dataset or metric is tested here without a test of its own."""
import math
from pathlib import Path

import pytest
import torch

import gan_helpers as gh
import gankit

TINY = dict(g_ch=8, d_ch=8, z_dim=8, batch_size=4, g_attn=(), d_attn=(), ema_decay=0.0, spectral_norm="d")


def tiny(**overrides) -> gh.Config:
    return gh.Config.sagan(**{**TINY, **overrides}).validate()   # the preset drops settings a loss makes inert


def one_step(cfg: gh.Config, G: torch.nn.Module | None = None, D: torch.nn.Module | None = None) -> dict[str, float]:
    """One train_step of new models for cfg (or of G and D) on synthetic images."""
    data = gh.synthetic_images(16, max(cfg.cond_classes, 1), size=cfg.img_size)
    if G is None:
        G, D = gh.build_models(cfg)
    opt_g, opt_d = gh.make_optimizers(cfg, G, D)
    return gh.train_step(cfg, G, D, None, opt_g, opt_d, lambda: data.batch(cfg.batch_size), 0)


@pytest.mark.parametrize("arch", sorted(gankit.registry.ARCHS))
def test_every_architecture_builds_trains_and_follows_the_model_protocol(arch):
    cfg = tiny(arch=arch)
    G, D = gh.build_models(cfg)
    z, y = torch.randn(3, cfg.z_dim), torch.tensor([0, 1, 2])
    x = G(z, y)
    assert x.shape == (3, 3, 32, 32) and x.abs().max() <= 1
    assert D(x, y).shape == (3,)
    assert G.config is cfg and G.num_classes == 10 and D.label_planes == 0
    assert D.embed is not None and D.classifier is None        # projection: an embedding, no class head
    for who, model in (("G", G), ("D", D)):
        assert model.attention_resolutions(32) == gankit.registry.attention_resolutions(arch, who, 32)
    assert all(torch.isfinite(torch.tensor(v)) for v in one_step(cfg).values())


@pytest.mark.parametrize("loss", sorted(gankit.registry.LOSSES))
def test_every_loss_rewards_a_discriminator_that_tells_real_from_generated(loss):
    apart, swapped = torch.tensor([3.0, 2.0]), torch.tensor([-3.0, -2.0])
    assert gankit.losses.d_loss(loss, apart, swapped) < gankit.losses.d_loss(loss, swapped, apart)      # D: real high, generated low
    assert gankit.losses.g_loss(loss, apart) < gankit.losses.g_loss(loss, swapped)                      # G: its images scored high
    logits = torch.zeros(4, requires_grad=True)
    gankit.losses.g_loss(loss, logits).backward()
    assert (logits.grad < 0).all()                                                 # G's loss falls as D's score rises
    assert torch.isfinite(torch.tensor(list(one_step(tiny(loss=loss)).values()))).all()


@pytest.mark.parametrize("cond", sorted(gankit.registry.CONDITIONINGS))
def test_every_conditioning_trains_and_its_generator_uses_labels_when_it_has_any(cond):
    cfg = tiny(arch="dcgan", cond=cond)
    G, D = gh.build_models(cfg)
    one_step(cfg, G, D)                  # conditional BatchNorm starts as plain BatchNorm: labels act after a step
    z = torch.randn(1, cfg.z_dim).expand(10, -1)       # one latent with each of the 10 labels
    with torch.no_grad(), gankit.device.eval_mode(G):
        images = G(z, torch.arange(10))
    uses_labels = gankit.registry.CONDITIONINGS[cond].g_cbn or gankit.registry.CONDITIONINGS[cond].g_input
    assert (not all(torch.equal(images[0], x) for x in images)) == uses_labels


@pytest.mark.parametrize("name", sorted(gankit.registry.AUGMENTS))
def test_every_augmentation_keeps_the_shape_passes_gradients_and_repeats_with_the_seed(name):
    x = (torch.rand(4, 3, 16, 16) * 2 - 1).requires_grad_()
    torch.manual_seed(0)
    a = gankit.augment.diff_augment(x, name)
    torch.manual_seed(0)
    assert torch.equal(a, gankit.augment.diff_augment(x, name)) and a.shape == x.shape
    a.sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()
    d_real = {}                                  # D's mean score of the same real batch, augmented or not
    for policy in (name, "none"):
        cfg = tiny(diffaug=policy)
        gh.setup(0)
        G, D = gh.build_models(cfg)
        gh.setup(1)
        d_real[policy] = float(one_step(cfg, G, D)["d_real"])
    assert math.isfinite(d_real[name]) and d_real[name] != pytest.approx(d_real["none"], rel=1e-4)


def write_tree(root: Path, classes=("cat", "dog"), per_class: int = 12) -> None:
    images = gh.synthetic_images(2 * len(classes) * per_class, num_classes=len(classes))
    for part, half in (("train", slice(0, len(images) // 2)), ("test", slice(len(images) // 2, None))):
        part_images = images.subset(torch.arange(len(images))[half])
        for c, name in enumerate(classes):
            picked = part_images.x[part_images.y == c]
            gh.save_pngs(gh.to_float(picked), root / part / name, [f"{i:03d}" for i in range(len(picked))])


@pytest.mark.parametrize("dataset", sorted(gankit.registry.DATASETS))
def test_every_dataset_reads_a_train_test_tree_into_a_recorded_split(dataset, tmp_path):
    write_tree(tmp_path)
    cfg = gh.Config(dataset=dataset, val_size=4, img_size=64)
    train, val, test = gh.load_dataset(cfg, tmp_path, ("train", "val", "test"))
    assert (len(train), len(val), len(test)) == (20, 4, 24)
    assert train.x.shape[1:] == (3, 64, 64) and train.classes == ("cat", "dog")
    assert {s.split["dataset"] for s in (train, val, test)} == {dataset}


def test_every_metric_is_computed_printed_and_tabulated():
    G, _ = gh.build_models(tiny())
    net = gh.load_feature_net(gh.RandomFeatures(), classifier=gh.random_classifier())
    test = gh.synthetic_images(40)
    real = gankit.features.Stats.of(net.features(test.x))
    s = gh.sample_and_score(G.eval(), real, net, 40, seed=0, test=test)
    images = gankit.data.to_uint8(gh.sample(G, 40))
    ctx = gankit.measures.ScoreContext(images, gankit.sampling.latents(G, 40)[1], net.outputs(images), real, net, 10, test)
    for name, metric in gankit.registry.METRICS.items():
        assert set(metric.compute(ctx)) <= set(s), name              # every measure's entries are in the score
        assert metric.column[1](s) != "-", name                      # and in its column of the table
    line, table = gh.format_score(s), gh.score_table({"tiny": s})
    assert all(metric.text(s) is None or metric.text(s) in line for metric in gankit.registry.METRICS.values())
    assert table.splitlines()[0].count("|") == len(gankit.registry.METRICS) + 2
