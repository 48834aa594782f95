"""Compact training states (gankit/states.py): a tiny run saved compact keeps its weights within bf16 rounding and
everything else exact, expands into a last.pt that train() resumes and trains on, and a kept state is replaced
only by the same run moved on by --min-advance iterations."""
import dataclasses
from pathlib import Path

import pytest
import torch
from helpers import tiny, write_image_tree
from torch.testing import assert_close

import gan_helpers as gh
from gankit.files import save_atomic
from gankit.states import expand_state, pack_state, resume_from_state, state_history, write_compact_state

BF16 = dict(rtol=2 ** -8, atol=0)   # bf16 keeps 8 significant bits: round-to-nearest moves a value by <= 2**-9 of it


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory) -> tuple[Path, tuple[gh.ImageSet, gh.ImageSet], object]:
    """A 4-iteration SAGAN (with EMA, spectral norm, attention) on synthetic images: its folder, data, features."""
    out = tmp_path_factory.mktemp("run")
    data = gh.train_val_split(gh.synthetic_images(300), val_size=60)
    features = gh.load_feature_net(gh.RandomFeatures(), classifier=gh.random_classifier())
    gh.train(tiny(), out, *data, features, progress=False)
    return out, data, features


def test_compact_state_keeps_weights_within_bf16_rounding_and_the_rest_exact(tiny_run):
    out, _, _ = tiny_run
    state = gh.load_checkpoint(out / "last.pt")
    compact = pack_state(state)
    G, D = gh.build_models(gh.Config.from_dict(state["config"]))
    buffers = {"G": dict(G.named_buffers()), "G_ema": dict(G.named_buffers()), "D": dict(D.named_buffers())}
    assert any(name.endswith("_u") for name in buffers["D"])                 # spectral norm's vectors are buffers
    for key in ("G", "G_ema", "D"):
        for name, value in state[key].items():
            packed = compact[key][name]
            exact = name in buffers[key] or not value.is_floating_point()
            assert packed.dtype == (value.dtype if exact else torch.bfloat16), name
            assert_close(packed.float() if packed.is_floating_point() else packed, value,
                         **({"rtol": 0, "atol": 0} if exact else BF16))
    expanded = expand_state(compact)
    for key in ("opt_g", "opt_d"):
        for i, per_param in state[key]["state"].items():
            assert_close(expanded[key]["state"][i]["step"], per_param["step"], rtol=0, atol=0)
            for moment in ("exp_avg", "exp_avg_sq"):
                assert compact[key]["state"][i][moment].dtype == torch.bfloat16
                assert_close(expanded[key]["state"][i][moment], per_param[moment], **BF16)
        assert expanded[key]["param_groups"] == state[key]["param_groups"]
    assert expanded["kind"] == "train_state" and expanded["config"] == state["config"]
    assert expanded["iteration"] == state["iteration"] == 4
    assert_close(expanded["rng"]["torch"], state["rng"]["torch"], rtol=0, atol=0)
    history = expanded["history"]
    assert history["iter"] == state["history"]["iter"] == [1, 2, 3, 4]
    assert history["eval"] == state["history"]["eval"] and history["segments"] == state["history"]["segments"]
    assert history["d_loss"] == pytest.approx(state["history"]["d_loss"], rel=1e-6, abs=1e-6)
    assert isinstance(compact["history"]["d_loss"], torch.Tensor) and compact["history"]["iter"].dtype == torch.int32


def test_compact_state_resumes_and_trains_on(tiny_run, tmp_path):
    out, data, features = tiny_run
    state_file, resumed = tmp_path / "states" / "tiny.pt", tmp_path / "resumed"
    assert write_compact_state(out, state_file).startswith(f"wrote {state_file} (iteration 4")
    assert state_file.stat().st_size < 0.6 * (out / "last.pt").stat().st_size
    cfg, note = resume_from_state(state_file, resumed, "sagan")
    assert note.startswith(f"resuming from {state_file} (iteration 4), expanded into {resumed / 'last.pt'}")
    G = gh.load_generator(resumed / "last.pt")                       # the loaded weights are the saved ones, rounded
    saved = gh.load_checkpoint(out / "last.pt")["G_ema"]
    for name, value in G.named_parameters():                         # (BatchNorm statistics: standing ones)
        assert_close(value.detach(), saved[name], **BF16)
    history = gh.train(dataclasses.replace(cfg, iters=6), resumed, *data, features, resume=True,
                       progress=False)
    assert history["iter"] == [1, 2, 3, 4, 5, 6] and [e["iter"] for e in history["eval"]] == [0, 2, 4, 6]
    assert [s["from_iter"] for s in history["segments"]] == [0, 4]
    _, again = resume_from_state(state_file, resumed, "sagan")             # its own last.pt is further on: kept
    assert again.startswith(f"resuming from {resumed / 'last.pt'} (iteration 6), not {state_file} (iteration 4)")
    assert gh.load_checkpoint(resumed / "last.pt")["iteration"] == 6


def test_a_kept_state_is_replaced_only_by_the_same_run_moved_on(tiny_run, tmp_path, capsys):
    out, _, _ = tiny_run
    target = tmp_path / "tiny.pt"
    assert gh.main(["state", "pack", str(out), str(target)]) == 0     # no state yet: written
    before = target.read_bytes()
    assert gh.main(["state", "pack", str(out / "last.pt"), str(target)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "move on by at least 2,000 iterations first" in err and "--min-advance" in err
    assert target.read_bytes() == before
    assert gh.main(["state", "pack", str(target), str(target), "--min-advance", "0"]) == 0   # a state packs itself
    other = pack_state(gh.load_checkpoint(out / "last.pt"))
    other["config"] = {**other["config"], "name": "other"}
    save_atomic(other, tmp_path / "other.pt")
    with pytest.raises(gh.GanError, match="it holds run 'sagan', not 'other'"):
        write_compact_state(tmp_path / "other.pt", target, min_advance=0)
    with pytest.raises(gh.GanError, match="holds only a generator"):
        write_compact_state(out / "best.pt", tmp_path / "new.pt")


@pytest.mark.slow
def test_cli_train_resume_from_continues_a_compact_state(tmp_path, capsys):
    """`train dcgan --resume-from STATE` on a fresh folder: the state's config (no --set needed), trained on."""
    write_image_tree(tmp_path / "data", gh.synthetic_images(60))
    with gh.warnings_ignored():
        torch.jit.script(gh.RandomFeatures()).save(str(tmp_path / "features.pt"))
    common = ["--data-dir", str(tmp_path / "data"), "--feature-net", str(tmp_path / "features.pt"), "--val-size", "20",
              "--eval-every", "1", "--eval-samples", "20", "--device", "cpu", "--classifier", "none"]
    assert gh.main(["train", "dcgan", "--iters", "2", "--out", str(tmp_path / "run"), *common,
                    "--set", "g_ch=8", "d_ch=8", "batch_size=8"]) == 0
    assert gh.main(["state", "pack", str(tmp_path / "run"), str(tmp_path / "dcgan.pt")]) == 0
    assert gh.main(["train", "dcgan", "--resume-from", str(tmp_path / "dcgan.pt"), "--iters", "3",
                    "--out", str(tmp_path / "gpu"), *common]) == 0
    assert "resuming from" in capsys.readouterr().out
    history = state_history(tmp_path / "gpu")
    assert history["iter"] == [1, 2, 3] and gh.Config.from_dict(gh.load_checkpoint(tmp_path / "gpu" / "last.pt")
                                                                ["config"]).g_ch == 8
    assert gh.main(["train", "sagan", "--resume-from", str(tmp_path / "dcgan.pt"), "--out", str(tmp_path / "x"),
                    *common]) == 2
    assert "holds run 'dcgan': train dcgan --resume-from" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()                              # refused before anything was written
