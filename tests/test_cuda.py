"""The CUDA paths, against their float32 eager counterparts on the same weights and batches: bf16 and fp16 (with
gradient scaling) training steps, a torch.compile'd step, cuDNN autotuning in train(), fp16 features, exact resume.
Every test needs a CUDA GPU and is skipped elsewhere; on a GPU machine: python -m pytest -m cuda tests/test_cuda.py
(tools/device_check.py runs exactly this; the CPU versions are in test_device.py, test_features.py, test_training.py)."""
import copy
import os

import pytest
import torch
from helpers import tiny

import gan_helpers as gh
import gankit.device
import gankit.features
import gankit.measures
import gankit.capture
import gankit.step

os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")   # deterministic cuBLAS: read when cuBLAS first starts

pytestmark = [pytest.mark.cuda,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (torch.cuda.is_available() "
                                                                       "is False here)")]
CUDA = torch.device("cuda")


@pytest.fixture(autouse=True)
def cudnn_flags():
    """Every test leaves cuDNN's and torch's global switches as it found them (train() sets cudnn.benchmark)."""
    saved = (torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic,
             torch.are_deterministic_algorithms_enabled())
    yield
    torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic = saved[:2]
    torch.use_deterministic_algorithms(saved[2])


@pytest.fixture(scope="module")
def data() -> tuple[gh.ImageSet, gh.ImageSet]:
    return gh.train_val_split(gh.synthetic_images(300), val_size=60)


@pytest.fixture(scope="module")
def features() -> gankit.features.FeatureNet:
    return gh.load_feature_net(gh.RandomFeatures(), device=CUDA)


def steps(cfg: gh.Config, data: gh.ImageSet, prec: gankit.device.Precision | None, n: int = 1,
          compile: str = "off") -> list[dict[str, float]]:
    """n train_steps on CUDA from seed 0: the same weights and batches for every precision and backend."""
    gh.setup(0)
    G, D = (gh.to_device(m, CUDA) for m in gh.build_models(cfg))
    opt_g, opt_d = gh.make_optimizers(cfg, G, D)
    G_run, D_run = gankit.device.compiled(G, compile), gankit.device.compiled(D, compile)
    train = data.to(CUDA)
    out = [gh.train_step(cfg, G_run, D_run, None, opt_g, opt_d, lambda: train.batch(cfg.batch_size), 0.0, prec)
           for i in range(n)]
    assert all(a is b for a, b in zip(G_run.parameters(), G.parameters()))   # optimizers and EMA see the same
    return out


# bf16 keeps 8 bits of mantissa, fp16 11: the first step's losses (before any update) within these of float32
@pytest.mark.parametrize("amp, rel, abs_", [("bf16", 0.05, 0.02), ("fp16", 0.02, 0.01)])
@pytest.mark.parametrize("name, overrides", [("sagan", {}), ("dcgan", {}),
                                             ("sagan", {"spectral_norm": "none", "lipschitz": "gp"})])
def test_mixed_precision_step_computes_the_float32_losses(data, amp, rel, abs_, name, overrides):
    cfg = tiny(name, **overrides)
    prec = gh.precision(amp, CUDA)
    plain, mixed = steps(cfg, data[0], None)[0], steps(cfg, data[0], prec)[0]
    assert mixed != plain                                          # the step really ran in half precision
    # D's losses come before any update; G's after D's update, which fp16's scaler skips when its first scale
    # (65536) overflows the gradients: then G meets a different D, and only D's losses are comparable
    d_skipped = amp == "fp16" and prec.scaler_d.state_dict()["scale"] < 65536.0
    for key in [k for k in plain if not (d_skipped and k == "g_loss")]:
        assert mixed[key] == pytest.approx(plain[key], rel=rel, abs=abs_), key
    if amp == "fp16":   # both gradient scalers stepped: one grew its count of good steps, or backed off after an inf
        for scaler in (prec.scaler_g, prec.scaler_d):
            state = scaler.state_dict()
            assert (state["scale"], state["_growth_tracker"]) != (65536.0, 0), state


def test_compiled_step_on_cuda_computes_the_eager_losses(data):
    """Three inductor-compiled steps (Triton kernels) against eager ones, float32, spectral norm on G and D."""
    cfg = tiny(g_ch=8, d_ch=8, amp="off")
    eager, compiled = steps(cfg, data[0], None, n=3), steps(cfg, data[0], None, n=3, compile="inductor")
    for a, b in zip(eager, compiled):
        for key in a:
            assert b[key] == pytest.approx(a[key], rel=1e-3, abs=1e-3), key


def test_train_on_cuda_turns_on_cudnn_autotuning_and_saves_cpu_loadable_checkpoints(tmp_path, data, features):
    torch.backends.cudnn.benchmark = False
    history = gh.train(tiny(iters=2), tmp_path, *data, features, device=CUDA, progress=False)
    assert torch.backends.cudnn.benchmark is True
    assert history["iter"] == [1, 2] and history["segments"][0]["device"] == torch.cuda.get_device_name(CUDA)
    G = gh.load_generator(tmp_path / "best.pt")                    # a GPU run's generator on a CPU machine
    assert gankit.device.device_of(G).type == "cpu" and gh.sample(G, 4).shape == (4, 3, 32, 32)


def test_half_precision_features_on_cuda_keep_the_distance_within_0_1_percent():
    with gh.warnings_ignored():                                    # TorchScript's deprecation warning (torch >= 2.14)
        net = torch.jit.script(gh.RandomFeatures())                # a TorchScript network, as the proxy is
    a, b = gh.synthetic_images(2000, seed=1).x, gh.synthetic_images(2000, seed=2).x.flip(3)
    assert gh.load_feature_net(net, device=CUDA, classifier="none").half     # fp16 by default on CUDA
    fd = {}
    for half in (False, True):
        fn = gh.load_feature_net(net, device=CUDA, classifier="none", half=half)
        sa, sb = gankit.features.Stats.of(fn.features(a)), gankit.features.Stats.of(fn.features(b))
        fd[half] = gankit.measures.frechet_distance(sa.mu, sa.sigma, sb.mu, sb.sigma)
    assert fd[True] != fd[False]                                   # the half path really ran in float16
    assert fd[True] == pytest.approx(fd[False], rel=1e-3)


@pytest.mark.parametrize("amp", ["auto", "fp16"])   # auto: bf16 on Ampere and later; fp16: the scalers resume too
def test_resume_on_cuda_continues_exactly(tmp_path, data, features, amp):
    """4 iterations straight = 2, then resume to 4: the same losses, evaluations and weights, bit for bit. Exact
    only with deterministic kernels (atomic-add kernels, e.g. the memory-efficient attention's backward, differ from
    run to run), so an op that has none fails here by name rather than by a flaky inequality."""
    torch.backends.cudnn.deterministic = True
    torch.use_deterministic_algorithms(True)
    straight = gh.train(tiny(iters=4, amp=amp), tmp_path / "straight", *data, features, device=CUDA, progress=False)
    gh.train(tiny(iters=2, amp=amp), tmp_path / "split", *data, features, device=CUDA, progress=False)
    resumed = gh.train(tiny(iters=4, amp=amp), tmp_path / "split", *data, features, device=CUDA, progress=False,
                       resume=True)
    assert resumed["iter"] == straight["iter"] == [1, 2, 3, 4]
    for key in ("d_loss", "g_loss", "d_real", "d_fake"):
        assert resumed[key] == straight[key], key
    assert [e["fd"] for e in resumed["eval"]] == [e["fd"] for e in straight["eval"]]
    a, b = (torch.load(tmp_path / run / "last.pt", weights_only=True) for run in ("straight", "split"))
    for key in ("G", "D", "G_ema", "scaler_g", "scaler_d"):
        if isinstance(a[key], dict) and all(isinstance(t, torch.Tensor) for t in a[key].values()):
            for name in a[key]:
                assert torch.equal(a[key][name], b[key][name]), f"{key}.{name} differs after resume"
        else:
            assert a[key] == b[key], key


@pytest.mark.parametrize("recipe", ["dcgan", "sagan", "sagan-diffaug"])
def test_captured_step_equals_the_eager_step(data, recipe):
    """compile='cudagraph': the whole step recorded once and replayed gives the eager step's losses over several
    iterations (the warm-up before recording undone), with the shipped recipes' settings and with DiffAugment."""
    overrides = {"dcgan": dict(), "sagan": dict(ema_decay=0.999, ema_start=2),
                 "sagan-diffaug": dict(diffaug="translation,cutout")}[recipe]
    name = "dcgan" if recipe == "dcgan" else "sagan"
    torch.backends.cudnn.deterministic = True
    logs = {}
    for compile in ("off", "cudagraph"):
        cfg = tiny(name, amp="off", compile=compile, **overrides)
        gh.setup(0)
        G, D = (gh.to_device(m, CUDA) for m in gh.build_models(cfg))
        G_ema = copy.deepcopy(G) if cfg.ema_decay else None
        opt_g, opt_d = gh.make_optimizers(cfg, G, D)
        train = data[0].to(CUDA)
        step = lambda decay: gankit.step.train_step(cfg, G, D, G_ema, opt_g, opt_d,   # noqa: E731
                                                    lambda: train.batch(cfg.batch_size, True), decay)
        if compile == "cudagraph":
            step = gankit.capture.CapturedStep(step, [m for m in (G, D, G_ema) if m is not None], [opt_g, opt_d], CUDA)
        logs[compile] = torch.stack([gankit.step.stack_logs(step(gankit.step.ema_decay(cfg, i)))
                                     for i in range(6)]).cpu()
    torch.testing.assert_close(logs["cudagraph"], logs["off"], rtol=1e-4, atol=1e-5)


def test_captured_training_resumes_exactly(tmp_path, data, features):
    """train() with compile='cudagraph': 4 iterations straight = 2, then resume to 4 (a new recording), bit for bit."""
    torch.backends.cudnn.deterministic = True
    cfg = lambda iters: tiny(iters=iters, amp="off", compile="cudagraph")   # noqa: E731
    straight = gh.train(cfg(4), tmp_path / "straight", *data, features, device=CUDA, progress=False)
    gh.train(cfg(2), tmp_path / "split", *data, features, device=CUDA, progress=False)
    resumed = gh.train(cfg(4), tmp_path / "split", *data, features, device=CUDA, progress=False, resume=True)
    for key in ("d_loss", "g_loss", "d_real", "d_fake"):
        assert resumed[key] == straight[key], key


def test_unsupported_capture_trains_eagerly_saying_why(tmp_path, data, features, capsys):
    cfg = tiny(iters=2, amp="fp16", compile="cudagraph")
    gh.train(cfg, tmp_path, *data, features, device=CUDA, progress=False)
    assert "training eagerly, since fp16's gradient scaler" in capsys.readouterr().out
