"""Frechet distance and KID (closed forms, pytorch-fid), the Inception Score (hand, torch-fidelity), class accuracy, diversity,
nearest-neighbour measures, and precision / recall / density / coverage (hand, invariances, prdc)."""
import math

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from helpers import numpy_is, tiny
from torch.testing import assert_close

import gan_helpers as gh
import gankit


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


def test_frechet_distance_of_a_set_with_itself_is_zero():
    feats = np.random.default_rng(0).normal(size=(500, 8))
    s = gankit.features.Stats.of(feats)
    assert gankit.measures.frechet_distance(s.mu, s.sigma, s.mu, s.sigma) == pytest.approx(0.0, abs=1e-9)


def test_frechet_distance_matches_closed_form_for_diagonal_gaussians():
    mu1, mu2 = np.array([0.0, 1.0, 2.0]), np.array([1.0, -1.0, 0.5])
    v1, v2 = np.array([1.0, 4.0, 0.25]), np.array([9.0, 1.0, 0.25])
    expected = ((mu1 - mu2) ** 2).sum() + ((np.sqrt(v1) - np.sqrt(v2)) ** 2).sum()
    assert gankit.measures.frechet_distance(mu1, np.diag(v1), mu2, np.diag(v2)) == pytest.approx(expected, rel=1e-10)


def test_frechet_distance_equal_covariances_is_squared_mean_difference():
    rng = np.random.default_rng(1)
    a = rng.normal(size=(6, 6))
    sigma = a @ a.T
    mu1, mu2 = rng.normal(size=6), rng.normal(size=6)
    assert gankit.measures.frechet_distance(mu1, sigma, mu2, sigma) == pytest.approx(((mu1 - mu2) ** 2).sum(), rel=1e-6)


def test_frechet_distance_agrees_with_pytorch_fid_on_random_covariances():
    from pytorch_fid.fid_score import calculate_frechet_distance
    rng = np.random.default_rng(2)
    f1, f2 = rng.normal(size=(400, 32)), rng.normal(size=(400, 32)) * 1.3 + 0.2
    s1, s2 = gankit.features.Stats.of(f1), gankit.features.Stats.of(f2)
    ours = gankit.measures.frechet_distance(s1.mu, s1.sigma, s2.mu, s2.sigma)
    assert ours == pytest.approx(calculate_frechet_distance(s1.mu, s1.sigma, s2.mu, s2.sigma), rel=1e-6)


def test_kid_is_near_zero_for_one_distribution_and_positive_for_a_shift():
    rng = np.random.default_rng(3)
    same, same_std = gankit.measures.kernel_inception_distance(rng.normal(size=(600, 16)), rng.normal(size=(600, 16)),
                                                  subsets=20, subset_size=300)
    shifted, _ = gankit.measures.kernel_inception_distance(rng.normal(size=(600, 16)), rng.normal(size=(600, 16)) + 0.5,
                                              subsets=20, subset_size=300)
    assert abs(same) < 3 * same_std + 1e-3
    assert shifted > 20 * max(abs(same), 1e-4)


def test_inception_score_equals_a_hand_computation():
    p = np.array([[0.9, 0.1], [0.1, 0.9]])                      # p(y) = (0.5, 0.5)
    kl = 0.9 * math.log(0.9 / 0.5) + 0.1 * math.log(0.1 / 0.5)  # the same for both samples
    assert gankit.measures.inception_score(np.log(p), splits=1) == pytest.approx((math.exp(kl), 0.0), rel=1e-12)
    # two splits: each holds one sample, whose own mean prediction is itself: KL 0, score 1
    assert gankit.measures.inception_score(np.log(p), splits=2) == pytest.approx((1.0, 0.0))


def test_inception_score_matches_the_original_formula_on_random_logits():
    logits = np.random.default_rng(0).normal(scale=3.0, size=(1000, 12))
    assert gankit.measures.inception_score(logits) == pytest.approx(numpy_is(logits, 10), rel=1e-10)


def test_inception_score_is_num_classes_for_even_confident_predictions_and_1_for_constant_ones():
    confident = 60.0 * np.eye(10)[np.arange(1000) % 10]        # one-hot logits, every class equally often
    mean, std = gankit.measures.inception_score(confident)
    assert mean == pytest.approx(10.0, rel=1e-9) and std == pytest.approx(0.0, abs=1e-9)
    constant = np.tile(np.random.default_rng(1).normal(size=(1, 10)), (1000, 1))
    assert gankit.measures.inception_score(constant) == pytest.approx((1.0, 0.0), abs=1e-12)


def test_inception_score_needs_a_sample_per_split():
    with pytest.raises(gh.GanError, match="at least 10 samples"):
        gankit.measures.inception_score(np.zeros((5, 3)))


def test_inception_score_agrees_with_torch_fidelity_formula():
    tf = pytest.importorskip("torch_fidelity.metric_isc")
    logits = np.random.default_rng(2).normal(scale=4.0, size=(500, 1008))
    theirs = tf.isc_features_to_metric(torch.from_numpy(logits), splits=10, shuffle=False)
    assert gankit.measures.inception_score(logits) == pytest.approx(
        (theirs["inception_score_mean"], theirs["inception_score_std"]), rel=1e-9)


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


def test_class_accuracy_is_1_with_an_always_right_classifier_on_real_images():
    real = gh.synthetic_images(60, seed=4)
    right = gh.load_feature_net(gh.RandomFeatures(), classifier=LookupClassifier(real.x, real.y))
    acc = gankit.measures.class_accuracy(right.class_logits(real.x), real.y, 10)
    assert acc == {"overall": 1.0, "per_class": [1.0] * 10}
    wrong = gh.load_feature_net(gh.RandomFeatures(), classifier=LookupClassifier(real.x, real.y, shift=1))
    assert gankit.measures.class_accuracy(wrong.class_logits(real.x), real.y, 10)["overall"] == 0.0


def test_class_accuracy_of_samples_counts_the_label_they_were_generated_for():
    G, _ = gh.build_models(tiny())
    images = gankit.data.to_uint8(gh.sample(G, 40, seed=12345))
    _, labels = gankit.sampling.latents(G, 40, seed=12345)
    real = gankit.features.Stats.of(np.random.default_rng(0).normal(size=(50, 64)))
    for shift, expected in ((0, 1.0), (3, 0.0)):
        net = gh.load_feature_net(gh.RandomFeatures(), classifier=LookupClassifier(images, labels, shift=shift))
        result = gh.evaluate_generator(G, real, net, 40)
        assert result["class_acc"] == expected and result["class_acc_per_class"] == [expected] * 10


def test_class_accuracy_per_class_and_a_classifier_of_other_classes():
    logits = np.eye(3)[[0, 1, 2, 2]]
    acc = gankit.measures.class_accuracy(logits, np.array([0, 1, 1, 2]), 3)
    assert acc["overall"] == 0.75 and acc["per_class"] == [1.0, 0.5, 1.0]
    with pytest.raises(gh.GanError, match="gives 3 classes but the images have 10"):
        gankit.measures.class_accuracy(logits, np.array([0, 1, 1, 2]), 10)


def test_duplicate_measure_flags_an_exact_copy_set():
    rng = np.random.default_rng(5)
    real, labels = rng.normal(size=(200, 16)), np.arange(200) % 4
    copies = np.repeat(real[::10], 10, axis=0)                   # 20 distinct images, each 10 times
    copy_labels = np.repeat(labels[::10], 10)
    d = gankit.measures.diversity(copies, copy_labels, real, labels)
    fresh = gankit.measures.diversity(rng.normal(size=(200, 16)), labels, real, labels)
    # per class 50 samples = 5 distinct x 10 copies: 5 * 45 of the 1225 pairs are exact copies
    assert d["dup_fake"] == pytest.approx(5 * 45 / 1225) and d["dup_real"] == 0.0
    assert fresh["dup_fake"] == 0.0 and fresh["dist_fake"] == pytest.approx(fresh["dist_real"], rel=0.05)
    assert d["dist_fake"] < d["dist_real"]
    one = gankit.measures.diversity(np.repeat(real[:1], 30, axis=0), None, real, None)
    assert one["dup_fake"] == 1.0 and one["dist_fake"] == 0.0 and one["classes"] == [0]


def test_mean_pair_distance_is_the_hand_value():
    pts = np.array([[0.0, 0.0], [3.0, 4.0], [0.0, 8.0]])        # distances 5, 8, 5
    d = gankit.measures.diversity(pts, None, pts, None)
    assert d["dist_fake"] == pytest.approx(6.0) and d["dist_real"] == pytest.approx(6.0)


def test_nearest_neighbour_ratio_of_a_copy_set_is_0_and_of_a_reshuffle_is_1():
    real = gh.synthetic_images(80, seed=6).x
    x = real.flatten(1).float() / 255
    nearest = torch.cdist(x, x).fill_diagonal_(float("inf")).min(1).values.median()
    assert gankit.measures.median_nearest_neighbour(real, chunk=7) == pytest.approx(float(nearest), rel=1e-5)
    # (cdist's matrix-product form leaves float32 rounding in a zero distance)
    assert gankit.measures.nearest_neighbour_ratio(torch.cat([real[:40], real[:40]]), real) == pytest.approx(0.0, abs=0.01)
    assert gankit.measures.nearest_neighbour_ratio(real.flip(0), real) == pytest.approx(1.0)


def test_precision_recall_density_coverage_on_a_line_are_the_hand_values():
    real = np.arange(10.0)[:, None]                       # 0..9: k = 3 radii 3 at the ends, 2 inside
    fake = np.array([0.0, 1, 2, 3, 20, 21, 22, 23])[:, None]  # radii 3, 2, 2, 3 in each cluster of four
    radii = gankit.measures.knn_radii(torch.as_tensor(real), k=3)
    assert radii.tolist() == [3, 2, 2, 2, 2, 2, 2, 2, 2, 3]
    p = gankit.measures.precision_recall(real, fake, k=3)
    # precision: 0..3 lie in the real balls' union [-3, 12], 20..23 do not
    # density: 0, 1, 2, 3 lie in 3, 4, 5, 6 real balls (edges count): 18 / (3 * 8)
    # recall: the generated balls cover [-3, 6] and [17, 26]: real 0..6
    # coverage: real 0..5 have a sample within their radius (5: 2 from 3, radius 2), 6..9 do not
    assert p == {"precision": 0.5, "density": 0.75, "recall": 0.7, "coverage": 0.6, "k": 3}


def test_precision_recall_of_a_set_with_itself_and_with_roles_swapped():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(300, 8)), rng.normal(size=(200, 8)) + 0.5
    same = gankit.measures.precision_recall(a, a)
    assert (same["precision"], same["recall"], same["coverage"]) == (1.0, 1.0, 1.0)
    ab, ba = gankit.measures.precision_recall(a, b), gankit.measures.precision_recall(b, a)
    assert (ab["precision"], ab["recall"]) == (ba["recall"], ba["precision"])
    assert 0 < ab["precision"] < 1 and 0 < ab["recall"] < 1


def test_precision_recall_are_invariant_to_order_rigid_motion_scale_and_chunking():
    rng = np.random.default_rng(1)
    real, fake = rng.normal(size=(250, 6)), 1.3 * rng.normal(size=(180, 6)) + 0.3
    base = gankit.measures.precision_recall(real, fake)
    rotation, _ = np.linalg.qr(rng.normal(size=(6, 6)))
    moved = lambda x: 2.5 * x @ rotation + 7.0  # noqa: E731
    for r, f, chunk in ((real[::-1], fake[rng.permutation(180)], 1000), (moved(real), moved(fake), 1000), (real, fake, 7)):
        assert gankit.measures.precision_recall(r, f, chunk=chunk) == pytest.approx(base, abs=1e-12)


def test_precision_recall_agree_with_prdc():
    prdc = pytest.importorskip("prdc")
    rng = np.random.default_rng(2)
    real, fake = rng.normal(size=(400, 10)), 0.8 * rng.normal(size=(300, 10)) + 0.2
    ours = gankit.measures.precision_recall(real, fake, k=5)
    theirs = prdc.compute_prdc(real_features=real, fake_features=fake, nearest_k=5)
    assert {key: ours[key] for key in theirs} == pytest.approx(theirs, abs=1e-12)


def test_precision_recall_need_more_points_than_k():
    with pytest.raises(gh.GanError, match="need more than 3 real and generated images, got 10 real and 3"):
        gankit.measures.precision_recall(np.zeros((10, 2)), np.zeros((3, 2)))


def test_test_set_score_gives_precision_recall_and_the_real_vs_real_reference(tmp_path):
    G, _ = gh.build_models(tiny(val_size=10))
    for part, images in (("train", gh.synthetic_images(40, seed=1)), ("test", gh.synthetic_images(30, seed=2))):
        for c, name in enumerate(images.classes):
            chosen = images.y == c
            gh.save_pngs(gh.to_float(images.x[chosen]), tmp_path / part / name, [str(i) for i in range(int(chosen.sum()))])
    net = gh.load_feature_net(gh.RandomFeatures(), classifier=gh.random_classifier())
    s = gh.test_set_score(G.eval(), tmp_path, net, n=20, stats_dir=tmp_path / "stats")
    train, test = gankit.data.load_dataset(G.config, tmp_path, ("train", "test"))
    expected = gankit.measures.precision_recall(net.features(test.x), net.features(train.x[:20]))
    assert s["real_prdc"] == pytest.approx(expected, abs=1e-12)      # the first 20 of the 30 training images
    assert s["prdc"]["features"] == "proxy features" and 0 <= s["prdc"]["precision"] <= 1
    assert "precision" in gh.format_score(s) and "training images: precision" in gh.format_score(s)


def test_the_contrast_matched_ratio_ignores_contrast_and_brightness():
    """Generated images that are real ones with their contrast doubled round a shifted mean: the plain ratio
    doubles, the contrast-matched one is 1 (the set's mean and standard deviation are put back to the real
    images')."""
    real = torch.rand(60, 3, 8, 8, generator=torch.Generator().manual_seed(0)) * 0.5 + 0.25
    louder = (real - 0.5) * 2 + 0.55                                # floats, outside [0, 1] here and there
    assert gankit.measures.nearest_neighbour_ratio(louder, real) == pytest.approx(2.0, rel=1e-5)
    assert gankit.measures.nearest_neighbour_ratio(louder, real, match_contrast=True) == pytest.approx(1.0, rel=1e-5)
    as_uint8 = (real * 255).round().to(torch.uint8)                  # uint8 images are read as [0, 1]
    assert gankit.measures.nearest_neighbour_ratio(as_uint8, real) == pytest.approx(1.0, rel=1e-2)
