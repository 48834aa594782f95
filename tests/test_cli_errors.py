"""Bad input on the command line: one line naming the fix; exploding losses keep the last checkpoint; publish never
loses a model."""
import hashlib
import math
from pathlib import Path
from unittest import mock

import pytest
import torch
from helpers import tiny, write_image_tree

import gan_helpers as gh
import gankit


@pytest.fixture(scope="module")
def ws(tmp_path_factory) -> Path:
    """A workspace: data/ (image tree with one corrupt PNG in bad/), images/ (flat folder), features.pt, a
    2-iteration run in run/, and not_a_checkpoint.pt."""
    root = tmp_path_factory.mktemp("bad_input")
    imgs = gh.synthetic_images(40)
    write_image_tree(root / "data", imgs)
    gh.save_pngs(gh.to_float(imgs.x[:8]), root / "images", [str(i) for i in range(8)])
    for folder in ("bad/train/cat", "bad/test/cat", "bad_images"):
        gh.save_pngs(gh.to_float(imgs.x[:3]), root / folder, ["0", "1", "2"])
        (root / folder / "broken.png").write_bytes(b"this is not a PNG")
    with gh.warnings_ignored():
        torch.jit.script(gh.RandomFeatures()).save(str(root / "features.pt"))
    train, val = gh.train_val_split(gh.synthetic_images(120), 20)
    gh.train(tiny(iters=2), root / "run", train, val, gh.load_feature_net(gh.RandomFeatures()), progress=False)
    (root / "not_a_checkpoint.pt").write_text("hello")
    return root


def run_cli(argv: list[str], capsys) -> tuple[int, str]:
    """gan_helpers.main(argv) in this process: (exit status, stderr); argparse's SystemExit counts."""
    try:
        status = gh.main(argv)
    except SystemExit as exc:
        status = exc.code
    return status, capsys.readouterr().err


BAD = {   # command line -> a piece of the one line it must print
    "train": [
        ("train sagan --iters 0", "--iters: must be >= 1, got 0"),
        ("train sagan --iters -3", "--iters: must be >= 1, got -3"),
        ("train sagan --iters 1e3", "--iters: expected a whole number, got '1e3'"),
        ("train sagan --eval-every 0", "--eval-every: must be >= 1"),
        ("train sagan --eval-samples 1", "--eval-samples: must be >= 2"),
        ("train sagan --val-size many", "--val-size: expected a whole number"),
        ("train sagan --device gpu", "'gpu' is not a device name"),
        ("train sagan --time-limit 0", "--time-limit: must be > 0"),
        ("train sagan --time-limit soon", "--time-limit: expected a number of minutes"),
        ("train gan", "invalid choice: 'gan'"),
        ("train sagan --set", "--set: expected at least one argument"),
        ("train sagan --set g_ch=abc", "config g_ch='abc' is not a valid int"),
        ("train sagan --set g_lr=fast", "config g_lr='fast' is not a valid float"),
        ("train sagan --set spectral_norm=yes", "config spectral_norm='yes' is not one of ('none', 'd', 'gd')"),
        ("train sagan --set hflip=yes", "config hflip='yes' is not a valid bool"),
        ("train sagan --set g_attn=(8,'x')", "is not a valid tuple of int"),
        ("train sagan --set betas=0.5", "config betas=(0.5,) is not a valid tuple of 2 float"),
        ("train sagan --set g_ch=32 --set g_ch=64", "--set gives g_ch twice (32 and 64)"),
        ("train sagan --set batch_size=0", "config batch_size must be >= 1, got 0"),
        ("train sagan --set g_lr=-1e-4", "config g_lr must be > 0"),
        ("train sagan --set ema_decay=1.5", "config ema_decay must be in [0, 1)"),
        ("train sagan --set diverged_above=0", "config diverged_above must be > 0"),
        ("train sagan --set num_classes=-1", "config num_classes must be >= 0"),
        ("train sagan --set loss=mse", "config loss='mse' is not one of"),
        ("train sagan --set lr=1", "--set expects key=value with key one of"),
        ("train dcgan --data-dir {ws}/bad --feature-net {ws}/features.pt --val-size 2",
         "cannot read {ws}/bad/train/cat/broken.png"),
    ],
    "sample": [
        ("sample {ws}/run/best.pt --n 0 --out x.npz", "--n: must be >= 1, got 0"),
        ("sample {ws}/run/best.pt --seed -1 --out x", "--seed: must be >= 0, got -1"),
        ("sample {ws}/missing.pt --out x", "checkpoint {ws}/missing.pt not found"),
        ("sample {ws}/not_a_checkpoint.pt --out x", "is not a readable checkpoint"),
        ("sample {ws}/run/best.pt", "the following arguments are required: --out"),
    ],
    "fid": [
        ("fid {ws}/images {ws}/images --batch-size 0", "--batch-size: must be >= 1"),
        ("fid {ws}/nowhere {ws}/images --feature-net {ws}/features.pt", "neither an image folder nor an .npz"),
        ("fid {ws}/bad_images {ws}/images --feature-net {ws}/features.pt", "cannot read {ws}/bad_images/broken.png"),
        ("fid {ws}/images {ws}/images --feature-net {ws}/nothing.pt", "feature network {ws}/nothing.pt not found"),
    ],
    "publish": [
        ("publish {ws}/nowhere tiny --model-dir {ws}/published", "checkpoint {ws}/nowhere/best.pt not found"),
        ("publish {ws}/run", "the following arguments are required: name"),
    ],
    "evaluate": [
        ("evaluate {ws}/run/best.pt --n 1", "--n: must be >= 2, got 1"),
        ("evaluate {ws}/missing.pt", "checkpoint {ws}/missing.pt not found"),
        ("evaluate {ws}/run/best.pt --grid {ws}/no/such/folder/grid.png", "No such file or directory"),
    ],
}


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def fake_run(ws: Path, folder: Path, fd: float, **metrics) -> Path:
    """A copy of ws/run whose best.pt claims validation score `fd` (other metric fields overridable)."""
    ckpt = gh.load_checkpoint(ws / "run" / "best.pt")
    ckpt["metrics"] = {**ckpt["metrics"], "fd": fd, **metrics}
    gankit.files.save_atomic(ckpt, folder / "best.pt")
    (folder / "history.json").write_text((ws / "run" / "history.json").read_text())
    return folder


@pytest.mark.parametrize("command,line,expected", [(c, l, e) for c, cases in BAD.items() for l, e in cases],
                         ids=[l for cases in BAD.values() for l, _ in cases])
def test_bad_input_is_one_line(command, line, expected, ws, capsys, monkeypatch):
    monkeypatch.chdir(ws)
    argv = line.format(ws=ws).split()
    assert argv[0] == command
    status, err = run_cli(argv, capsys)
    assert status == 2
    assert err.count("\n") == 1 and err.startswith("error: ")
    assert expected.format(ws=ws) in err


def test_repeated_set_flags_all_apply():
    args = gankit.cli.build_parser().parse_args(["train", "sagan", "--set", "g_ch=32", "--set", "d_ch=16", "seed=3"])
    cfg = gh.Config.sagan().with_overrides(args.set)
    assert (cfg.g_ch, cfg.d_ch, cfg.seed) == (32, 16, 3)


def test_int_accepted_for_float_fields_and_strings_stay_strings():
    cfg = gh.Config.sagan().with_overrides(["g_lr=1", "name=123"])
    assert cfg.g_lr == 1 and cfg.name == "123"
    assert cfg.validate() is cfg


@pytest.mark.slow
@pytest.mark.parametrize("bad", [math.nan, math.inf, 1e14, -1e14])
def test_exploding_losses_stop_training_and_keep_the_last_checkpoint(bad, tmp_path):
    real_step = gh.train_step

    calls = []

    def step_then_explode(*args):   # from the third iteration on, G's loss is `bad`
        calls.append(1)
        logs = real_step(*args)
        return {**logs, "g_loss": torch.tensor(bad)} if len(calls) >= 3 else logs

    train, val = gh.train_val_split(gh.synthetic_images(120), 20)
    with mock.patch.object(gankit.training, "train_step", step_then_explode):
        expected = r"diverged at iteration 3 .*diverged_above=1e\+06.*iteration 2"
        with pytest.raises(gankit.training.TrainingDiverged, match=expected):
            gh.train(tiny(iters=6), tmp_path, train, val, gh.load_feature_net(gh.RandomFeatures()), progress=False)
    assert torch.load(tmp_path / "last.pt", weights_only=True)["iteration"] == 2


def test_divergence_threshold_is_the_config_field():
    logs = {"d_loss": 0.5, "g_loss": -999.0, "d_real": 1.0, "d_fake": 0.0}
    assert not gankit.training.diverged(logs, 1e3)
    assert gankit.training.diverged(logs, 998.0)
    assert gankit.training.diverged({**logs, "d_real": math.nan}, 1e6)
    assert gh.Config().diverged_above == 1e6


def test_publish_refuses_worse_and_incomparable_models_and_keeps_replaced_files(ws, tmp_path, capsys):
    model, samples = tmp_path / "model", tmp_path / "DCGAN"
    good = fake_run(ws, tmp_path / "good", 1.0)
    target = gh.publish(good, "tiny", model, sample_dir=samples)
    assert sorted(p.name for p in samples.iterdir())[:2] == ["00_airplane.png", "01_automobile.png"]
    published = {p: sha(p) for p in [target, model / "tiny_history.json.gz", *samples.iterdir()]}

    for run, reason in [(fake_run(ws, tmp_path / "worse", 2.0), "is not lower than the published 1"),
                        (fake_run(ws, tmp_path / "other_count", 0.5, n_fake=999), "generated images 999 vs 40"),
                        (fake_run(ws, tmp_path / "other_metric", 0.5, metric="FID"), "not comparable")]:
        with pytest.raises(gh.GanError, match="--force") as info:
            gh.publish(run, "tiny", model, sample_dir=samples)
        assert reason in str(info.value)
        assert "\n" not in str(info.value)
        assert {p: sha(p) for p in published} == published      # nothing touched
    status, err = run_cli(["publish", str(tmp_path / "worse"), "tiny", "--model-dir", str(model)], capsys)
    assert status == 2 and err.count("\n") == 1 and "pass --force" in err

    better = fake_run(ws, tmp_path / "better", 0.5)
    gh.publish(better, "tiny", model, sample_dir=samples)           # lower and comparable: no force needed
    assert gh.load_checkpoint(target)["metrics"]["fd"] == 0.5
    status, _ = run_cli(["publish", str(tmp_path / "worse"), "tiny", "--model-dir", str(model), "--force"], capsys)
    assert status == 0 and gh.load_checkpoint(target)["metrics"]["fd"] == 2.0

    kept = sorted((model / "replaced").iterdir())
    first = {p.relative_to(kept[0]) for p in kept[0].rglob("*") if p.is_file()}
    assert {Path("tiny_best.pt"), Path("tiny_history.json.gz"), Path("DCGAN/00_airplane.png")} <= first
    recovered = {p: sha(kept[0] / (p.name if p.parent == model else f"DCGAN/{p.name}")) for p in published}
    assert recovered == published                                   # the first published files, byte for byte


def test_publish_moves_an_uncompressed_history_of_an_earlier_version_aside(ws, tmp_path):
    model = tmp_path / "model"
    gh.publish(fake_run(ws, tmp_path / "good", 1.0), "tiny", model)
    legacy = model / "tiny_history.json"           # what publish wrote before histories were gzipped
    legacy.write_text((ws / "run" / "history.json").read_text())
    gh.publish(fake_run(ws, tmp_path / "better", 0.5), "tiny", model)
    assert not legacy.exists() and (model / "tiny_history.json.gz").is_file()
    assert [p.name for p in (model / "replaced").rglob("tiny_history.json")] == ["tiny_history.json"]


def test_publish_refusal_compares_like_with_like():
    metrics = {"fd": 1.0, "kid": 0.1, "kid_std": 0.01, "n_fake": 5000, "n_real": 5000,
               "metric": "FD (proxy: x features)"}
    def generator(**record):   # a checkpoint as load_checkpoint() gives it: summaries of old ones migrated
        return gankit.checkpoints.migrate_record("generator", {"kind": "generator", **record})

    old = generator(iteration=100, metrics=metrics, summary={"data": "image folder data/cifar10-jpeg/train"})
    new = generator(iteration=200, metrics={**metrics, "fd": 0.9},
                    summary={"data": "image folder /home/me/kit/data/cifar10-jpeg/train", "validation_sha256": "ab"})
    assert gankit.publishing.publish_refusal(new, old) is None                     # same data through another path
    moved = generator(**{**new, "summary": {"data": "image folder /home/me/other/train"}})
    assert "validation set" in gankit.publishing.publish_refusal(moved, old)
    hashed_old = generator(**{**old, "summary": {**old["summary"], "validation_sha256": "cd"}})
    assert "validation set 'ab' vs 'cd'" in gankit.publishing.publish_refusal(new, hashed_old)
    unscored = generator(**{**new, "metrics": None})
    assert "no validation score" in gankit.publishing.publish_refusal(unscored, old)
    assert "not lower" in gankit.publishing.publish_refusal({**new, "metrics": metrics}, old)  # equal is not better


def test_training_records_what_publishing_compares(ws):
    summary = gh.load_checkpoint(ws / "run" / "best.pt")["summary"]
    assert summary["features_key"] == gh.load_feature_net(gh.RandomFeatures()).key
    _, val = gh.train_val_split(gh.synthetic_images(120), 20)
    assert summary["validation_sha256"] == hashlib.sha256(val.x.numpy().tobytes()).hexdigest()[:16]
