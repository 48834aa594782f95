"""Feature networks: pytorch-fid's Inception (FID, IS) or a proxy TorchScript network, the class-accuracy
classifier, and cached real-image statistics."""
from __future__ import annotations

import contextlib
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator
import numpy as np
import torch
import torch.nn as nn
from torch import Tensor

from .core import GanError
from .data import ImageSet

__all__ = ['RandomFeatures', 'random_classifier', 'INCEPTION_WEIGHTS_FILE', 'NetOutputs', 'FeatureNet', 'KIT_CLASSIFIER', 'load_classifier', 'load_feature_net', 'warnings_ignored', 'Stats', 'real_stats']


class RandomFeatures(nn.Module):
    """A fixed, randomly initialised conv net (images in [0, 1] -> (N, 64)): the stand-in feature network
    of tests and smoke runs. Distances in its space are neither FID nor meaningful beyond relative changes."""

    def __init__(self, seed: int = 0):
        super().__init__()
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.net = nn.Sequential(nn.Conv2d(3, 32, 3, 2, 1), nn.ReLU(), nn.Conv2d(32, 64, 3, 2, 1), nn.ReLU(),
                                     nn.AdaptiveAvgPool2d(1), nn.Flatten())

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x * 2 - 1)


def random_classifier(num_classes: int = 10, seed: int = 0) -> nn.Module:
    """RandomFeatures followed by a fixed random linear head (images in [0, 1] -> logits (N, num_classes)):
    the stand-in classifier of tests and smoke runs, so the IS and class-accuracy paths run without
    ../shared. Its numbers mean nothing."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        head = nn.Linear(64, num_classes)
    return nn.Sequential(RandomFeatures(seed), head).eval()


INCEPTION_WEIGHTS_FILE = "pt_inception-2015-12-05-6726825d.pth"  # pytorch-fid's FID weights


class _InceptionOutputs(nn.Module):
    """pytorch-fid's InceptionV3 giving, from one forward pass, its 2048-d pool3 features (FID) and the
    1008 logits of its softmax layer (Inception Score). The logits are pool3 @ W without the bias, as the
    original TF code (improved-gan's inception_score.py) and torch-fidelity's "logits_unbiased" take them."""

    def __init__(self, inception: nn.Module, fc: nn.Linear):
        super().__init__()
        self.inception = inception
        self.fc = fc

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        pool = self.inception(x)[0].flatten(1)                          # (N, 2048)
        return pool, pool @ self.fc.weight.T                            # (N, 2048), (N, 1008)


class _ProxyOutputs(nn.Module):
    """A proxy feature network and, when given, a classifier whose logits serve the proxy IS:
    images in [0, 1] -> (features (N, D), logits (N, K) or None)."""

    def __init__(self, features: nn.Module, classifier: nn.Module | None):
        super().__init__()
        self.features = features
        self.classifier = classifier

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor | None]:
        return self.features(x), None if self.classifier is None else self.classifier(x)


def _fingerprint(module: nn.Module) -> str:
    """Short hash of a module's weights: the cache key of real-image statistics for that network."""
    h = hashlib.sha256()
    for t in module.state_dict().values():
        h.update(t.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()[:10]


@dataclass
class NetOutputs:
    """What one pass of a FeatureNet gives for a set of images."""
    features: np.ndarray               # (N, D) float64: Frechet distance and KID
    is_logits: np.ndarray | None       # (N, K): the logits of the Inception Score (None: no IS)
    class_logits: np.ndarray | None    # (N, C): a CIFAR-10 classifier's logits (None: no class accuracy)


@dataclass
class FeatureNet:
    """A network mapping images (N, 3, H, W) in [0, 1] to features (N, D) and, in the same forward pass,
    the logits of an Inception Score. Only pytorch-fid's Inception gives FID and IS; any other network
    gives a proxy Frechet distance, and a proxy IS from the classifier when there is one."""
    module: nn.Module              # images -> (features (N, D), IS logits (N, K) or None)
    label: str                     # "FID" or "FD (proxy: <name> features)": printed beside every number
    key: str                       # cache key (network name + weight hash of the feature layers)
    is_inception: bool
    is_label: str | None = None    # "IS" or "IS (proxy: <classifier>)"; None when there are no logits
    classifier: nn.Module | None = None  # CIFAR-10 classifier, images in [0, 1] -> logits (N, C): class accuracy
    class_label: str = ""          # "class accuracy (proxy: <classifier>)": printed beside class accuracies
    half: bool = False             # run the network under float16 autocast (load_feature_net: on by default on
                                   # CUDA). fp16, not bf16: FD moves by < 0.001 % with fp16 features but by
                                   # about 0.2 % with bf16 ones (tests/test_engine.py)

    @torch.no_grad()
    def outputs(self, images: Tensor, batch_size: int = 50, classify: bool = True) -> NetOutputs:
        """uint8 images (N, 3, H, W) -> NetOutputs (float64 arrays), computed in eval mode on the net's device;
        classify=False leaves class_logits None."""
        self.module.eval()
        device = next(iter(self.module.parameters()), torch.empty(0)).device
        feats, is_logits, class_logits = [], [], []
        for i in range(0, len(images), batch_size):
            x = images[i:i + batch_size].to(device).float().div(255.0)
            with torch.autocast(device.type, dtype=torch.float16, enabled=self.half):
                f, logits = self.module(x)
            feats.append(f.double().cpu())
            if logits is not None:
                is_logits.append(logits.double().cpu())
            if classify and self.classifier is not None:   # a proxy's IS logits are the classifier's: no second pass
                class_logits.append(is_logits[-1] if not self.is_inception else self.classifier.eval()(x).double().cpu())
        cat = lambda parts: torch.cat(parts).numpy() if parts else None
        return NetOutputs(torch.cat(feats).numpy(), cat(is_logits), cat(class_logits))

    def features(self, images: Tensor, batch_size: int = 50) -> np.ndarray:
        """uint8 images (N, 3, H, W) -> float64 features (N, D)."""
        return self.outputs(images, batch_size, classify=False).features

    @torch.no_grad()
    def class_logits(self, images: Tensor, batch_size: int = 500) -> np.ndarray:
        """uint8 images (N, 3, H, W) -> the classifier's logits (N, C), float64 (the classifier alone)."""
        if self.classifier is None:
            raise GanError("no classifier: pass classifier=PATH (--classifier), e.g. ../shared/eval/cifar10_classifier.pt")
        device = next(iter(self.classifier.parameters()), torch.empty(0)).device
        return torch.cat([self.classifier.eval()(images[i:i + batch_size].to(device).float().div(255.0)).double().cpu()
                          for i in range(0, len(images), batch_size)]).numpy()


# the kit's copy of ../shared/eval/cifar10_classifier.pt (model/eval/README.md): the default classifier
KIT_CLASSIFIER = Path(__file__).resolve().parents[1] / "model" / "eval" / "cifar10_classifier.pt"


def _load_torchscript(path: Path, what: str) -> nn.Module:
    if not path.is_file():
        raise GanError(f"{what} {path} not found: pass a TorchScript file taking images (N, 3, 32, 32) in [0, 1] "
                       f"(e.g. ../shared/eval/cifar10_features.pt, ../shared/eval/cifar10_classifier.pt)")
    with warnings_ignored():
        return torch.jit.load(str(path), map_location="cpu")


def load_classifier(spec: str | Path | nn.Module | None = None) -> tuple[nn.Module, str] | None:
    """(classifier, name) for class accuracy and the proxy IS: a module, a TorchScript file, or None for the
    kit's copy of the CIFAR-10 classifier (KIT_CLASSIFIER; when it is absent, and for "none": no classifier)."""
    if isinstance(spec, nn.Module):
        return spec.eval(), type(spec).__name__
    if spec is None:
        return load_classifier(KIT_CLASSIFIER) if KIT_CLASSIFIER.is_file() else None
    if str(spec).lower() == "none":
        return None
    path = Path(spec)
    return _load_torchscript(path, "classifier").eval(), path.stem


def load_feature_net(spec: str | Path | nn.Module | None = None, fid_weights: str | Path | None = None,
                     device: torch.device | str = "cpu", classifier: str | Path | nn.Module | None = None,
                     half: bool | None = None) -> FeatureNet:
    """spec None or "inception": pytorch-fid's InceptionV3 (weights from `fid_weights`, else pytorch-fid's
    usual route: the torch hub cache, then a download), which gives FID and IS. A module or a TorchScript
    file path: a proxy. `classifier` (see load_classifier) gives class accuracy, and with a proxy the
    proxy IS. `half` (default: on CUDA) computes features under float16 autocast; statistics stay in float64."""
    half = torch.device(device).type == "cuda" if half is None else half
    found = load_classifier(classifier)
    clf, clf_name = found if found is not None else (None, "")
    clf = clf.to(device) if clf is not None else None
    class_label = f"class accuracy (proxy: {clf_name})"
    if spec is None or spec == "inception":
        module = _InceptionOutputs(*_load_inception(fid_weights))
        return FeatureNet(module.to(device).eval(), "FID", "inception-" + _fingerprint(module.inception), True,
                          "IS", clf, class_label, half)
    if isinstance(spec, nn.Module):
        name, net = type(spec).__name__, spec
    else:
        name, net = Path(spec).stem, _load_torchscript(Path(spec), "feature network")
    return FeatureNet(_ProxyOutputs(net, clf).to(device).eval(), f"FD (proxy: {name} features)",
                      f"{name}-{_fingerprint(net)}", False, f"IS (proxy: {clf_name})" if clf is not None else None,
                      clf, class_label, half)


@contextlib.contextmanager
def warnings_ignored() -> Iterator[None]:
    """Silence TorchScript's deprecation FutureWarning (torch >= 2.14) while loading a proxy network."""
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        yield


def _load_inception(fid_weights: str | Path | None) -> tuple[nn.Module, nn.Linear]:
    """pytorch-fid's InceptionV3 up to pool3, and the final linear layer (1008 classes) of the same
    weights, which pytorch-fid builds and then drops: we keep it for the Inception Score."""
    from unittest import mock
    import pytorch_fid.inception as pfi
    block = pfi.InceptionV3.BLOCK_INDEX_BY_DIM[2048]
    built: list[nn.Module] = []
    build = pfi.fid_inception_v3
    keep_fc = mock.patch.object(pfi, "fid_inception_v3", lambda: built.append(build()) or built[-1])
    if fid_weights is not None:
        path = Path(fid_weights)
        if not path.is_file():
            raise GanError(f"FID weights file {path} not found (fid_weights / --fid-weights)")
        # pytorch-fid always fetches through load_state_dict_from_url; hand it the local file instead
        with keep_fc, mock.patch.object(pfi, "load_state_dict_from_url",
                                        lambda *a, **k: torch.load(path, map_location="cpu")):
            return pfi.InceptionV3([block]), built[0].fc
    try:
        with keep_fc:
            return pfi.InceptionV3([block]), built[0].fc
    except Exception as exc:  # offline: URLError / socket errors from the download
        cached = Path(torch.hub.get_dir()) / "checkpoints" / INCEPTION_WEIGHTS_FILE
        raise GanError(f"FID Inception weights are not in {cached} and could not be downloaded "
                       f"({type(exc).__name__}); pass fid_weights=PATH (--fid-weights) with {INCEPTION_WEIGHTS_FILE}, "
                       f"or feature_net=PATH (--feature-net) for an offline proxy metric (not FID)") from exc


@dataclass
class Stats:
    """Feature statistics of an image set: mean (D,), covariance (D, D) and the features (N, D) for KID."""
    mu: np.ndarray
    sigma: np.ndarray
    features: np.ndarray | None = None

    @staticmethod
    def of(features: np.ndarray) -> "Stats":
        return Stats(features.mean(0), np.cov(features, rowvar=False), features)

    @property
    def n(self) -> int:
        return 0 if self.features is None else len(self.features)

    def save(self, path: Path) -> None:
        """Write `mu`, `sigma` (pytorch-fid's .npz layout) and `features`, atomically."""
        tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp.npz")   # per process: parallel study runs share the cache
        np.savez(tmp, mu=self.mu, sigma=self.sigma, features=np.asarray(self.features, dtype=np.float32))
        os.replace(tmp, path)

    @staticmethod
    def load(path: Path) -> "Stats":
        with np.load(path) as f:
            return Stats(f["mu"], f["sigma"], f["features"].astype(np.float64) if "features" in f else None)


def real_stats(images: ImageSet, split: str, net: FeatureNet, cache_dir: str | Path) -> Stats:
    """Statistics of real images, computed once per (part name, image count, source and split (images.key),
    network, precision) and cached as .npz."""
    path = Path(cache_dir) / f"stats_{split}_{len(images)}_{images.key}_{net.key}{'-fp16' if net.half else ''}.npz"
    if path.is_file():
        return Stats.load(path)
    stats = Stats.of(net.features(images.x))
    path.parent.mkdir(parents=True, exist_ok=True)
    stats.save(path)
    return stats
