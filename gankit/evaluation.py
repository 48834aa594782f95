"""Test-set scores and the final evaluation (the 8x8 grid and the test-set FID of the best generator)."""
from __future__ import annotations

from pathlib import Path
from typing import Any
import torch
import torch.nn as nn

from .core import GanError, TEST_SAMPLES
from .device import setup
from .config import Config
from .data import check_split, load_dataset
from .sampling import sample
from .features import FeatureNet, Stats, load_feature_net, real_stats
from .measures import EVAL_SEED, format_diversity, format_score, sample_and_score
from .probes import cluster_accuracy, format_probes, probe_encoder
from .checkpoints import generator_from_checkpoint, load_checkpoint
from .plots import show_grid

__all__ = ['validation_stats', 'test_set_score', 'final_evaluation']


def validation_stats(data_dir: str | Path, features: FeatureNet, stats_dir: str | Path | None = None,
                     cfg: Config | None = None) -> Stats:
    """Statistics of the validation split of cfg (default: Config(), CIFAR-10's 5,000 of split seed 0) that
    train() scores against, cached in `stats_dir` (default <data_dir>/fid_stats)."""
    _, val = load_dataset(cfg or Config(), data_dir)
    return real_stats(val, "val", features, stats_dir or Path(data_dir) / "fid_stats")


def test_set_score(G: nn.Module, data_dir: str | Path, features: FeatureNet, n: int = TEST_SAMPLES,
                   stats_dir: str | Path | None = None, split: dict[str, Any] | None = None,
                   seed: int = EVAL_SEED) -> dict[str, Any]:
    """The final numbers: n generated images vs the test images of G's dataset (load_dataset with G.config:
    CIFAR-10's 10,000 test images by default). `split`, a checkpoint's record, must match the test set
    found in data_dir (check_split). Frechet distance, KID, IS and class accuracy (as evaluate_generator),
    the classifier's accuracy on the test images themselves ("real_class_acc"), diversity() of the samples
    next to the test images' ("diversity"), nearest_neighbour_ratio() against as many test images ("nn_ratio"),
    precision, recall, density and coverage against the test images ("prdc") and those of n training images
    (the first n of the training part's fixed shuffle; fewer if it has fewer) against the same test images
    ("real_prdc", the real-vs-real reference); under "data", where the test images came from. Real
    statistics are cached in `stats_dir` (default <data_dir>/fid_stats).
    An InfoGAN G with a categorical code also gets its cluster_accuracy() ("clusters", n images in all, when the
    net has a classifier), a BiGAN G the linear probe of its encoder (probe_encoder(), "probe": trained on the
    training split of its dataset, scored on these test images)."""
    train, test = load_dataset(G.config, data_dir, ("train", "test"))
    if split is not None:
        check_split(split, test)
    stats_dir = stats_dir or Path(data_dir) / "fid_stats"
    real = real_stats(test, "test", features, stats_dir)
    second_real = real_stats(train.subset(torch.arange(min(n, len(train)))), "train", features, stats_dir)
    result = sample_and_score(G, real, features, n, seed, test, second_real.features)
    result["data"] = test.source
    if G.config.info_cat and features.classifier is not None:
        result["clusters"] = cluster_accuracy(G, features.classifier, max(n // G.config.info_cat, 1), seed)
    if getattr(G, "encoder", None) is not None:
        result["probe"] = probe_encoder(G, train, test)
    return result


def final_evaluation(ckpt: str | Path = "model/sagan_best.pt", data_dir: str | Path = "data", n: int = TEST_SAMPLES,
                     feature_net: str | Path | None = None, fid_weights: str | Path | None = None,
                     device: str | None = None, grid_path: str | Path | None = None,
                     show: bool = True, classifier: str | Path | None = None) -> dict[str, Any] | None:
    """Load the best generator, show (and/or save) an 8x8 grid and print the test-set FID, KID, IS and class
    accuracy of its dataset (n generated vs the test images of the split it recorded; CIFAR-10: 10,000; see
    test_set_score) and the diversity measures. `classifier`: see load_classifier (None: the kit's copy).
    When the test images or the Inception weights are missing, the grid is still shown and one line says
    what is missing and how to supply it; returns None then."""
    import matplotlib.pyplot as plt
    device = setup(0, device)
    ckpt_info = load_checkpoint(ckpt)
    G = generator_from_checkpoint(ckpt_info, ckpt, device)
    best = ckpt_info.get("metrics") or {}
    print(f"{ckpt}: {G.config.name} ({G.config.arch}), iteration {ckpt_info['iteration']}"
          + (f", selected by validation {format_score(best)}" if best else ""))
    fig, ax = plt.subplots(figsize=(8, 8))
    k = G.config.cond_classes
    order = f"labels 0-{k - 1} repeat in reading order" if k else "unconditional"
    show_grid(sample(G, 64, seed=0), nrow=8, title=f"{G.config.name}: 64 samples ({order})", ax=ax)
    if grid_path is not None:
        fig.savefig(grid_path, bbox_inches="tight", dpi=100)
    if show:
        plt.show()
    plt.close(fig)
    try:
        features = load_feature_net(feature_net, fid_weights, device, classifier)
        result = test_set_score(G, data_dir, features, n, split=ckpt_info.get("split"))
    except GanError as exc:
        print(f"test-set FID not computed: {exc}")
        return None
    print(f"test set ({result['data']}): {format_score(result)}")
    print(f"diversity: {format_diversity(result)}")
    for key in ("clusters", "probe"):
        if key in result:
            print(format_probes(result[key]))
    return result
