"""tools/measure_more_gans.py on a tiny study of the same four arms (2 iterations, two seeds, a synthetic image
folder): finished runs only, each measured once, the file written whole after every run, the summary and the Welch
tests equal to numpy's and gh.welch's, and a second run that changes nothing."""
import importlib.util
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

import gan_helpers as gh
import gankit
from helpers import write_image_tree

_spec = importlib.util.spec_from_file_location("measure_more_gans",
                                               Path(gh.__file__).parent / "tools" / "measure_more_gans.py")
mm = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(mm)

ARMS = {"dcgan": [], "infogan": ["info_cat=3", "info_cont=1"],
        "codes-no-mi": ["info_cat=3", "info_cont=1", "info_weight=0"], "bigan": ["encoder=bigan"]}


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    """A folder with data/ (60 synthetic images of 3 classes in train/ and test/), tiny.json and runs/: every run
    of the tiny study trained to its end but dcgan seed 1 (not started)."""
    root = tmp_path_factory.mktemp("more_gans")
    write_image_tree(root / "data", gh.synthetic_images(60, num_classes=3))
    (root / "tiny.json").write_text(json.dumps({
        "preset": "ref_dcgan", "set": ["g_ch=8", "d_ch=8", "z_dim=8", "batch_size=4", "val_size=10"], "arms": ARMS,
        "seeds": [0, 1], "iters": 2, "eval_every": 2, "eval_samples": 20}))
    features = gh.load_feature_net(gh.RandomFeatures(), classifier=gh.random_classifier())
    gankit.studies.run_study(gh.load_study(root / "tiny.json"), root / "data", features, root / "runs", stats_dir=root / "stats",
                 progress=False, only=lambda arm, seed: (arm, seed) != ("dcgan", 1))
    return root


@pytest.fixture
def study(tmp_path, trained) -> Path:
    """A copy of `trained` to change (runs unfinished, diverged, measured)."""
    shutil.copytree(trained, tmp_path, dirs_exist_ok=True)
    return tmp_path


def measure(root: Path, *more: str) -> dict:
    """Run the tool on `root`'s study; the file it wrote."""
    mm.main(["--study", str(root / "tiny.json"), "--runs-dir", str(root / "runs"), "--data-dir", str(root / "data"),
             "--per-value", "10", *more])
    return json.loads(out(root).read_text())


def out(root: Path) -> Path:
    return root / "runs" / "tiny" / "measures.json"


def refuse_to_measure(monkeypatch) -> None:
    def refuse(*args, **kwargs):
        raise AssertionError("measured a run already measured")
    monkeypatch.setattr(gh, "cluster_accuracy", refuse)
    monkeypatch.setattr(gh, "probe_encoder", refuse)


def test_only_finished_runs_are_measured_and_a_second_run_changes_nothing(study, monkeypatch, capsys):
    (study / "runs" / "tiny" / "bigan_s1" / "run.json").unlink()                          # still training
    diverged = study / "runs" / "tiny" / "codes-no-mi_s1" / "run.json"
    diverged.write_text(json.dumps({**json.loads(diverged.read_text()), "diverged": "loss above 1e6"}))
    first = measure(study)
    assert list(first["runs"]) == ["infogan_s0", "codes-no-mi_s0", "bigan_s0", "infogan_s1"]   # dcgan: nothing
    assert first["runs"]["infogan_s0"]["measures"]["n_images"] == 30 and first["welch"] == []  # one codes-no-mi seed
    probe = first["runs"]["bigan_s0"]
    assert (probe["measures"]["n_train"], probe["measures"]["n_test"]) == (50, 60)             # the whole split
    assert probe["iteration"] == gh.load_checkpoint(study / "runs" / "tiny" / "bigan_s0" / "best.pt")["iteration"]
    assert "python tools/measure_more_gans.py --study" in probe["command"]
    assert "infogan_s1" in capsys.readouterr().out
    text = out(study).read_text()
    refuse_to_measure(monkeypatch)
    assert measure(study) == first and out(study).read_text() == text
    assert list(out(study).parent.glob("*.tmp")) == []


def test_runs_finished_later_are_added_with_their_summary_and_welch_tests(study, monkeypatch):
    run_json = study / "runs" / "tiny" / "bigan_s1" / "run.json"
    kept = run_json.read_text()
    run_json.unlink()
    first = measure(study)
    run_json.write_text(kept)                                                           # bigan seed 1 finishes
    measured, probe_encoder = [], gh.probe_encoder

    def counted(G, *args, **kwargs):
        measured.append(G)
        return probe_encoder(G, *args, **kwargs)
    monkeypatch.setattr(gh, "probe_encoder", counted)
    later = measure(study)
    assert len(measured) == 1 and set(later["runs"]) == set(first["runs"]) | {"bigan_s1"}
    assert all(later["runs"][k] == r for k, r in first["runs"].items())
    assert later["summary"]["bigan"]["encoder"]["n"] == 2 and later["summary"]["bigan"]["encoder"]["seeds"] == [0, 1]
    m = later["runs"]["bigan_s1"]["measures"]
    assert m["encoder_minus_pixels"] == pytest.approx(m["encoder"] - m["pixels"])
    tests = {(t["a"], t["b"]): t for t in later["welch"]}
    assert set(tests) == {("infogan cluster_acc", "codes-no-mi cluster_acc"), ("bigan encoder", "bigan random_encoder"),
                          ("bigan encoder", "bigan pixels")}
    acc = {arm: [later["runs"][f"{arm}_s{s}"]["measures"]["cluster_acc"] for s in (0, 1)]
           for arm in ("infogan", "codes-no-mi")}
    expected = gh.welch(acc["infogan"], acc["codes-no-mi"])
    found = tests[("infogan cluster_acc", "codes-no-mi cluster_acc")]
    assert {k: found[k] for k in expected} == pytest.approx(expected)


def test_a_failure_midway_leaves_the_runs_measured_before_it_in_valid_json(study, monkeypatch):
    def fail(*args, **kwargs):
        raise RuntimeError("killed")
    monkeypatch.setattr(gh, "probe_encoder", fail)
    with pytest.raises(RuntimeError, match="killed"):
        measure(study)
    assert list(json.loads(out(study).read_text())["runs"]) == ["infogan_s0", "codes-no-mi_s0"]  # bigan_s0 failed
    assert list(out(study).parent.glob("*.tmp")) == []


def test_again_measures_every_finished_run_afresh_with_the_same_numbers(study, monkeypatch):
    first = measure(study)
    again = measure(study, "--again")
    assert set(again["runs"]) == set(first["runs"])
    assert again["summary"]["infogan"]["cluster_acc"] == first["summary"]["infogan"]["cluster_acc"]  # seeded draws
    assert again["runs"]["bigan_s1"]["command"].endswith("--again")


def test_summary_and_welch_tests_are_numpys_and_scipys_on_values_that_differ():
    acc = {"infogan": [0.21, 0.17, 0.25], "codes-no-mi": [0.12, 0.13]}
    runs = {f"{arm}_s{seed}": {"arm": arm, "seed": seed, "measures": {"cluster_acc": v, "shuffled_acc": 0.1},
                               "train_cpu_seconds": 600.0 + seed}
            for arm, vs in acc.items() for seed, v in enumerate(vs)}
    runs["bigan_s0"] = {"arm": "bigan", "seed": 0, "train_cpu_seconds": 800.0,
                        "measures": {"encoder": 0.46, "random_encoder": 0.48, "pixels": 0.40}}
    summary = mm.summarise(runs)
    for arm, v in acc.items():
        s = summary[arm]["cluster_acc"]
        assert (s["mean"], s["std"], s["n"]) == (pytest.approx(np.mean(v)), pytest.approx(np.std(v, ddof=1)), len(v))
    assert summary["infogan"]["train_cpu_seconds"]["mean"] == pytest.approx(601.0)
    assert summary["bigan"]["encoder"] == {"mean": 0.46, "std": None, "n": 1, "seeds": [0]}
    (test,) = mm.compare(runs)                          # one bigan seed: no test of the encoder
    from scipy import stats
    scipy = stats.ttest_ind(acc["infogan"], acc["codes-no-mi"], equal_var=False)
    assert (test["a"], test["b"], test["n_a"], test["n_b"]) == ("infogan cluster_acc", "codes-no-mi cluster_acc", 3, 2)
    assert (test["t"], test["p"], test["diff"]) == (pytest.approx(scipy.statistic), pytest.approx(scipy.pvalue),
                                                    pytest.approx(np.mean(acc["infogan"]) - 0.125))
