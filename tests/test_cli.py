"""The command line end to end: train, sample, publish, evaluate, a 64-pixel folder run."""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import write_folder, write_image_tree

import gan_helpers as gh
from gan_helpers import GanError

pytestmark = pytest.mark.slow      # every test here runs the command line in a new process


def _run_cli(*argv: str) -> None:
    assert gh.main([str(a) for a in argv]) == 0


ROOT = Path(__file__).resolve().parents[1]


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "gan_helpers.py"), *args], capture_output=True, text=True,
                          cwd=cwd, env={"PYTHONPATH": str(ROOT), "PATH": "", "MPLBACKEND": "Agg"})


@pytest.fixture(scope="module")
def cli_run(tmp_path_factory) -> Path:
    """A tiny image-folder CIFAR, a TorchScript proxy network and a 2-iteration DCGAN run made by the CLI."""
    root = tmp_path_factory.mktemp("cli")
    imgs = gh.synthetic_images(60)
    write_image_tree(root / "data", imgs)
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
    assert gh.read_history(cli_run / "published" / "tiny_history.json.gz") == \
        json.loads((cli_run / "run" / "history.json").read_text())
    assert "published/tiny_history.json.gz" in r.stdout


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


def test_64px_folder_trains_from_the_cli_resumes_exactly_samples_and_scores(tmp_path, capsys):
    """The issue's first command on a 64x64 folder without test split: train, resume, sample, evaluate."""
    data, net = tmp_path / "faces", tmp_path / "features.pt"
    write_folder(data, 48, 64)
    with gh.warnings_ignored():
        torch.jit.script(gh.RandomFeatures()).save(str(net))
    common = ["--data-dir", data, "--feature-net", net, "--eval-every", 2, "--eval-samples", 12, "--set",
              "img_size=64", "cond=acgan", "g_ch=4", "d_ch=4", "batch_size=4", "val_size=6", "checkpoint_every=1"]
    _run_cli("train", "dcgan", "--iters", 3, "--out", tmp_path / "straight", *common)
    assert "G " in capsys.readouterr().out                                # parameter counts are printed
    _run_cli("train", "dcgan", "--iters", 2, "--out", tmp_path / "resumed", *common)
    _run_cli("train", "dcgan", "--iters", 3, "--out", tmp_path / "resumed", "--resume", *common)
    a, b = (gh.load_checkpoint(tmp_path / run / "last.pt") for run in ("straight", "resumed"))
    for key in ("G", "D"):
        for name, tensor in a[key].items():
            assert torch.equal(tensor, b[key][name]), name
    best = tmp_path / "straight" / "best.pt"
    split = gh.load_checkpoint(best)["split"]
    assert split == {**split, "dataset": "folder", "img_size": 64, "val_size": 6, "split_seed": 0,
                     "test": "held out", "class_names": ["cat", "dog"]}
    _run_cli("sample", best, "--n", 5, "--out", tmp_path / "s.npz")
    with np.load(tmp_path / "s.npz") as f:
        assert f["x"].shape == (5, 64, 64, 3)
    _run_cli("evaluate", best, "--data-dir", data, "--n", 12, "--feature-net", net, "--json", tmp_path / "e.json",
             "--grid", tmp_path / "grid.png")
    scores = json.loads((tmp_path / "e.json").read_text())
    assert scores["n_real"] == 6 and scores["n_fake"] == 12              # the held-out test images of its split
    other = tmp_path / "other"
    write_folder(other, 48, 64, classes=("ant", "bee"))
    G = gh.load_generator(best)
    with pytest.raises(GanError, match="not the split"):
        gh.test_set_score(G, other, gh.load_feature_net(str(net)), 12, stats_dir=tmp_path, split=split)


def test_bad_combination_on_the_command_line_is_one_line(capsys):
    assert gh.main(["train", "sagan", "--set", "spectral_norm=none", "--iters", "1"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: loss='wgan'") and "lipschitz='gp'" in err and "\n" not in err
