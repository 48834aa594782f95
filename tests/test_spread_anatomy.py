"""tools/spread_anatomy.py: its measures on constructed images (a set against itself, duplicated samples, a pure
cosine's frequency band) and the tool on a tiny run of a synthetic image folder."""
import importlib.util
import json
import math
import sys
from pathlib import Path
from unittest import mock

import pytest
import torch
import torch.nn.functional as F

import gan_helpers as gh
from gankit.measures import nearest_neighbours
from helpers import two_class_folder_and_features

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("spread_anatomy", ROOT / "tools" / "spread_anatomy.py")
anatomy_tool = importlib.util.module_from_spec(spec)
spec.loader.exec_module(anatomy_tool)


def images(n: int, seed: int = 0) -> torch.Tensor:
    return torch.rand(n, 3, 32, 32, generator=torch.Generator().manual_seed(seed))


def test_a_set_against_itself_scores_one_everywhere():
    x, y = images(40), torch.arange(40) % 4
    out = anatomy_tool.anatomy(x, y, x, y, 4)
    assert out["ratio"] == 1 and out["ratio_contrast_matched"] == pytest.approx(1.0, rel=1e-6)
    assert set(out["ratio_pooled"].values()) == {1.0}
    assert out["contrast"]["fake"] == out["contrast"]["real"] and out["band_power_ratio"] == [1.0] * 4
    assert out["same_label_neighbour"]["fake"] == out["same_label_neighbour"]["real"]
    assert set(out["ratio_within_class"].values()) == {1.0}


def test_samples_that_come_in_near_copies_of_one_label_score_low_and_find_their_label():
    """Each sample has a near-copy (an 8x8 patch of one channel moved by 0.5: distance 0.5 x 8 = 4, 2 once pooled
    2x2) with its own label: the ratios are those distances over the real medians, and every nearest neighbour
    carries the sample's label (real images' only by chance)."""
    real, y_real = images(40, seed=1), torch.arange(40) % 4
    base = images(20, seed=2) * 0.5
    copy = base.clone()
    copy[:, 0, :8, :8] += 0.5
    fake, y_fake = torch.cat([base, copy]), torch.arange(40) % 20 % 4
    out = anatomy_tool.anatomy(fake, y_fake, real, y_real, 4)
    assert out["ratio"] == pytest.approx(4 / float(nearest_neighbours(real)[0].median()), rel=1e-4)
    assert out["ratio_pooled"][2] == pytest.approx(2 / float(nearest_neighbours(F.avg_pool2d(real, 2))[0].median()),
                                                   rel=1e-4)
    assert out["same_label_neighbour"]["fake"] == 1.0 and out["same_label_neighbour"]["real"] < 0.5


def test_a_cosine_puts_its_power_in_its_band():
    """Grey cosines at 0.28 cycles per pixel (9/32) along x: all power in the third band (0.25 to 0.375)."""
    cols = torch.arange(32.0)
    phases = torch.rand(8, 1, generator=torch.Generator().manual_seed(0)) * 2 * math.pi
    wave = torch.cos(2 * math.pi * 9 / 32 * cols + phases)                          # (8, 32)
    x = wave[:, None, None, :].expand(8, 3, 32, 32)
    power = anatomy_tool.band_power(x)
    assert power[2] > 0 and torch.all(power[[0, 1, 3]] < 1e-9 * power[2])


def test_the_tool_on_a_tiny_run_writes_what_it_prints(tmp_path, capsys):
    data, net = two_class_folder_and_features(tmp_path)
    assert gh.main([str(a) for a in ("train", "dcgan", "--iters", 2, "--out", tmp_path / "run", "--data-dir", data,
                                     "--feature-net", net, "--eval-every", 2, "--eval-samples", 12, "--set", "g_ch=4",
                                     "d_ch=4", "batch_size=4", "val_size=6")]) == 0
    out = tmp_path / "anatomy.json"
    argv = ["spread_anatomy.py", str(tmp_path / "run" / "best.pt"), "--data-dir", str(data), "--n", "6",
            "--json", str(out)]
    with mock.patch.object(sys, "argv", argv):
        anatomy_tool.main()
    result = json.loads(out.read_text())
    assert result["n"] == 6 and set(result["ratio_within_class"]) == {"0", "1"}
    assert f"nearest-neighbour ratio {result['ratio']:.3f}" in capsys.readouterr().out
    with mock.patch.object(sys, "argv", [*argv[:5], "7"]), pytest.raises(SystemExit, match="--n 6"):
        anatomy_tool.main()
