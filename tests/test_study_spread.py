"""tools/study_spread.py on a tiny study of a synthetic image folder: each finished run's nearest-neighbour ratio is
that of its best or last generator's samples against its own validation images (the last one as train() scored it),
plain and contrast-matched; unfinished runs are left out; arms are compared with the first by Welch's test."""
import importlib.util
import json
import sys
from pathlib import Path
from unittest import mock

import pytest

import gan_helpers as gh
from gankit.data import to_uint8
from gankit.measures import EVAL_SEED, nearest_neighbour_ratio
from helpers import two_class_folder_and_features

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("study_spread", ROOT / "tools" / "study_spread.py")
spread = importlib.util.module_from_spec(spec)
spec.loader.exec_module(spread)
pytestmark = pytest.mark.slow   # six tiny training runs of a study, then the tool
VAL = 6


def test_each_finished_run_gets_its_own_ratio_and_arms_are_tested_against_the_first(tmp_path, capsys):
    data, net = two_class_folder_and_features(tmp_path)
    study, runs = tmp_path / "tiny.json", tmp_path / "runs"
    study.write_text(json.dumps({"preset": "dcgan", "set": ["g_ch=4", "d_ch=4", "batch_size=4", "num_classes=2",
                                                            f"val_size={VAL}", "ema_decay=0.9", "ema_start=0"],
                                 "arms": {"w1": [], "w025": ["acgan_weight=0.25"]}, "seeds": [0, 1, 2], "iters": 2,
                                 "eval_every": 2, "eval_samples": VAL}))
    assert gh.main(["study", "run", str(study), "--data-dir", str(data), "--feature-net", str(net), "--runs-dir",
                    str(runs), "--device", "cpu", "--quiet"]) == 0
    (runs / "tiny" / "w025_s2" / "run.json").unlink()                  # as if that run had not finished
    argv = ["study_spread.py", str(study), "--data-dir", str(data), "--runs-dir", str(runs), "--n", str(VAL)]
    for generator in ("best", "last"):
        with mock.patch.object(sys, "argv", [*argv, "--generator", generator]):
            spread.main()
    spreads = [json.loads((runs / "tiny" / f"spread_{g}.json").read_text())["arms"] for g in ("best", "last")]
    best, last = ({arm: a["ratio"] for arm, a in s.items()} for s in spreads)
    matched = {arm: a["contrast_matched"] for arm, a in spreads[0].items()}
    assert (best["w1"]["n"], best["w025"]["n"], last["w1"]["n"], last["w025"]["n"]) == (3, 2, 3, 2)
    assert "w025_s2: not finished here (no run.json or best.pt)" in capsys.readouterr().out
    folder = runs / "tiny" / "w1_s1"
    G = gh.load_generator(folder / "best.pt")
    (val,) = gh.load_dataset(G.config, data, ("val",))
    # all VAL validation images: their order leaves the median nearest-neighbour distance alone
    fake = to_uint8(gh.sample(G, VAL, seed=EVAL_SEED))
    assert best["w1"]["values"][1] == pytest.approx(nearest_neighbour_ratio(fake, val.x), rel=1e-12)
    assert matched["w1"]["values"][1] == pytest.approx(nearest_neighbour_ratio(fake, val.x, match_contrast=True),
                                                       rel=1e-12)
    assert matched["w1"]["values"][1] != best["w1"]["values"][1]
    # the last generator is the one train() scored at the last iteration: its EMA with standing statistics
    G_last, features = gh.load_generator(folder / "last.pt"), gh.load_feature_net(str(net))
    real = gh.validation_stats(data, features, tmp_path / "stats", cfg=G_last.config)
    logged = gh.read_history(folder)["eval"][-1]
    assert logged["iter"] == 2 and gh.evaluate_generator(G_last, real, features, VAL)["fd"] == pytest.approx(
        logged["fd"], rel=1e-9, abs=1e-12)
    assert all(v > 0 for a in (*best.values(), *last.values()) for v in a["values"]) and best["w1"]["vs_first"] is None
    assert best["w025"]["vs_first"]["diff"] == pytest.approx(best["w025"]["mean"] - best["w1"]["mean"], rel=1e-12)
    assert best["w025"]["vs_first"]["p_holm"] == best["w025"]["vs_first"]["p"]     # a family of one test
    assert matched["w025"]["vs_first"]["diff"] == pytest.approx(matched["w025"]["mean"] - matched["w1"]["mean"],
                                                                rel=1e-12)
    with mock.patch.object(sys, "argv", [*argv[:-1], str(VAL + 1)]), pytest.raises(SystemExit, match="--n 6"):
        spread.main()
