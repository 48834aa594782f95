"""tools/ema_gain.py on tiny runs of a synthetic image folder: from one training state it scores the EMA generator
exactly as train() scored it, and the raw G exactly as a run of the same seed without an EMA scored its G (the EMA
never feeds back into training); a state without an EMA is refused."""
import importlib.util
import json
import sys
from pathlib import Path
from unittest import mock

import pytest
import torch

import gan_helpers as gh

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("ema_gain", ROOT / "tools" / "ema_gain.py")
ema_gain = importlib.util.module_from_spec(spec)
spec.loader.exec_module(ema_gain)


def train(tmp: Path, data: Path, net: Path, name: str, *sets: str) -> Path:
    assert gh.main([str(a) for a in ("train", "dcgan", "--iters", 3, "--out", tmp / name, "--data-dir", data,
                                     "--feature-net", net, "--eval-every", 3, "--eval-samples", 12, "--set", "g_ch=4",
                                     "d_ch=4", "batch_size=4", "val_size=6", *sets)]) == 0
    return tmp / name / "last.pt"


def run_tool(state: Path, data: Path, net: Path, out: Path) -> dict:
    argv = ["ema_gain.py", str(state), "--data-dir", str(data), "--feature-net", str(net), "--json", str(out)]
    with mock.patch.object(sys, "argv", argv):
        ema_gain.main()
    return json.loads(out.read_text())


def test_the_raw_and_ema_generators_score_as_their_runs_scored_them(tmp_path):
    data, net = tmp_path / "folder", tmp_path / "features.pt"
    images = gh.synthetic_images(48, num_classes=2, seed=0, size=32)
    for c, name in enumerate(("cat", "dog")):
        picked = images.x[images.y == c]
        gh.save_pngs(gh.to_float(picked), data / name, [f"{i:03d}" for i in range(len(picked))])
    with gh.warnings_ignored():
        torch.jit.script(gh.RandomFeatures()).save(str(net))
    with_ema = train(tmp_path, data, net, "ema", "ema_decay=0.5", "ema_start=1")
    without = train(tmp_path, data, net, "raw", "ema_decay=0")
    result = run_tool(with_ema, data, net, tmp_path / "gain.json")
    assert result["iteration"] == 3 and result["seeds"] == [ema_gain.EVAL_SEED, 1, 2] and result["n_fake"] == 12
    stored_ema = gh.load_checkpoint(with_ema)["history"]["eval"][-1]["fd"]
    stored_raw = gh.load_checkpoint(without)["history"]["eval"][-1]["fd"]
    assert result["fd_ema"][0] == pytest.approx(stored_ema, rel=1e-9, abs=1e-12)
    assert result["fd_raw"][0] == pytest.approx(stored_raw, rel=1e-9, abs=1e-12)
    assert result["fd_raw"][0] != result["fd_ema"][0]
    assert result["raw_minus_ema"] == [r - e for r, e in zip(result["fd_raw"], result["fd_ema"])]
    with pytest.raises(SystemExit, match="no training state with an EMA"):
        run_tool(without, data, net, tmp_path / "refused.json")
