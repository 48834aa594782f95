"""What InfoGAN's codes and BiGAN's encoder learnt about CIFAR-10's classes without labels: the cluster accuracy of
the categorical code (images per code value, classified, codes matched to classes by the Hungarian algorithm) and a
linear probe of the encoder's features (logistic regression on the training split, accuracy on the test split),
each beside a baseline that carries no learnt information."""
from __future__ import annotations

from typing import Any
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from scipy.optimize import linear_sum_assignment
from torch import Tensor

from .core import GanError, batched
from .device import device_of, eval_mode
from .data import ImageSet, to_float
from .build import build_models
from .sampling import generate, latents
from .features import load_classifier

__all__ = ['matched_accuracy', 'cluster_accuracy', 'logistic_probe', 'encoder_features', 'probe_encoder', 'format_probes']


def matched_accuracy(clusters: np.ndarray | Tensor, classes: np.ndarray | Tensor) -> tuple[float, dict[int, int]]:
    """Accuracy of cluster ids (N,) as predictions of classes (N,) under the best one-to-one matching of clusters to
    classes (the Hungarian algorithm on their contingency table, scipy's linear_sum_assignment), and that
    matching {cluster: class}. Items of a cluster left unmatched (more clusters than classes) count as wrong."""
    clusters, classes = np.asarray(clusters, np.int64), np.asarray(classes, np.int64)
    counts = np.zeros((clusters.max() + 1, classes.max() + 1))          # (clusters, classes)
    np.add.at(counts, (clusters, classes), 1)
    rows, cols = linear_sum_assignment(counts, maximize=True)
    return float(counts[rows, cols].sum() / len(clusters)), dict(zip(rows.tolist(), cols.tolist()))


@torch.no_grad()
def cluster_accuracy(G: nn.Module, classifier: nn.Module | None = None, per_value: int = 500,
                     seed: int = 0) -> dict[str, Any]:
    """InfoGAN's categorical code as a clustering of CIFAR-10: per_value images for each code value (z and the
    continuous codes from latents(G, ..., seed)), classified by `classifier` (images in [0, 1] -> logits; None:
    the kit's CIFAR-10 classifier, load_classifier()), code values matched to classes (matched_accuracy).
    Returns cluster_acc, the matching, and as a baseline shuffled_acc: the same predictions with the code values
    shuffled (what matching alone finds in codes that say nothing about the images)."""
    cfg = G.config
    if cfg.info_cat < 2:
        raise GanError("cluster accuracy needs an InfoGAN generator with a categorical code: train with info_cat >= 2")
    if classifier is None:
        found = load_classifier()
        if found is None:
            raise GanError("no classifier: pass classifier= (a module, images in [0, 1] -> logits), or put the "
                           "kit's copy at model/eval/cifar10_classifier.pt")
        classifier = found[0]
    n = per_value * cfg.info_cat
    z, y = latents(G, n, seed=seed)
    values = torch.arange(n) // per_value                               # (n,): value of each image's code
    z[:, cfg.z_dim:cfg.z_dim + cfg.info_cat] = F.one_hot(values, cfg.info_cat).to(z.dtype)
    images = generate(G, z, y).add(1).div(2)                            # (n, 3, S, S) in [0, 1]
    device = next(iter(classifier.parameters()), torch.empty(0)).device
    with eval_mode(classifier):
        pred = batched(lambda x: classifier(x).argmax(1), images, batch_size=500, device=device)
    acc, mapping = matched_accuracy(values, pred)
    shuffled = values[torch.randperm(n, generator=torch.Generator().manual_seed(seed))]
    return {"cluster_acc": acc, "mapping": mapping, "shuffled_acc": matched_accuracy(shuffled, pred)[0],
            "per_value": per_value, "predicted_classes": np.bincount(pred.numpy(), minlength=10).tolist()}


def logistic_probe(train_x: Tensor, train_y: Tensor, test_x: Tensor, test_y: Tensor, steps: int = 200,
                   weight_decay: float = 1e-3) -> dict[str, float]:
    """A linear probe: multinomial logistic regression on features (N, F), standardised with the training
    features' mean and standard deviation, fitted by full-batch L-BFGS (`steps` iterations) on cross-entropy plus
    weight_decay * ||W||^2 from zero weights (a convex problem: one answer, no seed). Returns its accuracy on the
    training and on the test features."""
    train_x, test_x = train_x.double(), test_x.double()
    mean, std = train_x.mean(0), train_x.std(0).clamp_min(1e-6)
    train_x, test_x = (train_x - mean) / std, (test_x - mean) / std
    k = int(max(train_y.max(), test_y.max())) + 1
    w = torch.zeros(train_x.shape[1], k, dtype=torch.float64, requires_grad=True)
    b = torch.zeros(k, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([w, b], max_iter=steps, line_search_fn="strong_wolfe")

    def closure() -> Tensor:
        opt.zero_grad()
        loss = F.cross_entropy(train_x @ w + b, train_y) + weight_decay * w.pow(2).sum()
        loss.backward()
        return loss

    opt.step(closure)
    with torch.no_grad():
        return {f"{name}_acc": ((x @ w + b).argmax(1) == y).double().mean().item()
                for name, x, y in (("train", train_x, train_y), ("test", test_x, test_y))}


def encoder_features(G: nn.Module, images: Tensor, part: str = "trunk", batch_size: int = 500) -> Tensor:
    """What BiGAN's encoder makes of images (N, 3, S, S) in [-1, 1]: its trunk's features (N, F) (part="trunk",
    Encoder.features, before its last linear layer) or its latents (N, z_dim) (part="z"); in eval mode on G's
    device, returned on the CPU."""
    if getattr(G, "encoder", None) is None:
        raise GanError("this generator has no encoder: train with encoder='bigan'")
    if part not in ("trunk", "z"):
        raise GanError(f"part={part!r}: choose 'trunk' (the conv features) or 'z' (the encoder's latents)")
    layer = G.encoder.features if part == "trunk" else G.encoder
    with eval_mode(G):
        return batched(lambda x: layer(x).float(), images, batch_size=batch_size, device=device_of(G))


def probe_encoder(G: nn.Module, train: ImageSet, test: ImageSet, n_train: int = 10_000, n_test: int = 10_000,
                  steps: int = 200, seed: int = 0, part: str = "trunk") -> dict[str, Any]:
    """Test accuracy of logistic_probe() on n_train training images (a fixed draw from `seed`) and n_test test
    images: on the trained encoder's features (encoder_features(..., part)), on those of the same encoder as it
    was initialised (the run's own starting weights: build_models(G.config)), and on raw pixels."""
    pick = torch.randperm(len(train), generator=torch.Generator().manual_seed(seed))[:n_train]
    train, test = train.subset(pick.to(train.y.device)), test.subset(torch.arange(min(n_test, len(test)), device=test.y.device))
    x_train, x_test = to_float(train.x.cpu()), to_float(test.x.cpu())
    y_train, y_test = train.y.cpu(), test.y.cpu()
    untrained, _ = build_models(G.config)
    result: dict[str, Any] = {"n_train": len(train), "n_test": len(test), "part": part}
    for name, model in (("encoder", G), ("random_encoder", untrained.to(device_of(G)))):
        feats = encoder_features(model, x_train, part), encoder_features(model, x_test, part)
        result[name] = logistic_probe(feats[0], y_train, feats[1], y_test, steps)["test_acc"]
    result["pixels"] = logistic_probe(x_train.flatten(1), y_train, x_test.flatten(1), y_test, steps)["test_acc"]
    return result


def format_probes(result: dict[str, Any]) -> str:
    """One line from probe_encoder() or cluster_accuracy()."""
    if "cluster_acc" in result:
        return (f"cluster accuracy of the categorical code {result['cluster_acc']:.3f} (shuffled codes "
                f"{result['shuffled_acc']:.3f}; {result['per_value']} images per value)")
    return (f"linear probe test accuracy: encoder ({result['part']}) {result['encoder']:.3f}, randomly initialised encoder "
            f"{result['random_encoder']:.3f}, pixels {result['pixels']:.3f} ({result['n_train']} training, "
            f"{result['n_test']} test images)")
