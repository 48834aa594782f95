"""tools/rescore_validation.py on a tiny run of a synthetic image folder: a checkpoint scored again on its own
validation split with train()'s sample count and sampling seed gives the score it stored; another seed moves it."""
import importlib.util
import json
import sys
from pathlib import Path
from unittest import mock

import pytest

import gan_helpers as gh
from helpers import two_class_folder_and_features

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("rescore_validation", ROOT / "tools" / "rescore_validation.py")
rescore = importlib.util.module_from_spec(spec)
spec.loader.exec_module(rescore)


def test_the_stored_validation_score_is_reproduced_and_another_seed_moves_it(tmp_path):
    data, net = two_class_folder_and_features(tmp_path)
    assert gh.main([str(a) for a in ("train", "dcgan", "--iters", 2, "--out", tmp_path / "run", "--data-dir", data,
                                     "--feature-net", net, "--eval-every", 2, "--eval-samples", 12, "--set", "g_ch=4",
                                     "d_ch=4", "batch_size=4", "val_size=6")]) == 0
    best, out = tmp_path / "run" / "best.pt", tmp_path / "rescore.json"
    argv = ["rescore_validation.py", str(best), "--data-dir", str(data), "--feature-net", str(net), "--json", str(out)]
    with mock.patch.object(sys, "argv", argv):
        rescore.main()
    result = json.loads(out.read_text())
    entry = result["scores"][str(best)]
    assert result["seeds"] == [rescore.EVAL_SEED, 1] and entry["n_fake"] == 12
    assert entry["fd"][0] == pytest.approx(entry["stored"], rel=1e-9, abs=1e-12)   # train()'s samples, again
    assert entry["fd"][1] != entry["fd"][0]
    assert entry["iteration"] == gh.load_checkpoint(best)["iteration"]
