"""tools/train_classifier.py: the kit's CIFAR-10 evaluation classifier, trained on a tiny synthetic set."""
import importlib.util
import itertools
from pathlib import Path

import pytest
import torch

import gan_helpers as gh

_spec = importlib.util.spec_from_file_location("train_classifier",
                                               Path(gh.__file__).parent / "tools" / "train_classifier.py")
tc = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(tc)


def test_augment_keeps_pixels_and_shape():
    gh.setup(0, "cpu")
    x = torch.arange(2 * 3 * 8 * 8, dtype=torch.int64).remainder(251).add(1).to(torch.uint8).view(2, 3, 8, 8)
    out = tc.augment(x, pad=2)
    assert out.shape == x.shape and out.dtype == torch.uint8
    for a, b in zip(out, x):   # every non-padding pixel of a crop comes from the image (possibly flipped)
        kept = a[a > 0]
        assert set(kept.tolist()) <= set(b.flatten().tolist()) | set(b.flip(2).flatten().tolist())
        assert len(kept) >= 3 * 6 * 6


def test_learning_rate_warms_up_then_ends_at_zero():
    lr = [tc.learning_rate(s, 10, 5, 0.1) for s in range(50)]
    assert lr[0] == pytest.approx(0.01)
    assert max(lr) == pytest.approx(0.1) and lr[10] == pytest.approx(0.1)
    assert tc.learning_rate(50, 10, 5, 0.1) == pytest.approx(0.0)
    assert all(a >= b for a, b in itertools.pairwise(lr[10:]))


def test_trained_classifier_exports_and_learns(tmp_path):
    torch.set_num_threads(1)
    gh.setup(0, "cpu")
    data = gh.synthetic_images(300, 10)    # one seed: the same colour and place per class in both parts
    train, val = data.subset(torch.arange(200)), data.subset(torch.arange(200, 300))
    model, record = tc.train_classifier(train, val, epochs=4, batch_size=20, lr=0.05)
    assert record["epochs"] == 4 and len(record["val_accuracy_per_epoch"]) == 4
    assert record["val_accuracy"] == pytest.approx(max(record["val_accuracy_per_epoch"]))
    path = tmp_path / "sub" / "clf.pt"
    tc.export(model, path)
    assert [p.name for p in path.parent.iterdir()] == ["clf.pt"]   # no temporary file left behind
    loaded, name = gh.load_classifier(path)
    assert name == "clf"
    x = val.x.float() / 255                                         # (N, 3, 32, 32) in [0, 1]
    with torch.no_grad():
        logits = loaded(x)
        torch.testing.assert_close(logits, model(x))                # the file is the selected model
    assert logits.shape == (len(val), 10)
    assert torch.isfinite(logits).all()
    assert (logits.argmax(1) == val.y).float().mean().item() > 0.5  # chance is 0.1
    assert tc.accuracy(loaded, val) == pytest.approx(record["val_accuracy"])


def test_missing_data_folder_is_a_one_line_error(tmp_path, capsys):
    missing = tmp_path / "no-such-folder"
    with pytest.raises(SystemExit) as err:
        tc.main(["--data-dir", str(missing), "--out", str(tmp_path / "clf.pt")])
    message = str(err.value)
    assert "\n" not in message and str(missing) in message and "--data-dir" in message
    assert not (tmp_path / "clf.pt").exists()
