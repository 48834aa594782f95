"""Precision per device, spectral norm in float32 under autocast, bf16 and compiled steps against float32 eager."""
import shutil

import pytest
import torch
from helpers import tiny

import gan_helpers as gh
import gankit.device
import gankit.layers
import gankit.step


@pytest.fixture(scope="module")
def data() -> tuple[gh.ImageSet, gh.ImageSet]:
    return gh.train_val_split(gh.synthetic_images(300), val_size=60)


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
    plain = gankit.layers.apply_spectral_norm(torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3)))
    autocast = gankit.layers.apply_spectral_norm(torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3)))
    autocast.load_state_dict(plain.state_dict())
    x = torch.randn(2, 3, 8, 8)
    plain(x)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = autocast(x)
    assert out.dtype == torch.bfloat16                           # the convolution itself runs in bf16 ...
    sn_plain, sn_autocast = plain[0].parametrizations.weight[0], autocast[0].parametrizations.weight[0]
    assert torch.equal(sn_plain._u, sn_autocast._u) and torch.equal(sn_plain._v, sn_autocast._v)  # ... not sigma
    assert torch.equal(plain[0].weight, autocast[0].weight)


@pytest.mark.parametrize("name, overrides", [("sagan", {}), ("dcgan", {}), ("sagan", dict(spectral_norm="none",
                                                                                           lipschitz="gp"))])
def test_bf16_step_computes_the_float32_losses(name, overrides, data):
    cfg = tiny(name, **overrides)
    results = []
    for prec in (None, gh.precision("bf16", "cpu")):
        gh.setup(0)
        G, D = gh.build_models(cfg)
        opt_g, opt_d = gh.make_optimizers(cfg, G, D)
        results.append(gankit.step.train_step(cfg, G, D, None, opt_g, opt_d, lambda: data[0].batch(cfg.batch_size),
                                              0.0, prec))
    for key in results[0]:
        assert float(results[1][key]) == pytest.approx(float(results[0][key]), rel=0.05, abs=0.02), key


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["aot_eager", "inductor"])   # aot_eager: tracing only; inductor: C++ kernels
def test_compiled_steps_compute_the_eager_losses(data, backend):
    """Three steps with spectral norm on G and D, compiled whole: spectral norm's forward is a pure function of the
    weight (its power iteration runs between updates, outside the compiled forward)."""
    if backend == "inductor" and shutil.which("g++") is None and shutil.which("c++") is None:
        pytest.skip("inductor on the CPU needs a C++ compiler (g++)")
    cfg = tiny(g_ch=8, d_ch=8, compile=backend)
    results = []
    for run in ("off", cfg.compile):
        gh.setup(0)
        G, D = gh.build_models(cfg)
        opt_g, opt_d = gh.make_optimizers(cfg, G, D)
        G_run, D_run = gankit.device.compiled(G, run), gankit.device.compiled(D, run)
        results.append([gankit.step.train_step(cfg, G_run, D_run, None, opt_g, opt_d,
                                               lambda: data[0].batch(cfg.batch_size)) for i in range(3)])
        assert all(a is b for a, b in zip(G_run.parameters(), G.parameters()))   # optimizers/EMA see the same
    for eager, compiled in zip(*results):
        for key in eager:
            assert float(compiled[key]) == pytest.approx(float(eager[key]), rel=1e-4, abs=1e-4), key
    with pytest.raises(gh.GanError, match="torch.compile backend"):
        tiny(compile="fastest").validate()
