"""Differentiable augmentation and bCR's consistency term."""
import dataclasses
from unittest import mock

import pytest
import torch
from helpers import step_and_its_draws

import gan_helpers as gh
import gankit


def _bce_d(real, fake):
    return -torch.log(torch.sigmoid(real)).mean() - torch.log(1 - torch.sigmoid(fake)).mean()


def images(n: int = 16, size: int = 8) -> torch.Tensor:
    return torch.rand(n, 3, size, size, generator=torch.Generator().manual_seed(0)) * 2 - 1


def shifted(x: torch.Tensor, dy: int, dx: int) -> torch.Tensor:
    """x (C, H, W) moved down dy and right dx pixels, zeros where nothing moved in."""
    out = torch.zeros_like(x)
    h, w = x.shape[1:]
    out[:, max(dy, 0):h + min(dy, 0), max(dx, 0):w + min(dx, 0)] = x[:, max(-dy, 0):h - max(dy, 0),
                                                                      max(-dx, 0):w - max(dx, 0)]
    return out


def test_consistency_regularisation_adds_the_squared_logit_changes_to_the_d_loss():
    """cr_weight (bCR): D's loss gains cr_weight x (E[(D(x) - D(T(x)))^2] on real + the same on generated
    images), T being consistency_shift (here a plain mirror image, so the hand computation can repeat it)."""
    with mock.patch.object(gankit.step, "consistency_shift", lambda x: x.flip(3)):
        G0, D0, D, real, y_real, y_fake, z, out = step_and_its_draws("projection", cr_weight=2.5)
    with torch.no_grad():
        fake = G0(z, y_fake)
        r, f = D0(real, y_real), D0(fake, y_fake)
        r_shift, f_shift = D0(real.flip(3), y_real), D0(fake.flip(3), y_fake)
        d_expected = _bce_d(r, f) + 2.5 * ((r - r_shift).pow(2).mean() + (f - f_shift).pow(2).mean())
    assert (r - r_shift).abs().max() > 1e-3          # the term is not zero here
    assert out["d_loss"] == pytest.approx(d_expected.item(), rel=1e-5)


def test_consistency_shift_flips_and_shifts_each_image_within_an_eighth():
    torch.manual_seed(0)
    x = torch.rand(64, 3, 32, 32) + 1                 # positive everywhere: uncovered borders read 0
    y = gankit.augment.consistency_shift(x)
    mirrored = 0
    for a, b in zip(x, y):
        inside = b[0] != 0
        rows, cols = inside.any(1).nonzero().flatten(), inside.any(0).nonzero().flatten()
        dy, dx = 32 - len(rows), 32 - len(cols)
        assert dy <= 4 and dx <= 4
        top, left = rows[0].item(), cols[0].item()
        window = b[:, top:top + 32 - dy, left:left + 32 - dx]
        src_top, src_left = (0 if top else dy), (0 if left else dx)
        same, mirror = (torch.equal(window, s[:, src_top:src_top + 32 - dy, src_left:src_left + 32 - dx])
                        for s in (a, a.flip(2)))
        assert same or mirror
        mirrored += mirror
    assert 10 < mirrored < 54                         # about half the images are mirrored (binomial, p = 0.5)


def test_translation_moves_each_image_by_at_most_an_eighth_with_a_zero_border():
    x = images(32, 16)
    torch.manual_seed(1)
    y = gankit.augment.augment_translation(x)
    moves = set()
    for a, b in zip(x, y):
        found = [(dy, dx) for dy in range(-2, 3) for dx in range(-2, 3) if torch.equal(shifted(a, dy, dx), b)]
        assert len(found) == 1          # random pixels: exactly one shift in range reproduces it
        moves.add(found[0])
    assert len(moves) > 5                # the shift is drawn per image


def test_cutout_zeroes_one_square_of_half_the_side_cut_at_the_border():
    x = images(32, 16) * 0.5 + 0.6      # no pixel of the input is zero
    torch.manual_seed(2)
    y = gankit.augment.augment_cutout(x)
    for a, b in zip(x, y):
        cut = (b == 0).all(dim=0)
        assert torch.equal(b[:, ~cut], a[:, ~cut]) and (b[:, cut] == 0).all()
        rows, cols = cut.any(1).nonzero().flatten(), cut.any(0).nonzero().flatten()
        assert cut.sum() == len(rows) * len(cols)                       # a rectangle
        assert 4 <= len(rows) <= 8 and 4 <= len(cols) <= 8              # half of 16, cut at most in half
        assert (len(rows) == 8 or rows[0] == 0 or rows[-1] == 15) and (len(cols) == 8 or cols[0] == 0 or cols[-1] == 15)


def test_color_is_an_affine_map_of_each_image_within_the_documented_ranges():
    x = images(64, 4)
    torch.manual_seed(3)
    y = gankit.augment.augment_color(x)
    torch.manual_seed(3)
    b, s, c = (torch.rand(64, 1, 1, 1) for _ in range(3))
    bright = x + b - 0.5
    grey = bright.mean(1, keepdim=True)
    sat = (bright - grey) * 2 * s + grey
    mean = sat.mean((1, 2, 3), keepdim=True)
    torch.testing.assert_close(y, (sat - mean) * (c + 0.5) + mean)


def test_gradients_pass_through_every_transform_and_none_is_the_identity():
    x = images().requires_grad_(True)
    state = torch.get_rng_state()
    assert gankit.augment.diff_augment(x, "none") is x and torch.equal(torch.get_rng_state(), state)
    gankit.augment.diff_augment(x, "color,translation,cutout").sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


@pytest.mark.parametrize("policy", ["flip", "translation,translation", "translation;cutout", ""])
def test_bad_policies_name_the_choices(policy):
    with pytest.raises(gh.GanError, match="diffaug=translation,cutout"):
        gh.Config(diffaug=policy).validate()


@pytest.mark.slow
def test_training_with_augmentation_resumes_exactly(tmp_path):
    train, val = gh.train_val_split(gh.synthetic_images(120), val_size=40)
    features = gh.load_feature_net(gh.RandomFeatures())
    cfg = gh.Config.sagan(g_ch=8, d_ch=8, z_dim=16, batch_size=8, iters=4, eval_every=2, checkpoint_every=2,
                          eval_samples=20, ema_decay=0, diffaug="color,translation,cutout", lipschitz="gp")
    straight = gh.train(cfg, tmp_path / "a", train, val, features, progress=False)
    gh.train(dataclasses.replace(cfg, iters=2), tmp_path / "b", train, val, features, progress=False)
    resumed = gh.train(cfg, tmp_path / "b", train, val, features, progress=False, resume=True)
    assert resumed["d_loss"] == straight["d_loss"] and resumed["g_loss"] == straight["g_loss"]
