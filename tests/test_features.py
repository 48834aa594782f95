"""Feature networks: batch-size independence, pytorch-fid's Inception (CLI agreement, missing weights, pool features and logits), half-precision features."""
import math
import subprocess
import sys
from pathlib import Path
from unittest import mock

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from helpers import numpy_is
from torch.testing import assert_close

import gan_helpers as gh
import gankit

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def features() -> gankit.features.FeatureNet:
    return gh.load_feature_net(gh.RandomFeatures())


@pytest.fixture(scope="module")
def inception_weights(random_inception_home, tmp_path_factory) -> Path:
    """pytorch-fid's Inception with random weights scaled so that activations neither vanish nor explode
    (He-normal convolutions, identity batch norms; the plain random state dict gives features near 1e-8).
    A random deep network still maps all images to nearly one direction, so the tests compare the logits'
    differences between images too, and the IS of those differences spread out (spread())."""
    state = torch.load(random_inception_home / "hub" / "checkpoints" / gankit.features.INCEPTION_WEIGHTS_FILE)
    gen = torch.Generator().manual_seed(0)
    for key, value in state.items():
        if key.endswith("conv.weight"):
            state[key] = torch.randn(value.shape, generator=gen) * math.sqrt(2 / value[0].numel())
        elif key.endswith(("running_var", "bn.weight")):
            state[key] = torch.ones_like(value)
        elif key.endswith(("running_mean", "bn.bias")):
            state[key] = torch.zeros_like(value)
    state["fc.weight"] = torch.randn(state["fc.weight"].shape, generator=gen) * 3 / math.sqrt(2048)
    path = tmp_path_factory.mktemp("inception") / gankit.features.INCEPTION_WEIGHTS_FILE
    torch.save(state, path)
    return path


@pytest.fixture(scope="module")
def inception_run(inception_weights) -> tuple[gankit.features.FeatureNet, torch.Tensor, gankit.features.NetOutputs]:
    """Our Inception FeatureNet, 4 uint8 images at 299x299 (Inception's own size, so no implementation
    resizes them) and our outputs for them (one pass, batches of 3)."""
    net = gh.load_feature_net(None, fid_weights=inception_weights, classifier="none")
    x = gh.to_float(gh.synthetic_images(4, seed=3).x)
    images = gankit.data.to_uint8(F.interpolate(x, size=(299, 299), mode="bilinear", align_corners=False))
    return net, images, net.outputs(images, batch_size=3)


def spread(logits: np.ndarray | torch.Tensor) -> np.ndarray:
    """Logits minus their mean over the images, scaled to a std of 4: predictions that differ between
    images, so that an IS computed from them is clearly above 1."""
    centred = np.asarray(logits, dtype=np.float64) - np.asarray(logits, dtype=np.float64).mean(0)
    return 4 * centred / centred.std()


def test_features_do_not_depend_on_batch_size(features):
    images = gh.synthetic_images(30).x
    torch.testing.assert_close(torch.from_numpy(features.features(images, batch_size=7)),
                               torch.from_numpy(features.features(images, batch_size=30)), rtol=1e-5, atol=1e-6)


@pytest.mark.slow
def test_fid_cli_equals_pytorch_fid_cli(tmp_path, inception_weights):
    """`gan_helpers.py fid` and `python -m pytorch_fid` on the same two folders and the same (scaled random) weights:
    the same FID, and one clearly above zero (weights whose features vanish would give 0 = 0)."""
    home = tmp_path / "torch_home"
    (home / "hub" / "checkpoints").mkdir(parents=True)
    (home / "hub" / "checkpoints" / inception_weights.name).symlink_to(inception_weights)
    a, b = gh.synthetic_images(24, seed=1), gh.synthetic_images(24, seed=2)
    gh.save_pngs(gh.to_float(a.x), tmp_path / "a", [f"{i:03d}" for i in range(24)])
    gh.save_pngs(gh.to_float(b.x).flip(3), tmp_path / "b", [f"{i:03d}" for i in range(24)])
    env = {"TORCH_HOME": str(home), "PATH": "", "PYTHONPATH": str(ROOT)}
    folders = [str(tmp_path / "a"), str(tmp_path / "b")]
    theirs, ours = (subprocess.run(argv, capture_output=True, text=True, env=env, check=True).stdout
                    for argv in ([sys.executable, "-m", "pytorch_fid", *folders, "--device", "cpu", "--num-workers", "0"],
                                 [sys.executable, str(ROOT / "gan_helpers.py"), "fid", *folders, "--device", "cpu"]))
    their_fid = float(theirs.split("FID:")[1].split()[0])
    assert ours.startswith("FID: ")
    assert their_fid > 0.1
    assert float(ours.split()[1]) == pytest.approx(their_fid, rel=1e-3)


def test_missing_inception_weights_name_the_options(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    import pytorch_fid.inception as pfi
    with mock.patch.object(pfi, "load_state_dict_from_url", side_effect=OSError("network unreachable")):
        with pytest.raises(gh.GanError, match="--fid-weights.*--feature-net"):
            gh.load_feature_net(None)


def test_half_precision_features_keep_the_distance_within_0_1_percent():
    a, b = gh.synthetic_images(100, seed=1).x, gh.synthetic_images(100, seed=2).x.flip(3)
    fd = {}
    for half in (False, True):
        net = gh.load_feature_net(gh.RandomFeatures(), half=half)
        sa, sb = gankit.features.Stats.of(net.features(a)), gankit.features.Stats.of(net.features(b))
        fd[half] = gankit.measures.frechet_distance(sa.mu, sa.sigma, sb.mu, sb.sigma)
    assert fd[True] != fd[False]                                  # the half path really ran in float16
    assert fd[True] == pytest.approx(fd[False], rel=1e-3)


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
    ours = gankit.measures.inception_score(spread(out.is_logits), splits=2)
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
    (mean, std), (their_mean, their_std) = gankit.measures.inception_score(spread(ours.is_logits), splits=2), \
        numpy_is(spread(logits), 2)
    assert mean == pytest.approx(their_mean, rel=0.01) and std == pytest.approx(their_std, abs=0.02)
    assert mean > 1.1
