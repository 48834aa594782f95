"""tools/rescore_ema.py on tiny runs of a synthetic image folder: from one training state it scores the EMA generator
with standing statistics exactly as train() scored it, and the trained G exactly as a run of the same seed without
an EMA scored its G (the EMA never feeds back into training); a state without an EMA is refused."""
import importlib.util
import json
import sys
from pathlib import Path
from unittest import mock

import pytest

import gan_helpers as gh
from helpers import two_class_folder_and_features

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("rescore_ema", ROOT / "tools" / "rescore_ema.py")
rescore_ema = importlib.util.module_from_spec(spec)
spec.loader.exec_module(rescore_ema)


def train(tmp: Path, data: Path, net: Path, name: str, *sets: str) -> Path:
    assert gh.main([str(a) for a in ("train", "dcgan", "--iters", 3, "--out", tmp / name, "--data-dir", data,
                                     "--feature-net", net, "--eval-every", 3, "--eval-samples", 12, "--set", "g_ch=4",
                                     "d_ch=4", "batch_size=4", "val_size=6", *sets)]) == 0
    return tmp / name / "last.pt"


def rescore(state: Path, data: Path, net: Path, out: Path) -> dict:
    argv = ["rescore_ema.py", str(state), "--seeds", str(rescore_ema.EVAL_SEED), "1", "--data-dir", str(data),
            "--feature-net", str(net), "--json", str(out)]
    with mock.patch.object(sys, "argv", argv):
        rescore_ema.main()
    return json.loads(out.read_text())


def test_the_trained_and_ema_generators_score_as_their_runs_scored_them(tmp_path):
    data, net = two_class_folder_and_features(tmp_path)
    with_ema = train(tmp_path, data, net, "ema", "ema_decay=0.5", "ema_start=1")
    without = train(tmp_path, data, net, "raw", "ema_decay=0")
    result = rescore(with_ema, data, net, tmp_path / "ema.json")
    assert result["iteration"] == 3 and result["seeds"] == [rescore_ema.EVAL_SEED, 1] and result["ema_decay"] == 0.5
    fd = {name: [s["fd"] for s in result[name]] for name in ("copied_bn_stats", "standing_bn_stats", "trained_G")}
    stored_ema = gh.load_checkpoint(with_ema)["history"]["eval"][-1]["fd"]
    stored_raw = gh.load_checkpoint(without)["history"]["eval"][-1]["fd"]
    assert fd["standing_bn_stats"][0] == pytest.approx(stored_ema, rel=1e-9, abs=1e-12)
    assert fd["trained_G"][0] == pytest.approx(stored_raw, rel=1e-9, abs=1e-12)
    assert fd["trained_G"][0] != fd["standing_bn_stats"][0] and fd["trained_G"][1] != fd["trained_G"][0]
    assert result["trained_G_minus_ema_fd"] == [g - e for g, e in zip(fd["trained_G"], fd["standing_bn_stats"])]
    with pytest.raises(SystemExit, match="not a training state with an EMA generator"):
        rescore(without, data, net, tmp_path / "refused.json")
