"""Data: image-folder trees, class subsets, sizes, the fixed split, missing data in one line."""
import dataclasses
from pathlib import Path
from unittest import mock

import numpy as np
import pytest
import torch
from helpers import tiny_cfg, write_folder

import gan_helpers as gh
import gankit
from gan_helpers import Config, GanError


@pytest.fixture(scope="module")
def data() -> tuple[gh.ImageSet, gh.ImageSet]:
    return gh.train_val_split(gh.synthetic_images(300), val_size=60)


def test_image_folder_tree_loads_with_labels(tmp_path):
    imgs = gh.synthetic_images(20, num_classes=2)
    for split in ("train", "test"):
        for c, name in enumerate(imgs.classes):
            sel = imgs.y == c
            gh.save_pngs(gh.to_float(imgs.x[sel]), tmp_path / split / name, [f"{i}" for i in range(int(sel.sum()))])
    loaded = gh.load_cifar10(tmp_path, train=False)
    assert loaded.x.shape == (20, 3, 32, 32) and loaded.x.dtype == torch.uint8
    assert loaded.classes == imgs.classes
    assert torch.equal(torch.bincount(loaded.y), torch.tensor([10, 10]))


def test_missing_data_and_failed_download_names_the_option(tmp_path):
    import torchvision
    with mock.patch.object(torchvision.datasets, "CIFAR10", side_effect=OSError("no network")):
        with pytest.raises(gh.GanError, match="--data-dir"):
            gh.load_cifar10(tmp_path / "nothing", train=True)


def test_split_is_fixed_and_disjoint():
    data = gh.synthetic_images(100)
    tr1, va1 = gh.train_val_split(data, 10)
    tr2, va2 = gh.train_val_split(data, 10)
    assert torch.equal(va1.x, va2.x) and len(tr1) == 90 and len(va1) == 10
    assert torch.equal(torch.sort(torch.cat([tr1.y, va1.y])).values, torch.sort(data.y).values)


def test_uint8_round_trip_is_exact():
    x = torch.arange(256, dtype=torch.uint8).view(1, 1, 16, 16).expand(1, 3, 16, 16)
    assert torch.equal(gankit.data.to_uint8(gh.to_float(x)), x)


def test_folder_without_test_split_is_split_three_ways(tmp_path):
    write_folder(tmp_path, 40, 32)
    cfg = Config(val_size=6, split_seed=3)
    train, val, test = gh.load_dataset(cfg, tmp_path, ("train", "val", "test"))
    assert (len(train), len(val), len(test)) == (28, 6, 6)
    rows = {p: {tuple(x.flatten().tolist()) for x in s.x} for p, s in (("train", train), ("val", val), ("test", test))}
    assert not (rows["train"] & rows["val"]) and not (rows["train"] & rows["test"]) and not (rows["val"] & rows["test"])
    assert train.classes == ("cat", "dog") and test.split["test"] == "held out" and test.split["dataset"] == "folder"
    (again,) = gh.load_dataset(cfg, tmp_path, ("test",))
    assert torch.equal(again.x, test.x)                               # fixed by split_seed
    (other,) = gh.load_dataset(dataclasses.replace(cfg, split_seed=4), tmp_path, ("test",))
    assert not torch.equal(other.x, test.x) and other.key != test.key  # another split, another cache key


def test_images_are_centre_cropped_and_resized(tmp_path):
    from PIL import Image
    wide = np.zeros((40, 60, 3), np.uint8)
    wide[:, :, 0] = 255                                                # red margins
    wide[:, 10:50] = (0, 0, 255)                                       # the centred 40x40 square is blue
    (tmp_path / "a").mkdir()
    Image.fromarray(wide).save(tmp_path / "a" / "wide.png")
    x = gankit.data.read_image_folder(tmp_path, size=32).x
    assert x.shape == (1, 3, 32, 32)
    assert torch.equal(x[0, :, 0, 0], torch.tensor([0, 0, 255], dtype=torch.uint8))
    assert int(x[0, 0].max()) == 0                                     # no red survives the crop


def test_class_subset_relabels_and_trains(tmp_path):
    imgs = gh.synthetic_images(60, num_classes=3)                      # airplane, automobile, bird
    for part in ("train", "test"):
        for c, name in enumerate(imgs.classes):
            gh.save_pngs(gh.to_float(imgs.x[imgs.y == c]), tmp_path / part / name, [f"{i}" for i in range(20)])
    cfg = Config.sagan(classes=("bird",), cond="projection", val_size=4, g_ch=8, d_ch=8, batch_size=4, iters=2,
                       eval_every=2, eval_samples=8, checkpoint_every=2, ema_decay=0.0)
    train, val = gh.load_dataset(cfg, tmp_path)
    assert train.classes == ("bird",) and len(train) == 16 and int(train.y.max()) == 0
    birds = {x.numpy().tobytes() for x in imgs.x[imgs.y == 2]}
    assert all(x.numpy().tobytes() in birds for x in torch.cat([train.x, val.x]))
    cfg = gh.config_for_data(cfg, train)
    assert cfg.num_classes == 1
    history = gh.train(cfg, tmp_path / "run", train, val, gh.load_feature_net(gh.RandomFeatures()), progress=False)
    assert len(history["iter"]) == 2
    with pytest.raises(GanError, match="not in"):
        gh.load_dataset(dataclasses.replace(cfg, classes=("deer",)), tmp_path)


def test_data_that_does_not_fit_the_config_is_refused():
    data = gh.synthetic_images(20, num_classes=3, size=64)
    with pytest.raises(GanError, match="img_size=64"):
        gankit.data.check_data(tiny_cfg(img_size=32), data)
    with pytest.raises(GanError, match="num_classes=3"):
        gankit.data.check_data(tiny_cfg(img_size=64, num_classes=10), data)
