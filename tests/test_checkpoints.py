"""Checkpoints: clear errors for corrupt or foreign files; the shipped generators sample as they did."""
import json
from pathlib import Path

import pytest
import torch
from torch.testing import assert_close

import gan_helpers as gh

ROOT = Path(__file__).resolve().parents[1]


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


def test_shipped_checkpoints_sample_as_before():
    """The shipped generators (saved by an earlier version of the kit) load and give the images they gave then
    (tests/fixtures/shipped_samples.pt)."""
    reference = torch.load(ROOT / "tests" / "fixtures" / "shipped_samples.pt")
    for name, images in reference.items():
        G = gh.load_generator(ROOT / "model" / f"{name}.pt")
        assert_close(gh.sample(G, len(images), seed=7), images, rtol=0, atol=1e-5)


def test_every_file_under_model_loads_in_todays_format():
    """Every checkpoint, history and study result under model/ (many written by earlier versions of the kit) reads
    through the one migration (migrate_record, with migrate_config for configs) into what today's code reads:
    generators rebuild, training states carry both clocks, histories have segments and CPU time, results tables
    give each arm's test against the baseline."""
    import gankit
    model = ROOT / "model"
    checkpoints = [p for p in sorted(model.rglob("*.pt")) if p.parent.name != "eval"]   # eval/: TorchScript
    assert len(checkpoints) >= 2
    for path in checkpoints:
        ckpt = gh.load_checkpoint(path)
        if ckpt["kind"] == "generator":
            assert gankit.checkpoints.generator_from_checkpoint(ckpt, path).config.img_size > 0
            assert {"data", "features_key", "validation_sha256"} <= set(ckpt["summary"]) and ckpt["metrics"]
        else:
            assert ckpt["cpu_seconds"] <= ckpt["seconds"] and isinstance(ckpt["history"]["segments"], list)
    histories = sorted(p for p in model.rglob("*history.json*") if p.name.endswith(gankit.checkpoints.HISTORY_FILES))
    assert len(histories) >= 50 and any(p.suffix == ".gz" for p in histories)
    for path in histories:
        history = gankit.checkpoints.read_history(path)
        assert isinstance(history["segments"], list), path
        assert all("cpu_seconds" in e for e in history["eval"] if "seconds" in e), path
    results = sorted(model.rglob("results*.json"))
    assert len(results) >= 10
    for path in results:
        found = json.loads(path.read_text())
        assert f"| best vs {found['baseline']} |" in gh.study_table(found) and "last 3" in gh.study_table(found), path


def test_a_compressed_history_reads_as_the_json_it_replaced_and_the_json_wins_while_a_run_writes_it(tmp_path):
    from gankit.checkpoints import compress_history, history_file, read_history
    history = {"iter": [1, 2], "d_loss": [0.5, -1.25], "g_loss": [2.0, 3.5], "eval": [{"iter": 2, "fd": 4.0}],
               "segments": [{"from_iter": 0, "code": "abc", "device": "cpu"}]}
    (tmp_path / "history.json").write_text(json.dumps(history))
    assert read_history(tmp_path) == read_history(tmp_path / "history.json") == history
    gz = compress_history(tmp_path)
    assert gz == tmp_path / "history.json.gz" and not (tmp_path / "history.json").exists()
    assert read_history(tmp_path) == read_history(gz) == history
    first = gz.read_bytes()
    (tmp_path / "history.json").write_text(json.dumps(history))
    assert compress_history(tmp_path).read_bytes() == first          # no timestamp inside: same history, same bytes
    newer = {**history, "iter": [1, 2, 3]}
    (tmp_path / "history.json").write_text(json.dumps(newer))         # a resumed run writes the JSON again
    assert history_file(tmp_path) == tmp_path / "history.json" and read_history(tmp_path) == newer
    (tmp_path / "empty").mkdir()
    with pytest.raises(gh.GanError, match="no history.json or history.json.gz in"):
        read_history(tmp_path / "empty")


def test_write_history_writes_json_or_gzip_by_name_and_the_same_history_gives_the_same_bytes(tmp_path):
    from gankit.checkpoints import read_history, write_history
    history = {"iter": [1, 2, 3], "d_loss": [0.5, -1.25, 0.125], "eval": [{"iter": 3, "fd": 2.5}], "segments": []}
    plain, packed = write_history(history, tmp_path / "a.json"), write_history(history, tmp_path / "a.json.gz")
    assert json.loads(plain.read_text()) == history and packed.read_bytes()[:2] == b"\x1f\x8b"    # gzip's magic
    assert read_history(packed) == read_history(plain) == history
    again = write_history(history, tmp_path / "b.json.gz")
    assert again.read_bytes() == packed.read_bytes() and sorted(p.name for p in tmp_path.iterdir()) == \
        ["a.json", "a.json.gz", "b.json.gz"]                                # no temporary file left behind


def test_a_training_states_ema_generator_loads_with_standing_statistics(tmp_path):
    """load_generator(last.pt) gives the EMA generator as train() scores it: the BatchNorm statistics it carries
    (copied from the trained G) are replaced by standing ones of its own weights; a generator checkpoint keeps
    its statistics as saved."""
    import gankit
    train_data, val_data = gh.train_val_split(gh.synthetic_images(60, num_classes=3), val_size=20)
    features = gh.load_feature_net(gh.RandomFeatures(), classifier=gh.random_classifier())
    cfg = gh.Config.dcgan(g_ch=8, d_ch=8, batch_size=4, iters=2, eval_every=2, eval_samples=20, checkpoint_every=2,
                          ema_decay=0.9, ema_start=0, val_size=20, num_classes=3)
    gh.train(cfg, tmp_path, train_data, val_data, features, progress=False)
    state = gh.load_checkpoint(tmp_path / "last.pt")
    for key in state["G_ema"]:                                   # statistics that belong to no weights
        if key.endswith("running_var"):
            state["G_ema"][key] = state["G_ema"][key] * 7
    torch.save(state, tmp_path / "odd.pt")
    expected = gh.build_models(cfg)[0]
    expected.load_state_dict(state["G_ema"])
    expected = gh.standing_batch_norm(gh.to_device(expected, "cpu"),
                                      gankit.sampling.standing_batches(cfg.eval_samples))
    loaded = gh.load_generator(tmp_path / "odd.pt")
    for name, value in expected.state_dict().items():
        assert_close(loaded.state_dict()[name], value, rtol=0, atol=0)
    var = "norms.0.bn.running_var"
    assert not torch.allclose(loaded.state_dict()[var], state["G_ema"][var])
    best = gh.load_checkpoint(tmp_path / "best.pt")
    assert_close(gh.load_generator(tmp_path / "best.pt").state_dict()[var], best["G"][var], rtol=0, atol=0)
