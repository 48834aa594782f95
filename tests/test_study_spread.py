"""tools/study_spread.py on a tiny study of a synthetic image folder: each finished run's nearest-neighbour ratio is
that of its best generator's samples against its own validation images; unfinished runs are left out; arms are
compared with the first by Welch's test."""
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
                                                            f"val_size={VAL}"],
                                 "arms": {"w1": [], "w025": ["acgan_weight=0.25"]}, "seeds": [0, 1, 2], "iters": 2,
                                 "eval_every": 2, "eval_samples": VAL}))
    assert gh.main(["study", "run", str(study), "--data-dir", str(data), "--feature-net", str(net), "--runs-dir",
                    str(runs), "--device", "cpu", "--quiet"]) == 0
    (runs / "tiny" / "w025_s2" / "run.json").unlink()                  # as if that run had not finished
    argv = ["study_spread.py", str(study), "--data-dir", str(data), "--runs-dir", str(runs), "--n", str(VAL)]
    with mock.patch.object(sys, "argv", argv):
        spread.main()
    arms = json.loads((runs / "tiny" / "spread.json").read_text())["arms"]
    assert (arms["w1"]["n"], arms["w025"]["n"]) == (3, 2)
    assert "w025_s2: not finished here" in capsys.readouterr().out
    G = gh.load_generator(runs / "tiny" / "w1_s1" / "best.pt")
    (val,) = gh.load_dataset(G.config, data, ("val",))
    # all VAL validation images: their order leaves the median nearest-neighbour distance alone
    assert arms["w1"]["values"][1] == pytest.approx(
        nearest_neighbour_ratio(to_uint8(gh.sample(G, VAL, seed=EVAL_SEED)), val.x), rel=1e-12)
    assert all(v > 0 for a in arms.values() for v in a["values"]) and arms["w1"]["vs_first"] is None
    assert arms["w025"]["vs_first"]["diff"] == pytest.approx(arms["w025"]["mean"] - arms["w1"]["mean"], rel=1e-12)
    with mock.patch.object(sys, "argv", [*argv[:-1], str(VAL + 1)]), pytest.raises(SystemExit, match="--n 6"):
        spread.main()
