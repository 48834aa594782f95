"""train(): cached statistics, exact resume (and with changed settings), forks, time limits, divergence, the logged evaluations, a short run that learns."""
import hashlib
import json
import math
import shutil
from pathlib import Path
from unittest import mock

import numpy as np
import pytest
import torch
from helpers import tiny
from torch.testing import assert_close

import gan_helpers as gh
import gankit.features
import gankit.images
import gankit.losses
import gankit.states
import gankit.plots
import gankit.sampling
import gankit.training
import gankit


@pytest.fixture(scope="module")
def data() -> tuple[gh.ImageSet, gh.ImageSet]:
    return gh.train_val_split(gh.synthetic_images(300), val_size=60)


@pytest.fixture(scope="module")
def features() -> gankit.features.FeatureNet:
    return gh.load_feature_net(gh.RandomFeatures())


def _parameters(state: dict, cfg: gh.Config) -> dict[str, torch.Tensor]:
    """G's trainable tensors in a training state (spectral norm's u and v vectors are buffers, not these)."""
    names = {n for n, _ in gh.build_models(cfg)[0].named_parameters()}
    return {n: t for n, t in state["G"].items() if n in names}


def test_stats_cache_is_used_on_second_call(tmp_path, data, features):
    first = gh.real_stats(data[1], "val", features, tmp_path)
    assert len(list(tmp_path.glob("stats_val_*.npz"))) == 1
    with mock.patch.object(gankit.features.FeatureNet, "features", side_effect=AssertionError("recomputed")):
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
        [(0, gankit.training.code_version(), "cpu (%d thread%s)" % (torch.get_num_threads(), "s" * (torch.get_num_threads() > 1)))
         ] + [(2, gankit.training.code_version(), history["segments"][0]["device"])]
    package = sorted((Path(gh.__file__).parent / "gankit").rglob("*.py"))
    assert gankit.training.code_version() == hashlib.sha256(b"".join(p.read_bytes() for p in package)).hexdigest()[:12]


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
    assert gankit.training.describe_segments(history).endswith("; ema_decay 0.5 -> 0.9 at iteration 2")
    assert gankit.training.ema_began(history, tiny(ema_decay=0.9)) == tiny().ema_start   # on since ema_start
    with pytest.raises(gh.GanError, match="betas"):   # settings outside RESUMABLE_FIELDS may not change
        gh.train(tiny(iters=6, ema_decay=0.9, betas=(0.5, 0.99)), split, *data, features, progress=False, resume=True)


def test_an_ema_switched_on_at_a_resume_starts_from_g_there_and_is_dated_from_it(tmp_path, data, features):
    """A run without an EMA, resumed with one: at the resume the EMA is a copy of G (one EMA step later it lies
    between G before and after that step), and ema_began() dates it from the resume, not from cfg.ema_start."""
    gh.train(tiny(iters=2, ema_decay=0.0), tmp_path, *data, features, progress=False)
    before = torch.load(tmp_path / "last.pt", weights_only=True)["G"]
    history = gh.train(tiny(iters=3, ema_decay=0.5), tmp_path, *data, features, progress=False, resume=True)
    after = torch.load(tmp_path / "last.pt", weights_only=True)
    name = next(n for n, t in before.items()   # a weight, not a BatchNorm statistic (those are copied)
                if "running" not in n and t.is_floating_point() and not torch.equal(t, after["G"][n]))
    assert torch.allclose(after["G_ema"][name], 0.5 * before[name] + 0.5 * after["G"][name], atol=1e-6)
    assert history["segments"][-1]["changed"]["ema_decay"] == [0.0, 0.5]
    assert gankit.training.ema_began(history, tiny(ema_decay=0.5)) == 2
    assert gankit.training.ema_began(history, tiny(ema_decay=0.0)) is None


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
    assert gankit.training.setting_schedule(history, "g_lr", b) == [(0, a), (2, b)]
    assert gankit.training.setting_schedule(history, "d_lr", tiny().d_lr) == [(0, tiny().d_lr)]   # never changed


@pytest.mark.slow
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
    assert gankit.training.describe_segments(one).startswith("forked from sagan (seed 0) at iteration 2, then trained in 1 stretch")
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


@pytest.mark.slow
def test_a_fork_starts_from_a_compact_state_as_from_the_state_it_packs(tmp_path, data, features):
    """A compact state (model/states/<name>.pt) forks like the last.pt it packs: the fork starts at its iteration
    from its weights (bf16-rounded); a generator alone is refused with the files that would do."""
    gh.train(tiny(iters=2), tmp_path / "parent", *data, features, progress=False)
    compact = tmp_path / "compact.pt"
    gankit.states.write_compact_state(tmp_path / "parent", compact)
    fork = gh.train(tiny(iters=3, name="fork"), tmp_path / "fork", *data, features, progress=False, fork_from=compact)
    assert fork["forked_from"] == {"state": str(compact), "name": "sagan", "seed": 0, "iteration": 2}
    assert fork["iter"] == [3] and [e["iter"] for e in fork["eval"]] == [2, 3]
    expanded = gankit.states.load_state(compact)["G"]
    full = torch.load(tmp_path / "parent" / "last.pt", weights_only=True)["G"]
    assert any(not torch.equal(expanded[k], full[k]) for k in full if full[k].is_floating_point())   # rounded
    with pytest.raises(gh.GanError, match="holds only a generator: give a run folder, its last.pt or a compact state"):
        gh.train(tiny(iters=3, name="fork"), tmp_path / "g", *data, features, progress=False,
                 fork_from=tmp_path / "parent" / "best.pt")


def test_segments_sentence_names_stretches_and_code_changes():
    seg = lambda it, code: {"from_iter": it, "code": code, "device": "cpu (1 thread)", "started": "t"}  # noqa: E731
    history = {"iter": list(range(1, 3001)), "segments": [seg(0, "a"), seg(1000, "a"), seg(2000, "b")]}
    assert gankit.training.describe_segments(history) == ("trained in 3 stretches (0-1,000 on cpu (1 thread), 1,000-2,000 on "
                                             "cpu (1 thread), 2,000-3,000 on cpu (1 thread)); the code changed at "
                                             "iteration 2,000")
    history["segments"] = [seg(0, "a")]
    assert gankit.training.describe_segments(history).endswith("(0-3,000 on cpu (1 thread)); the same code throughout")
    assert gankit.training.describe_segments({"iter": [1]}).startswith("no training segments logged")


@pytest.mark.slow
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

    calls = []

    def step_then_nan(*args):   # the fourth iteration's D loss is NaN
        calls.append(1)
        logs = real_step(*args)
        return {**logs, "d_loss": torch.tensor(math.nan)} if len(calls) >= 4 else logs

    with mock.patch.object(gankit.training, "train_step", step_then_nan):
        with pytest.raises(gankit.training.TrainingDiverged, match="iteration 4.*iteration 2"):
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
    _, y = gankit.sampling.latents(G, 12)
    assert y.tolist() == [i % 10 for i in range(12)]


def test_ema_generator_is_saved_with_its_own_batch_norm_statistics(tmp_path, data, features):
    gh.train(tiny(iters=2, ema_decay=0.5), tmp_path, *data, features, progress=False)
    ckpt = gh.load_checkpoint(tmp_path / "best.pt")
    G = gh.load_generator(tmp_path / "best.pt")     # in train()'s memory format, so the same kernels run
    gh.standing_batch_norm(G, gankit.sampling.standing_batches(40))    # tiny() evaluates on 40 samples: 1 batch
    saved = {n: b for n, b in ckpt["G"].items() if "running" in n}
    assert saved and all(torch.equal(b, G.state_dict()[n]) for n, b in saved.items())


@pytest.mark.slow
def test_short_run_learns_synthetic_data(tmp_path):
    """The proxy distance to held-out synthetic images drops clearly below its value at initialisation."""
    train_data, val_data = gh.train_val_split(gh.synthetic_images(1000), val_size=200)
    cfg = tiny(iters=80, eval_every=40, eval_samples=200, batch_size=32, ema_decay=0.9, ema_start=20)
    history = gh.train(cfg, tmp_path, train_data, val_data, gh.load_feature_net(gh.RandomFeatures()),
                       progress=False)
    fd = [e["fd"] for e in history["eval"]]
    assert fd[-1] < 0.5 * fd[0], fd


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
    again = gankit.training.validation_losses(cfg, D, G, train_data, val_data)
    assert {k: history["eval"][-1][k] for k in again} == pytest.approx(again, rel=1e-6)
    assert again["d_loss_val"] == pytest.approx(gankit.losses.d_loss(cfg.loss, torch.tensor([again["d_real_val"]]),
                                                          torch.tensor([again["d_fake_eval"]])).item(), rel=1e-5)


def test_snapshots_are_the_fixed_latents_at_every_evaluation(short_run):
    _, out, _, _, _ = short_run
    assert sorted(gankit.plots.snapshots(out)) == [0, 2, 4]
    from PIL import Image
    with Image.open(gankit.images.snapshot_path(out, 4)) as im:
        saved = np.asarray(im)
    G = gh.load_generator(out / "last.pt")                       # the EMA generator evaluated at iteration 4
    np.testing.assert_array_equal(saved, gh.image_grid(gh.sample(G, 64, seed=0)))
    import matplotlib
    matplotlib.use("Agg")
    fig = gh.snapshot_strip(out, [0, 5])
    assert [ax.get_title() for ax in fig.axes] == ["iteration 0", "iteration 4"]   # the nearest ones
    assert gh.snapshot_slider(out).children[0].options == (("0", 0), ("2", 2), ("4", 4))


def test_a_saved_optimizer_keeps_this_devices_kernel_settings():
    """A state saved by a per-tensor Adam (an older kit, or another device's choice) resumes into make_optimizers'
    fused Adam: the moments and step counters carried over, the kernel settings this device's."""
    cfg = tiny()
    gh.setup(0)
    G, D = gh.build_models(cfg)
    old = torch.optim.Adam(G.parameters(), cfg.g_lr, betas=cfg.betas, foreach=False)
    for p in G.parameters():
        p.grad = torch.randn_like(p)
    old.step()
    new, _ = gh.make_optimizers(cfg, G, D)
    gankit.training._load_optimizer(new, old.state_dict())
    assert new.param_groups[0]["fused"] is True and new.param_groups[0]["foreach"] in (None, False)
    for p in G.parameters():
        assert torch.equal(new.state[p]["exp_avg"], old.state[p]["exp_avg"])
        assert float(new.state[p]["step"]) == 1.0
