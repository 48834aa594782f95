"""What a GAN study measures beyond FID: Inception Score (formula, and from the Inception pass against
independent implementations), class accuracy, diversity and nearest-neighbour measures, validation losses
and snapshots logged by train(), interpolation, and loss plots of short runs."""
import json
import math
from pathlib import Path
from unittest import mock

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.testing import assert_close

import gan_helpers as gh


def tiny(**overrides) -> gh.Config:
    return gh.Config.sagan(**{**dict(g_ch=16, d_ch=16, batch_size=8, iters=4, eval_every=2, eval_samples=40,
                                     checkpoint_every=2, ema_start=1), **overrides})


def numpy_is(logits: np.ndarray, splits: int) -> tuple[float, float]:
    """The original TF code's inception_score() (improved-gan), in NumPy on softmax predictions."""
    preds = np.exp(logits - logits.max(1, keepdims=True))
    preds /= preds.sum(1, keepdims=True)
    scores = []
    for i in range(splits):
        part = preds[i * len(preds) // splits:(i + 1) * len(preds) // splits]
        kl = part * (np.log(part) - np.log(part.mean(0, keepdims=True)))
        scores.append(np.exp(kl.sum(1).mean()))
    return float(np.mean(scores)), float(np.std(scores))


class LookupClassifier(nn.Module):
    """Always right: finds each image (N, 3, 32, 32) in [0, 1] among `images` (uint8) and returns a one-hot
    logit of its label, shifted by `shift` classes (shift 1: always wrong)."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, num_classes: int = 10, shift: int = 0):
        super().__init__()
        self.keys = {bytes(x.numpy().tobytes()): int(y) for x, y in zip(images, labels)}
        self.k, self.shift = num_classes, shift

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        keys = [bytes(img.numpy().tobytes()) for img in x.mul(255).round().to(torch.uint8)]
        return F.one_hot((torch.tensor([self.keys[k] for k in keys]) + self.shift) % self.k, self.k).float() * 20


# ---------------------------------------------------------------------------------------------- Inception Score

def test_inception_score_equals_a_hand_computation():
    p = np.array([[0.9, 0.1], [0.1, 0.9]])                      # p(y) = (0.5, 0.5)
    kl = 0.9 * math.log(0.9 / 0.5) + 0.1 * math.log(0.1 / 0.5)  # the same for both samples
    assert gh.inception_score(np.log(p), splits=1) == pytest.approx((math.exp(kl), 0.0), rel=1e-12)
    # two splits: each holds one sample, whose own mean prediction is itself: KL 0, score 1
    assert gh.inception_score(np.log(p), splits=2) == pytest.approx((1.0, 0.0))


def test_inception_score_matches_the_original_formula_on_random_logits():
    logits = np.random.default_rng(0).normal(scale=3.0, size=(1000, 12))
    assert gh.inception_score(logits) == pytest.approx(numpy_is(logits, 10), rel=1e-10)


def test_inception_score_is_num_classes_for_even_confident_predictions_and_1_for_constant_ones():
    confident = 60.0 * np.eye(10)[np.arange(1000) % 10]        # one-hot logits, every class equally often
    mean, std = gh.inception_score(confident)
    assert mean == pytest.approx(10.0, rel=1e-9) and std == pytest.approx(0.0, abs=1e-9)
    constant = np.tile(np.random.default_rng(1).normal(size=(1, 10)), (1000, 1))
    assert gh.inception_score(constant) == pytest.approx((1.0, 0.0), abs=1e-12)


def test_inception_score_needs_a_sample_per_split():
    with pytest.raises(gh.GanError, match="at least 10 samples"):
        gh.inception_score(np.zeros((5, 3)))


def test_inception_score_agrees_with_torch_fidelity_formula():
    tf = pytest.importorskip("torch_fidelity.metric_isc")
    logits = np.random.default_rng(2).normal(scale=4.0, size=(500, 1008))
    theirs = tf.isc_features_to_metric(torch.from_numpy(logits), splits=10, shuffle=False)
    assert gh.inception_score(logits) == pytest.approx(
        (theirs["inception_score_mean"], theirs["inception_score_std"]), rel=1e-9)


@pytest.fixture(scope="module")
def inception_weights(random_inception_home, tmp_path_factory) -> Path:
    """pytorch-fid's Inception with random weights scaled so that activations neither vanish nor explode
    (He-normal convolutions, identity batch norms; the plain random state dict gives features near 1e-8).
    A random deep network still maps all images to nearly one direction, so the tests compare the logits'
    differences between images too, and the IS of those differences spread out (spread())."""
    state = torch.load(random_inception_home / "hub" / "checkpoints" / gh.INCEPTION_WEIGHTS_FILE)
    gen = torch.Generator().manual_seed(0)
    for key, value in state.items():
        if key.endswith("conv.weight"):
            state[key] = torch.randn(value.shape, generator=gen) * math.sqrt(2 / value[0].numel())
        elif key.endswith(("running_var", "bn.weight")):
            state[key] = torch.ones_like(value)
        elif key.endswith(("running_mean", "bn.bias")):
            state[key] = torch.zeros_like(value)
    state["fc.weight"] = torch.randn(state["fc.weight"].shape, generator=gen) * 3 / math.sqrt(2048)
    path = tmp_path_factory.mktemp("inception") / gh.INCEPTION_WEIGHTS_FILE
    torch.save(state, path)
    return path


@pytest.fixture(scope="module")
def inception_run(inception_weights) -> tuple[gh.FeatureNet, torch.Tensor, gh.NetOutputs]:
    """Our Inception FeatureNet, 4 uint8 images at 299x299 (Inception's own size, so no implementation
    resizes them) and our outputs for them (one pass, batches of 3)."""
    net = gh.load_feature_net(None, fid_weights=inception_weights, classifier="none")
    x = gh.to_float(gh.synthetic_images(4, seed=3).x)
    images = gh.to_uint8(F.interpolate(x, size=(299, 299), mode="bilinear", align_corners=False))
    return net, images, net.outputs(images, batch_size=3)


def spread(logits: np.ndarray | torch.Tensor) -> np.ndarray:
    """Logits minus their mean over the images, scaled to a std of 4: predictions that differ between
    images, so that an IS computed from them is clearly above 1."""
    centred = np.asarray(logits, dtype=np.float64) - np.asarray(logits, dtype=np.float64).mean(0)
    return 4 * centred / centred.std()


def test_inception_pass_gives_pool_features_and_unbiased_logits_of_torchvisions_forward(inception_run,
                                                                                      inception_weights):
    """One pass of our wrapper vs pytorch-fid's full torchvision Inception3 on the same random weights:
    its forward gives fc(pool3) with the bias; the IS logits are the same without it."""
    import pytorch_fid.inception as pfi
    net, images, out = inception_run
    with mock.patch.object(pfi, "load_state_dict_from_url", lambda *a, **k: torch.load(inception_weights)):
        full = pfi.fid_inception_v3().eval()
    with torch.no_grad():
        unbiased = full(images.float() / 127.5 - 1).double() - full.fc.bias.double()  # pytorch-fid's 2x - 1
    assert out.features.shape == (4, 2048) and out.is_logits.shape == (4, 1008)
    assert_close(torch.from_numpy(out.is_logits), unbiased, rtol=1e-4, atol=1e-4)
    assert_close(torch.from_numpy(spread(out.is_logits)), torch.from_numpy(spread(unbiased)), rtol=1e-3, atol=1e-3)
    ours = gh.inception_score(spread(out.is_logits), splits=2)
    assert ours == pytest.approx(numpy_is(spread(unbiased), 2), rel=1e-4)
    assert ours[0] > 1.1                                          # the comparison is not between two 1s
    assert net.is_label == "IS" and net.label == "FID"


def test_inception_score_agrees_with_torch_fidelity_on_random_weights(inception_run, inception_weights):
    fe = pytest.importorskip("torch_fidelity.feature_extractor_inceptionv3")
    _, images, ours = inception_run
    theirs = fe.FeatureExtractorInceptionV3("inception-v3-compat", ["2048", "logits_unbiased"],
                                            feature_extractor_weights_path=str(inception_weights))
    with torch.no_grad():
        pool, logits = theirs(images)
    # torch-fidelity scales pixels by (x - 128) / 128, pytorch-fid by x / 127.5 - 1: inputs differ by 0.4 %
    assert_close(torch.from_numpy(ours.features).float(), pool, rtol=0.02, atol=0.01)
    (mean, std), (their_mean, their_std) = gh.inception_score(spread(ours.is_logits), splits=2), \
        numpy_is(spread(logits), 2)
    assert mean == pytest.approx(their_mean, rel=0.01) and std == pytest.approx(their_std, abs=0.02)
    assert mean > 1.1


def test_proxy_is_and_class_accuracy_come_from_the_classifier():
    net = gh.load_feature_net(gh.RandomFeatures(), classifier=gh.random_classifier())
    images = gh.synthetic_images(30).x
    out = net.outputs(images, batch_size=7)
    direct = gh.random_classifier()(images.float() / 255).detach().double().numpy()
    assert_close(torch.from_numpy(out.is_logits), torch.from_numpy(direct))
    assert_close(torch.from_numpy(out.class_logits), torch.from_numpy(direct))
    assert net.is_label == "IS (proxy: Sequential)" and net.class_label.startswith("class accuracy (proxy")
    assert gh.load_feature_net(gh.RandomFeatures(), classifier="none").outputs(images).is_logits is None


def test_missing_classifier_file_is_one_clear_error(tmp_path):
    with pytest.raises(gh.GanError, match="classifier .*missing.pt not found"):
        gh.load_feature_net(gh.RandomFeatures(), classifier=tmp_path / "missing.pt")


# ---------------------------------------------------------------------------------------------- class accuracy

def test_class_accuracy_is_1_with_an_always_right_classifier_on_real_images():
    real = gh.synthetic_images(60, seed=4)
    right = gh.load_feature_net(gh.RandomFeatures(), classifier=LookupClassifier(real.x, real.y))
    acc = gh.class_accuracy(right.class_logits(real.x), real.y, 10)
    assert acc == {"overall": 1.0, "per_class": [1.0] * 10}
    wrong = gh.load_feature_net(gh.RandomFeatures(), classifier=LookupClassifier(real.x, real.y, shift=1))
    assert gh.class_accuracy(wrong.class_logits(real.x), real.y, 10)["overall"] == 0.0


def test_class_accuracy_of_samples_counts_the_label_they_were_generated_for():
    G, _ = gh.build_models(tiny())
    images = gh.to_uint8(gh.sample(G, 40, seed=12345))
    _, labels = gh.latents(G, 40, seed=12345)
    real = gh.Stats.of(np.random.default_rng(0).normal(size=(50, 64)))
    for shift, expected in ((0, 1.0), (3, 0.0)):
        net = gh.load_feature_net(gh.RandomFeatures(), classifier=LookupClassifier(images, labels, shift=shift))
        result = gh.evaluate_generator(G, real, net, 40)
        assert result["class_acc"] == expected and result["class_acc_per_class"] == [expected] * 10


def test_class_accuracy_per_class_and_a_classifier_of_other_classes():
    logits = np.eye(3)[[0, 1, 2, 2]]
    acc = gh.class_accuracy(logits, np.array([0, 1, 1, 2]), 3)
    assert acc["overall"] == 0.75 and acc["per_class"] == [1.0, 0.5, 1.0]
    with pytest.raises(gh.GanError, match="gives 3 classes but the images have 10"):
        gh.class_accuracy(logits, np.array([0, 1, 1, 2]), 10)


# ---------------------------------------------------------------------------------------------- diversity

def test_duplicate_measure_flags_an_exact_copy_set():
    rng = np.random.default_rng(5)
    real, labels = rng.normal(size=(200, 16)), np.arange(200) % 4
    copies = np.repeat(real[::10], 10, axis=0)                   # 20 distinct images, each 10 times
    copy_labels = np.repeat(labels[::10], 10)
    d = gh.diversity(copies, copy_labels, real, labels)
    fresh = gh.diversity(rng.normal(size=(200, 16)), labels, real, labels)
    # per class 50 samples = 5 distinct x 10 copies: 5 * 45 of the 1225 pairs are exact copies
    assert d["dup_fake"] == pytest.approx(5 * 45 / 1225) and d["dup_real"] == 0.0
    assert fresh["dup_fake"] == 0.0 and fresh["dist_fake"] == pytest.approx(fresh["dist_real"], rel=0.05)
    assert d["dist_fake"] < d["dist_real"]
    one = gh.diversity(np.repeat(real[:1], 30, axis=0), None, real, None)
    assert one["dup_fake"] == 1.0 and one["dist_fake"] == 0.0 and one["classes"] == [0]


def test_mean_pair_distance_is_the_hand_value():
    pts = np.array([[0.0, 0.0], [3.0, 4.0], [0.0, 8.0]])        # distances 5, 8, 5
    d = gh.diversity(pts, None, pts, None)
    assert d["dist_fake"] == pytest.approx(6.0) and d["dist_real"] == pytest.approx(6.0)


def test_nearest_neighbour_ratio_of_a_copy_set_is_0_and_of_a_reshuffle_is_1():
    real = gh.synthetic_images(80, seed=6).x
    x = real.flatten(1).float() / 255
    nearest = torch.cdist(x, x).fill_diagonal_(float("inf")).min(1).values.median()
    assert gh.median_nearest_neighbour(real, chunk=7) == pytest.approx(float(nearest), rel=1e-5)
    # (cdist's matrix-product form leaves float32 rounding in a zero distance)
    assert gh.nearest_neighbour_ratio(torch.cat([real[:40], real[:40]]), real) == pytest.approx(0.0, abs=0.01)
    assert gh.nearest_neighbour_ratio(real.flip(0), real) == pytest.approx(1.0)


# ---------------------------------------------------------------------------------------------- training logs

@pytest.fixture(scope="module")
def short_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    train_data, val_data = gh.train_val_split(gh.synthetic_images(300), val_size=60)
    features = gh.load_feature_net(gh.RandomFeatures(), classifier=gh.random_classifier())
    cfg = tiny()
    history = gh.train(cfg, out, train_data, val_data, features, progress=False)
    return cfg, out, history, train_data, val_data


def test_every_evaluation_logs_is_class_accuracy_and_validation_losses(short_run):
    cfg, out, history, train_data, val_data = short_run
    assert [e["iter"] for e in history["eval"]] == [0, 2, 4]
    for e in history["eval"]:
        assert 1.0 <= e["is"] <= 10.0 and e["is_metric"] == "IS (proxy: Sequential)"
        assert 0.0 <= e["class_acc"] <= 1.0 and len(e["class_acc_per_class"]) == 10
        assert all(math.isfinite(e[k]) for k in ("d_loss_val", "d_loss_train", "d_real_val", "d_real_train"))
    assert json.loads((out / "history.json").read_text())["eval"] == history["eval"]
    # the last entry is what validation_losses gives for the saved G and D on the same images
    state = gh.load_checkpoint(out / "last.pt")
    G, D = gh.build_models(cfg)
    G.load_state_dict(state["G"])
    D.load_state_dict(state["D"])
    again = gh.validation_losses(cfg, D, G, train_data, val_data)
    assert {k: history["eval"][-1][k] for k in again} == pytest.approx(again, rel=1e-6)
    assert again["d_loss_val"] == pytest.approx(gh.d_loss(cfg.loss, torch.tensor([again["d_real_val"]]),
                                                          torch.tensor([again["d_fake_eval"]])).item(), rel=1e-5)


def test_snapshots_are_the_fixed_latents_at_every_evaluation(short_run):
    _, out, _, _, _ = short_run
    assert sorted(gh.snapshots(out)) == [0, 2, 4]
    from PIL import Image
    with Image.open(gh.snapshot_path(out, 4)) as im:
        saved = np.asarray(im)
    G = gh.load_generator(out / "last.pt")                       # the EMA generator evaluated at iteration 4
    np.testing.assert_array_equal(saved, gh.image_grid(gh.sample(G, 64, seed=0)))
    import matplotlib
    matplotlib.use("Agg")
    fig = gh.snapshot_strip(out, [0, 5])
    assert [ax.get_title() for ax in fig.axes] == ["iteration 0", "iteration 4"]   # the nearest ones
    assert gh.snapshot_slider(out).children[0].options == (("0", 0), ("2", 2), ("4", 4))


def test_scores_plot_and_a_run_shorter_than_the_window_draws_its_curves(short_run):
    import matplotlib
    matplotlib.use("Agg")
    _, _, history, _, _ = short_run
    fig = gh.plot_losses(history, window=100)
    lines = {line.get_label(): len(line.get_xdata()) for line in fig.axes[0].lines}
    assert lines["D"] == lines["G"] == 4                          # every iteration, though 4 < 100
    assert lines["D, validation images (eval)"] == 3
    fig = gh.plot_scores({"run": history})
    assert [len(ax.lines[0].get_xdata()) for ax in fig.axes] == [3, 3]


# ---------------------------------------------------------------------------------------------- interpolation

@pytest.fixture(scope="module")
def conditional_G() -> nn.Module:
    G, _ = gh.build_models(tiny())
    torch.manual_seed(0)
    for m in G.modules():                                        # classes that differ, unlike at initialisation
        if isinstance(m, gh.ConditionalBatchNorm):
            nn.init.normal_(m.gain.weight, 1.0, 0.5)
            nn.init.normal_(m.bias.weight, 0.0, 0.5)
    return G


def test_interpolation_endpoints_reproduce_the_two_samples(conditional_G):
    G = conditional_G
    within = gh.interpolate_latents(G, (3, 4), label=2, steps=5)
    assert_close(within[0], gh.sample(G, 1, labels=2, seed=3)[0])
    assert_close(within[-1], gh.sample(G, 1, labels=2, seed=4)[0])
    between = gh.interpolate_classes(G, (2, 5), seed=7, steps=5)
    assert_close(between[0], gh.sample(G, 1, labels=2, seed=7)[0])
    assert_close(between[-1], gh.sample(G, 1, labels=5, seed=7)[0])
    assert (between[2] - between[0]).abs().max() > 0.01          # the middle is neither end


def test_slerp_keeps_the_norm_and_soft_labels_mix_the_conditioning():
    z0, z1 = torch.randn(2, 64, generator=torch.Generator().manual_seed(0))
    z1 = z1 / z1.norm() * z0.norm()
    path = gh.slerp(z0, z1, torch.linspace(0, 1, 7))
    assert_close(path.norm(dim=1), z0.norm().expand(7))
    assert_close(path[[0, -1]], torch.stack([z0, z1]))
    cbn = gh.ConditionalBatchNorm(4, 3).eval()
    nn.init.normal_(cbn.gain.weight)
    x = torch.randn(2, 4, 5, 5)
    soft = torch.tensor([[0.25, 0.75, 0.0]]).expand(2, 3)
    mixed = 0.25 * cbn(x, torch.tensor([0, 0])) + 0.75 * cbn(x, torch.tensor([1, 1]))
    assert_close(cbn(x, soft), mixed)


def test_interpolation_figure_has_a_row_per_interpolation(conditional_G):
    import matplotlib
    matplotlib.use("Agg")
    fig = gh.interpolation_figure(conditional_G, within=(0, 1), between=((2, 3),), steps=4)
    assert [ax.get_title() for ax in fig.axes] == ["airplane: latent 0 -> 1", "automobile: latent 0 -> 1",
                                                    "latent 0: bird -> cat"]
    with pytest.raises(gh.GanError, match="class indices"):
        gh.interpolate_classes(conditional_G, (0, 12))


def test_class_rows_are_labelled_with_their_class_at_each_row_centre(conditional_G):
    import matplotlib
    matplotlib.use("Agg")
    ax = gh.show_class_rows(conditional_G, [3, 0, 8], per_class=4, title="G")
    image = ax.get_images()[0].get_array()
    assert image.shape[:2] == (2 + 3 * 34, 2 + 4 * 34)           # 32-pixel images, 2-pixel padding
    assert [t.get_text() for t in ax.get_yticklabels()] == ["cat", "airplane", "ship"]
    assert list(ax.get_yticks()) == [18.0, 52.0, 86.0] and list(ax.get_xticks()) == []
    ax = gh.show_class_rows(conditional_G, [1], per_class=2, names=tuple("abcdefghij"))
    assert [t.get_text() for t in ax.get_yticklabels()] == ["b"]
    assert gh.class_names(conditional_G) == gh.CIFAR10_CLASSES
