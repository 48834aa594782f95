"""Training and evaluation engine: FID maths, agreement with pytorch-fid, stats cache, checkpoints,
exact resume, NaN stop, command line, and a short run that learns."""
import hashlib
import json
import math
import shutil
import subprocess
import sys
from pathlib import Path
from unittest import mock

import numpy as np
import pytest
import torch
from torch.testing import assert_close

import gan_helpers as gh

ROOT = Path(__file__).resolve().parents[1]


def tiny(name: str = "sagan", **overrides) -> gh.Config:
    base = dict(g_ch=16, d_ch=16, batch_size=8, iters=4, eval_every=2, eval_samples=40, checkpoint_every=2,
                ema_start=1)
    preset = gh.Config.dcgan if name == "dcgan" else gh.Config.sagan
    return preset(**{**base, **overrides})


@pytest.fixture(scope="module")
def data() -> tuple[gh.ImageSet, gh.ImageSet]:
    return gh.train_val_split(gh.synthetic_images(300), val_size=60)


@pytest.fixture(scope="module")
def features() -> gh.FeatureNet:
    return gh.load_feature_net(gh.RandomFeatures())


# ---------------------------------------------------------------------------------------------- FID maths

def test_frechet_distance_of_a_set_with_itself_is_zero():
    feats = np.random.default_rng(0).normal(size=(500, 8))
    s = gh.Stats.of(feats)
    assert gh.frechet_distance(s.mu, s.sigma, s.mu, s.sigma) == pytest.approx(0.0, abs=1e-9)


def test_frechet_distance_matches_closed_form_for_diagonal_gaussians():
    mu1, mu2 = np.array([0.0, 1.0, 2.0]), np.array([1.0, -1.0, 0.5])
    v1, v2 = np.array([1.0, 4.0, 0.25]), np.array([9.0, 1.0, 0.25])
    expected = ((mu1 - mu2) ** 2).sum() + ((np.sqrt(v1) - np.sqrt(v2)) ** 2).sum()
    assert gh.frechet_distance(mu1, np.diag(v1), mu2, np.diag(v2)) == pytest.approx(expected, rel=1e-10)


def test_frechet_distance_equal_covariances_is_squared_mean_difference():
    rng = np.random.default_rng(1)
    a = rng.normal(size=(6, 6))
    sigma = a @ a.T
    mu1, mu2 = rng.normal(size=6), rng.normal(size=6)
    assert gh.frechet_distance(mu1, sigma, mu2, sigma) == pytest.approx(((mu1 - mu2) ** 2).sum(), rel=1e-6)


def test_frechet_distance_agrees_with_pytorch_fid_on_random_covariances():
    from pytorch_fid.fid_score import calculate_frechet_distance
    rng = np.random.default_rng(2)
    f1, f2 = rng.normal(size=(400, 32)), rng.normal(size=(400, 32)) * 1.3 + 0.2
    s1, s2 = gh.Stats.of(f1), gh.Stats.of(f2)
    ours = gh.frechet_distance(s1.mu, s1.sigma, s2.mu, s2.sigma)
    assert ours == pytest.approx(calculate_frechet_distance(s1.mu, s1.sigma, s2.mu, s2.sigma), rel=1e-6)


def test_kid_is_near_zero_for_one_distribution_and_positive_for_a_shift():
    rng = np.random.default_rng(3)
    same, same_std = gh.kernel_inception_distance(rng.normal(size=(600, 16)), rng.normal(size=(600, 16)),
                                                  subsets=20, subset_size=300)
    shifted, _ = gh.kernel_inception_distance(rng.normal(size=(600, 16)), rng.normal(size=(600, 16)) + 0.5,
                                              subsets=20, subset_size=300)
    assert abs(same) < 3 * same_std + 1e-3
    assert shifted > 20 * max(abs(same), 1e-4)


def test_features_do_not_depend_on_batch_size(features):
    images = gh.synthetic_images(30).x
    torch.testing.assert_close(torch.from_numpy(features.features(images, batch_size=7)),
                               torch.from_numpy(features.features(images, batch_size=30)), rtol=1e-5, atol=1e-6)


# ---------------------------------------------------------------------------------------------- pytorch-fid

def test_fid_cli_equals_pytorch_fid_cli(tmp_path, random_inception_home):
    a, b = gh.synthetic_images(24, seed=1), gh.synthetic_images(24, seed=2)
    gh.save_pngs(gh.to_float(a.x), tmp_path / "a", [f"{i:03d}" for i in range(24)])
    gh.save_pngs(gh.to_float(b.x).flip(3), tmp_path / "b", [f"{i:03d}" for i in range(24)])
    env = {"TORCH_HOME": str(random_inception_home), "PATH": "", "PYTHONPATH": str(ROOT)}
    theirs = subprocess.run([sys.executable, "-m", "pytorch_fid", str(tmp_path / "a"), str(tmp_path / "b"),
                             "--device", "cpu", "--num-workers", "0"],
                            capture_output=True, text=True, env=env, check=True).stdout
    ours = subprocess.run([sys.executable, str(ROOT / "gan_helpers.py"), "fid", str(tmp_path / "a"),
                           str(tmp_path / "b"), "--device", "cpu"], capture_output=True, text=True, env=env,
                          check=True).stdout
    their_fid = float(theirs.split("FID:")[1].split()[0])
    assert ours.startswith("FID: ")
    assert float(ours.split()[1]) == pytest.approx(their_fid, rel=1e-3)


def test_missing_inception_weights_name_the_options(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    import pytorch_fid.inception as pfi
    with mock.patch.object(pfi, "load_state_dict_from_url", side_effect=OSError("network unreachable")):
        with pytest.raises(gh.GanError, match="--fid-weights.*--feature-net"):
            gh.load_feature_net(None)


# ---------------------------------------------------------------------------------------------- data

def test_image_folder_tree_loads_with_labels(tmp_path):
    imgs = gh.synthetic_images(20, num_classes=2)
    for split in ("train", "test"):
        for c, name in enumerate(imgs.classes):
            sel = imgs.y == c
            gh.save_pngs(gh.to_float(imgs.x[sel]), tmp_path / split / name, [f"{i}" for i in range(int(sel.sum()))])
    loaded = gh.load_cifar10(tmp_path, train=False)
    assert loaded.x.shape == (20, 3, 32, 32) and loaded.x.dtype == torch.uint8
    assert loaded.classes == imgs.classes
    assert torch.equal(torch.bincount(loaded.y), torch.tensor([10, 10]))


def test_missing_data_and_failed_download_names_the_option(tmp_path):
    import torchvision
    with mock.patch.object(torchvision.datasets, "CIFAR10", side_effect=OSError("no network")):
        with pytest.raises(gh.GanError, match="--data-dir"):
            gh.load_cifar10(tmp_path / "nothing", train=True)


def test_split_is_fixed_and_disjoint():
    data = gh.synthetic_images(100)
    tr1, va1 = gh.train_val_split(data, 10)
    tr2, va2 = gh.train_val_split(data, 10)
    assert torch.equal(va1.x, va2.x) and len(tr1) == 90 and len(va1) == 10
    assert torch.equal(torch.sort(torch.cat([tr1.y, va1.y])).values, torch.sort(data.y).values)


def test_uint8_round_trip_is_exact():
    x = torch.arange(256, dtype=torch.uint8).view(1, 1, 16, 16).expand(1, 3, 16, 16)
    assert torch.equal(gh.to_uint8(gh.to_float(x)), x)


# ---------------------------------------------------------------------------------------------- training

def test_stats_cache_is_used_on_second_call(tmp_path, data, features):
    first = gh.real_stats(data[1], "val", features, tmp_path)
    assert len(list(tmp_path.glob("stats_val_*.npz"))) == 1
    with mock.patch.object(gh.FeatureNet, "features", side_effect=AssertionError("recomputed")):
        second = gh.real_stats(data[1], "val", features, tmp_path)
    np.testing.assert_allclose(second.mu, first.mu)
    np.testing.assert_allclose(second.sigma, first.sigma)


def test_resume_continues_exactly(tmp_path, data, features):
    straight = tmp_path / "straight"
    gh.train(tiny(iters=4), straight, *data, features, progress=False)
    split = tmp_path / "split"
    gh.train(tiny(iters=2), split, *data, features, progress=False)
    history = gh.train(tiny(iters=4), split, *data, features, progress=False, resume=True)
    a, b = torch.load(straight / "last.pt", weights_only=True), torch.load(split / "last.pt", weights_only=True)
    assert a["iteration"] == b["iteration"] == 4
    for key in ("G", "D", "G_ema"):
        for name in a[key]:
            assert torch.equal(a[key][name], b[key][name]), f"{key}.{name} differs after resume"
    assert history["iter"] == [1, 2, 3, 4]
    assert a["history"]["d_loss"] == b["history"]["d_loss"]
    # each start and resume is logged with the code it ran (the module's hash), so changes mid-run show
    assert [(s["from_iter"], s["code"], s["device"]) for s in history["segments"]] == \
        [(0, gh.code_version(), "cpu (%d thread%s)" % (torch.get_num_threads(), "s" * (torch.get_num_threads() > 1)))
         ] + [(2, gh.code_version(), history["segments"][0]["device"])]
    assert gh.code_version() == hashlib.sha256(Path(gh.__file__).read_bytes()).hexdigest()[:12]


def test_resume_with_another_ema_decay_changes_only_the_ema_and_logs_it(tmp_path, data, features):
    """The EMA of G never feeds back into training: resuming with another ema_decay leaves G and D exactly as a
    straight run's, changes the EMA from the resumed iteration on, and the history says so."""
    straight = tmp_path / "straight"
    gh.train(tiny(iters=4, ema_decay=0.5), straight, *data, features, progress=False)
    split = tmp_path / "split"
    gh.train(tiny(iters=2, ema_decay=0.5), split, *data, features, progress=False)
    history = gh.train(tiny(iters=4, ema_decay=0.9), split, *data, features, progress=False, resume=True)
    a, b = torch.load(straight / "last.pt", weights_only=True), torch.load(split / "last.pt", weights_only=True)
    for key in ("G", "D"):
        assert all(torch.equal(a[key][name], b[key][name]) for name in a[key]), f"{key} differs"
    assert not all(torch.equal(a["G_ema"][name], b["G_ema"][name]) for name in a["G_ema"])
    assert history["segments"][1]["changed"] == {"ema_decay": [0.5, 0.9]} and "changed" not in history["segments"][0]
    assert gh.describe_segments(history).endswith("; ema_decay 0.5 -> 0.9 at iteration 2")
    with pytest.raises(gh.GanError, match="betas"):   # settings outside RESUMABLE_FIELDS may not change
        gh.train(tiny(iters=6, ema_decay=0.9, betas=(0.5, 0.99)), split, *data, features, progress=False, resume=True)


def _parameters(state: dict, cfg: gh.Config) -> dict[str, torch.Tensor]:
    """G's trainable tensors in a training state (spectral norm's u and v vectors are buffers, not these)."""
    names = {n for n, _ in gh.build_models(cfg)[0].named_parameters()}
    return {n: t for n, t in state["G"].items() if n in names}


def test_resume_with_another_learning_rate_scales_the_next_adam_step(tmp_path, data, features):
    """A resumed run takes the new learning rate, not the one stored in its optimizer state: from the same state,
    data and latents, G's first Adam step after resuming with g_lr b is b/a times the step with g_lr a (Adam's
    step is lr x m_hat / (sqrt(v_hat) + eps), and D's step before it is the same), and the change is logged."""
    gh.train(tiny(iters=2), tmp_path / "base", *data, features, progress=False)
    a, b = tiny().g_lr, 3 * tiny().g_lr
    for name, lr in (("a", a), ("b", b)):
        shutil.copytree(tmp_path / "base", tmp_path / name)
        history = gh.train(tiny(iters=3, g_lr=lr), tmp_path / name, *data, features, progress=False, resume=True)
    before = _parameters(torch.load(tmp_path / "base" / "last.pt", weights_only=True), tiny())
    step_a, step_b = (_parameters(torch.load(tmp_path / n / "last.pt", weights_only=True), tiny()) for n in "ab")
    for n in before:   # up to float32 rounding of the weights themselves (a few ulps of the largest)
        ulps = 4 * torch.finfo(torch.float32).eps * before[n].abs().max().item()
        assert_close(step_b[n] - before[n], (b / a) * (step_a[n] - before[n]), rtol=1e-4, atol=ulps)
    state = torch.load(tmp_path / "b" / "last.pt", weights_only=True)
    assert state["opt_g"]["param_groups"][0]["lr"] == b and state["opt_d"]["param_groups"][0]["lr"] == tiny().d_lr
    assert history["segments"][1]["changed"] == {"g_lr": [a, b]}


def test_fork_starts_a_new_run_from_another_runs_state(tmp_path, data, features):
    """A fork takes the state's weights and optimizers at its iteration, its own name, seed and settings; one seed
    gives identical forks, another seed other batches; the fork's history starts with an evaluation there and names
    its origin, it resumes exactly, and the state it came from is left alone."""
    gh.train(tiny(iters=2), tmp_path / "parent", *data, features, progress=False)
    parent = tmp_path / "parent" / "last.pt"
    digest = hashlib.sha256(parent.read_bytes()).hexdigest()
    fork = lambda out, **kw: gh.train(tiny(**{"iters": 4, "name": "fork", **kw}), tmp_path / out, *data,  # noqa: E731
                                      features, progress=False, resume=True, fork_from=parent)
    one, same, other = fork("one", d_lr=1e-3), fork("same", d_lr=1e-3), fork("other", d_lr=1e-3, seed=1)
    assert one["d_loss"] == same["d_loss"] and one["d_loss"] != other["d_loss"]
    assert one["iter"] == [3, 4] and [e["iter"] for e in one["eval"]] == [2, 4]
    start = torch.load(parent, weights_only=True)
    assert one["eval"][0]["fd"] == pytest.approx(start["history"]["eval"][-1]["fd"])   # the state's own G_ema
    assert one["forked_from"] == {"state": str(parent), "name": "sagan", "seed": 0, "iteration": 2}
    assert one["segments"][0]["changed"] == {"d_lr": [tiny().d_lr, 1e-3]}
    assert gh.describe_segments(one).startswith("forked from sagan (seed 0) at iteration 2, then trained in 1 stretch")
    assert hashlib.sha256(parent.read_bytes()).hexdigest() == digest
    stopped = gh.train(tiny(iters=4, name="fork", d_lr=1e-3), tmp_path / "split", *data, features, progress=False,
                       resume=True, fork_from=parent, time_limit=0.0)
    assert stopped["iter"] == [3]
    resumed = gh.train(tiny(iters=4, name="fork", d_lr=1e-3), tmp_path / "split", *data, features, progress=False,
                       resume=True, fork_from=parent)
    assert resumed["d_loss"] == one["d_loss"] and resumed["forked_from"] == one["forked_from"]
    with pytest.raises(gh.GanError, match="iteration 2.*set iters above 2"):
        gh.train(tiny(iters=2), tmp_path / "none", *data, features, progress=False, fork_from=parent)
    with pytest.raises(gh.GanError, match="another config.*arch"):
        gh.train(tiny("dcgan", iters=4), tmp_path / "arch", *data, features, progress=False, fork_from=parent)


def test_segments_sentence_names_stretches_and_code_changes():
    seg = lambda it, code: {"from_iter": it, "code": code, "device": "cpu (1 thread)", "started": "t"}  # noqa: E731
    history = {"iter": list(range(1, 3001)), "segments": [seg(0, "a"), seg(1000, "a"), seg(2000, "b")]}
    assert gh.describe_segments(history) == ("trained in 3 stretches (0-1,000 on cpu (1 thread), 1,000-2,000 on "
                                             "cpu (1 thread), 2,000-3,000 on cpu (1 thread)); the code changed at "
                                             "iteration 2,000")
    history["segments"] = [seg(0, "a")]
    assert gh.describe_segments(history).endswith("(0-3,000 on cpu (1 thread)); the same code throughout")
    assert gh.describe_segments({"iter": [1]}).startswith("no training segments logged")


def test_time_limit_saves_a_state_that_resumes_exactly(tmp_path, data, features):
    straight = gh.train(tiny(iters=4), tmp_path / "straight", *data, features, progress=False)
    stopped = gh.train(tiny(iters=4), tmp_path / "split", *data, features, progress=False, time_limit=0.0)
    assert stopped["iter"] == [1]                        # a limit of 0 s stops after the first iteration
    assert torch.load(tmp_path / "split" / "last.pt", weights_only=True)["iteration"] == 1
    resumed = gh.train(tiny(iters=4), tmp_path / "split", *data, features, progress=False, resume=True)
    assert resumed["d_loss"] == straight["d_loss"] and resumed["g_loss"] == straight["g_loss"]


def test_resume_with_another_model_is_refused(tmp_path, data, features):
    gh.train(tiny(iters=2), tmp_path, *data, features, progress=False)
    with pytest.raises(gh.GanError, match="already holds a run"):
        gh.train(tiny(iters=4), tmp_path, *data, features, progress=False)
    with pytest.raises(gh.GanError, match="another config.*arch"):
        gh.train(tiny("dcgan", iters=4), tmp_path, *data, features, progress=False, resume=True)


def test_nan_loss_stops_and_keeps_last_checkpoint(tmp_path, data, features):
    real_step = gh.train_step

    def step_then_nan(cfg, G, D, G_ema, opt_g, opt_d, real_batch, iteration, prec=None):
        logs = real_step(cfg, G, D, G_ema, opt_g, opt_d, real_batch, iteration, prec)
        return {**logs, "d_loss": math.nan} if iteration >= 3 else logs

    with mock.patch.object(gh, "train_step", step_then_nan):
        with pytest.raises(gh.TrainingDiverged, match="iteration 4.*iteration 2"):
            gh.train(tiny(iters=6), tmp_path, *data, features, progress=False)
    assert torch.load(tmp_path / "last.pt", weights_only=True)["iteration"] == 2
    assert not list(tmp_path.glob("*.tmp"))


def test_best_checkpoint_alone_rebuilds_and_samples(tmp_path, data, features):
    history = gh.train(tiny(iters=2), tmp_path, *data, features, progress=False)
    G = gh.load_generator(tmp_path / "best.pt")
    assert not G.training
    best = gh.best_eval(history)
    ckpt = gh.load_checkpoint(tmp_path / "best.pt")
    assert ckpt["metrics"]["fd"] == pytest.approx(best["fd"]) and ckpt["iteration"] == best["iter"]
    x1, x2 = gh.sample(G, 12, seed=5), gh.sample(G, 12, seed=5)
    assert torch.equal(x1, x2) and x1.shape == (12, 3, 32, 32)
    assert float(x1.abs().max()) <= 1.0
    assert not torch.equal(x1, gh.sample(G, 12, seed=6))
    _, y = gh.latents(G, 12)
    assert y.tolist() == [i % 10 for i in range(12)]


def test_standing_batch_norm_averages_the_generators_own_batch_statistics():
    gh.setup(0)
    G = gh.build_models(tiny("dcgan"))[0].eval()
    first = G.norms[0].bn                                          # BN over the first transposed conv's output
    first.running_mean.fill_(5.0)                                  # stale statistics, as copied from another G
    buffers_before = [b.clone() for b in G.buffers()]
    rng = torch.random.get_rng_state()
    with torch.no_grad():                                          # the first BN's inputs do not depend on BN
        inputs = [G.convs[0](gh.latents(G, 16, seed=7 + i)[0][:, :, None, None]) for i in range(3)]
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


def test_ema_generator_is_saved_with_its_own_batch_norm_statistics(tmp_path, data, features):
    gh.train(tiny(iters=2, ema_decay=0.5), tmp_path, *data, features, progress=False)
    ckpt = gh.load_checkpoint(tmp_path / "best.pt")
    G = gh.load_generator(tmp_path / "best.pt")     # in train()'s memory format, so the same kernels run
    gh.standing_batch_norm(G)
    saved = {n: b for n, b in ckpt["G"].items() if "running" in n}
    assert saved and all(torch.equal(b, G.state_dict()[n]) for n, b in saved.items())


def test_corrupt_and_foreign_checkpoints_give_clear_errors(tmp_path):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(gh.GanError, match="not a readable checkpoint"):
        gh.load_generator(bad)
    foreign = tmp_path / "foreign.pt"
    torch.save({"weights": torch.zeros(2)}, foreign)
    with pytest.raises(gh.GanError, match="not a gan_helpers checkpoint"):
        gh.load_generator(foreign)
    with pytest.raises(gh.GanError, match="not found"):
        gh.load_generator(tmp_path / "missing.pt")


def test_short_run_learns_synthetic_data(tmp_path):
    """The proxy distance to held-out synthetic images drops clearly below its value at initialisation."""
    train_data, val_data = gh.train_val_split(gh.synthetic_images(1000), val_size=200)
    cfg = tiny(iters=120, eval_every=60, eval_samples=200, batch_size=32, ema_decay=0.9, ema_start=20)
    history = gh.train(cfg, tmp_path, train_data, val_data, gh.load_feature_net(gh.RandomFeatures()),
                       progress=False)
    fd = [e["fd"] for e in history["eval"]]
    assert fd[-1] < 0.5 * fd[0], fd


# ---------------------------------------------------------------------------------------------- CLI

def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "gan_helpers.py"), *args], capture_output=True, text=True,
                          cwd=cwd, env={"PYTHONPATH": str(ROOT), "PATH": "", "MPLBACKEND": "Agg"})


@pytest.fixture(scope="module")
def cli_run(tmp_path_factory) -> Path:
    """A tiny image-folder CIFAR, a TorchScript proxy network and a 2-iteration DCGAN run made by the CLI."""
    root = tmp_path_factory.mktemp("cli")
    imgs = gh.synthetic_images(60)
    for split in ("train", "test"):
        for c, name in enumerate(imgs.classes):
            sel = imgs.y == c
            gh.save_pngs(gh.to_float(imgs.x[sel]), root / "data" / split / name, [str(i) for i in range(int(sel.sum()))])
    torch.jit.script(gh.RandomFeatures()).save(str(root / "features.pt"))
    r = cli("train", "dcgan", "--iters", "2", "--eval-every", "1", "--eval-samples", "20", "--val-size", "20",
            "--data-dir", str(root / "data"), "--feature-net", str(root / "features.pt"), "--out", "run",
            "--set", "g_ch=16", "d_ch=16", "batch_size=8", cwd=root)
    assert r.returncode == 0, r.stderr
    assert "FD (proxy: features features)" in r.stdout
    return root


def test_cli_train_writes_run_files(cli_run):
    assert {p.name for p in (cli_run / "run").iterdir()} >= {"last.pt", "best.pt", "history.json"}
    history = json.loads((cli_run / "run" / "history.json").read_text())
    assert [e["iter"] for e in history["eval"]] == [0, 1, 2] and history["iter"] == [1, 2]


def test_cli_sample_npz_pngs_and_per_class(cli_run):
    r = cli("sample", "run/best.pt", "--n", "12", "--out", "s.npz", "--seed", "3", cwd=cli_run)
    assert r.returncode == 0, r.stderr
    with np.load(cli_run / "s.npz") as f:
        assert f["x"].shape == (12, 32, 32, 3) and f["x"].dtype == np.uint8
        assert f["y"].tolist() == [i % 10 for i in range(12)]
    assert cli("sample", "run/last.pt", "--n", "3", "--out", "pngs", cwd=cli_run).returncode == 0
    assert len(list((cli_run / "pngs").glob("*.png"))) == 3
    assert cli("sample", "run/best.pt", "--per-class", "--out", "classes", cwd=cli_run).returncode == 0
    assert sorted(p.name for p in (cli_run / "classes").iterdir())[:2] == ["00_airplane.png", "01_automobile.png"]


def test_cli_publish_copies_best_generator_and_history(cli_run):
    r = cli("publish", "run", "tiny", "--model-dir", "published", cwd=cli_run)
    assert r.returncode == 0, r.stderr
    assert gh.load_checkpoint(cli_run / "published" / "tiny_best.pt")["kind"] == "generator"
    assert json.loads((cli_run / "published" / "tiny_history.json").read_text()) == \
        json.loads((cli_run / "run" / "history.json").read_text())


def test_cli_evaluate_prints_test_score_and_writes_grid(cli_run):
    r = cli("evaluate", "run/best.pt", "--data-dir", "data", "--n", "30", "--feature-net", "features.pt",
            "--grid", "grid.png", "--json", "scores.json", cwd=cli_run)
    assert r.returncode == 0, r.stderr
    assert "test set (image folder data/test): FD (proxy: features features)" in r.stdout and "(30 generated vs 60 real)" in r.stdout
    # the kit's classifier (model/eval/) is the default: a proxy IS and the class accuracy beside real images'
    assert "IS (proxy: cifar10_classifier)" in r.stdout and "class accuracy (proxy: cifar10_classifier)" in r.stdout
    assert "(real test images" in r.stdout and "near-duplicate pairs" in r.stdout
    assert (cli_run / "grid.png").stat().st_size > 1000
    scores = json.loads((cli_run / "scores.json").read_text())
    assert scores["n_fake"] == 30 and scores["n_real"] == 60 and scores["checkpoint"] == "run/best.pt"
    assert f"{scores['fd']:.4g}" in r.stdout and f"{scores['is']:.4g}" in r.stdout
    assert 0 <= scores["class_acc"] <= 1 and 0 <= scores["diversity"]["dup_fake"] <= 1 and scores["nn_ratio"] > 0


def test_cli_resume_with_the_wrong_model_is_one_line(cli_run):
    r = cli("train", "sagan", "--iters", "4", "--val-size", "20", "--data-dir", "data", "--feature-net",
            "features.pt", "--out", "run", "--resume", cwd=cli_run)
    assert r.returncode == 2 and "cannot resume" in r.stderr and "Traceback" not in r.stderr


def test_cli_errors_are_one_line(cli_run):
    r = cli("sample", str(cli_run / "missing.pt"), "--out", "x.npz", cwd=cli_run)
    assert r.returncode == 2 and r.stderr.strip().count("\n") == 0 and "not found" in r.stderr
    r = cli("train", "sagan", "--set", "bogus=1", cwd=cli_run)
    assert r.returncode == 2 and "bogus" in r.stderr and "Traceback" not in r.stderr
    (cli_run / "corrupt.pt").write_bytes(b"\x00" * 10)
    r = cli("evaluate", "corrupt.pt", cwd=cli_run)
    assert r.returncode == 2 and "not a readable checkpoint" in r.stderr and "Traceback" not in r.stderr


def test_comparison_table_respects_the_budget():
    entry = lambda it, fd: {"iter": it, "fd": fd, "kid": 0.5, "kid_std": 0.01, "n_fake": 10, "n_real": 20,
                            "metric": "FID"}
    history = {"eval": [entry(0, 9.0), entry(100, 4.0), entry(200, 1.0)]}
    table = gh.comparison_table({"a": history}, upto=150).splitlines()
    assert table[2] == "| a | FID 4 | 100 | 0.5 ± 0.01 | 10 vs 20 |"
    assert "| a | FID 1 | 200 |" in gh.comparison_table({"a": history})


# ---------------------------------------------------------------------------------------------- mixed precision

def test_precision_defaults_per_device():
    assert gh.precision("auto", "cpu").dtype is None            # float32 on the CPU
    assert gh.precision("bf16", "cpu").dtype is torch.bfloat16
    assert gh.precision("off", "cpu").scaler_g is None
    with pytest.raises(gh.GanError, match="amp='fp16' needs a CUDA device"):
        gh.precision("fp16", "cpu")
    with pytest.raises(gh.GanError, match="amp"):
        tiny(amp="half").validate()


def test_spectral_norm_power_iteration_stays_float32_under_autocast():
    torch.manual_seed(0)
    plain = gh.apply_spectral_norm(torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3)))
    autocast = gh.apply_spectral_norm(torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3)))
    autocast.load_state_dict(plain.state_dict())
    x = torch.randn(2, 3, 8, 8)
    plain(x)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = autocast(x)
    assert out.dtype == torch.bfloat16                           # the convolution itself runs in bf16 ...
    sn_plain, sn_autocast = plain[0].parametrizations.weight[0], autocast[0].parametrizations.weight[0]
    assert torch.equal(sn_plain._u, sn_autocast._u) and torch.equal(sn_plain._v, sn_autocast._v)  # ... not sigma
    assert torch.equal(plain[0].weight, autocast[0].weight)


@pytest.mark.parametrize("name, overrides", [("sagan", {}), ("dcgan", {}), ("sagan", dict(spectral_norm=False,
                                                                                           lipschitz="gp"))])
def test_bf16_step_computes_the_float32_losses(name, overrides, data):
    cfg = tiny(name, **overrides)
    results = []
    for prec in (None, gh.precision("bf16", "cpu")):
        gh.setup(0)
        G, D = gh.build_models(cfg)
        opt_g, opt_d = gh.make_optimizers(cfg, G, D)
        results.append(gh.train_step(cfg, G, D, None, opt_g, opt_d, lambda: data[0].batch(cfg.batch_size), 0, prec))
    for key in results[0]:
        assert results[1][key] == pytest.approx(results[0][key], rel=0.05, abs=0.02), key


@pytest.mark.parametrize("backend", ["aot_eager", "inductor"])   # aot_eager: tracing only; inductor: C++ kernels
def test_compiled_steps_compute_the_eager_losses(data, backend):
    """Three steps with spectral norm on G and D (the power iteration's in-place updates between forwards
    broke inductor's backward before it was left out of compilation)."""
    if backend == "inductor" and shutil.which("g++") is None and shutil.which("c++") is None:
        pytest.skip("inductor on the CPU needs a C++ compiler (g++)")
    cfg = tiny(g_ch=8, d_ch=8, compile=backend)
    results = []
    for run in ("off", cfg.compile):
        gh.setup(0)
        G, D = gh.build_models(cfg)
        opt_g, opt_d = gh.make_optimizers(cfg, G, D)
        G_run, D_run = gh.compiled(G, run), gh.compiled(D, run)
        results.append([gh.train_step(cfg, G_run, D_run, None, opt_g, opt_d, lambda: data[0].batch(cfg.batch_size), i)
                        for i in range(3)])
        assert all(a is b for a, b in zip(G_run.parameters(), G.parameters()))   # optimizers/EMA see the same
    for eager, compiled in zip(*results):
        for key in eager:
            assert compiled[key] == pytest.approx(eager[key], rel=1e-4, abs=1e-4), key
    with pytest.raises(gh.GanError, match="torch.compile backend"):
        tiny(compile="fastest").validate()


def test_half_precision_features_keep_the_distance_within_0_1_percent():
    a, b = gh.synthetic_images(400, seed=1).x, gh.synthetic_images(400, seed=2).x.flip(3)
    fd = {}
    for half in (False, True):
        net = gh.load_feature_net(gh.RandomFeatures(), half=half)
        sa, sb = gh.Stats.of(net.features(a)), gh.Stats.of(net.features(b))
        fd[half] = gh.frechet_distance(sa.mu, sa.sigma, sb.mu, sb.sigma)
    assert fd[True] != fd[False]                                  # the half path really ran in float16
    assert fd[True] == pytest.approx(fd[False], rel=1e-3)
