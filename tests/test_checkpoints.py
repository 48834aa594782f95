"""Checkpoints: clear errors for corrupt or foreign files; the shipped generators sample as they did."""
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
