"""Feature networks: pytorch-fid's Inception (FID, IS) or a proxy TorchScript network, the class-accuracy
classifier, and cached real-image statistics."""
from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator
import numpy as np
import torch
import torch.nn as nn
from torch import Tensor

from .core import GanError, batched
from .files import atomic_path
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
    the stand-in classifier of tests and smoke runs, so the IS and class-accuracy paths run without a trained
    classifier. Its numbers mean nothing."""
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
                                   # about 0.2 % with bf16 ones (tests/test_cuda.py)

    def outputs(self, images: Tensor, batch_size: int | None = None, classify: bool = True) -> NetOutputs:
        """uint8 images (N, 3, H, W) -> NetOutputs (float64 arrays), computed in eval mode on the net's device in
        batches of `batch_size` (default: 500 on CUDA, 50 elsewhere, where Inception's 299x299 activations of 500
        images would take gigabytes); classify=False leaves class_logits None."""
        self.module.eval()
        device = _device_of(self.module)
        batch_size = batch_size or (500 if device.type == "cuda" else 50)
        # a proxy's IS logits are the classifier's: no second pass for the class logits
        second_pass = classify and self.classifier is not None and self.is_inception

        def run(images: Tensor) -> tuple[Tensor, Tensor | None, Tensor | None]:
            x = images.float().div(255.0)
            with torch.autocast(device.type, dtype=torch.float16, enabled=self.half):
                f, logits = self.module(x)
            classes = self.classifier.eval()(x).double() if second_pass else None
            return f.double(), None if logits is None else logits.double(), classes

        feats, is_logits, class_logits = batched(run, images, batch_size=batch_size, device=device)
        if classify and self.classifier is not None and not second_pass:
            class_logits = is_logits
        as_numpy = lambda t: None if t is None else t.numpy()  # noqa: E731
        return NetOutputs(feats.numpy(), as_numpy(is_logits), as_numpy(class_logits))

    def features(self, images: Tensor, batch_size: int | None = None) -> np.ndarray:
        """uint8 images (N, 3, H, W) -> float64 features (N, D) (batch_size: see outputs())."""
        return self.outputs(images, batch_size, classify=False).features

    def class_logits(self, images: Tensor, batch_size: int = 500) -> np.ndarray:
        """uint8 images (N, 3, H, W) -> the classifier's logits (N, C), float64 (the classifier alone)."""
        if self.classifier is None:
            raise GanError("no classifier: pass classifier=PATH (--classifier), a TorchScript CIFAR-10 classifier "
                           "taking images (N, 3, S, S) in [0, 1]")
        classifier = self.classifier.eval()
        return batched(lambda x: classifier(x.float().div(255.0)).double(), images, batch_size=batch_size,
                       device=_device_of(classifier)).numpy()


def _device_of(module: nn.Module) -> torch.device:
    """Where a module's parameters live (the CPU for one without parameters)."""
    return next(iter(module.parameters()), torch.empty(0)).device


# the kit's own CIFAR-10 classifier (tools/train_classifier.py, model/eval/README.md): the default classifier
KIT_CLASSIFIER = Path(__file__).resolve().parents[1] / "model" / "eval" / "cifar10_classifier.pt"


def _load_torchscript(path: Path, what: str) -> nn.Module:
    if not path.is_file():
        raise GanError(f"{what} {path} not found: pass a TorchScript file taking images (N, 3, S, S) in [0, 1] "
                       f"(e.g. the kit's classifier, model/eval/cifar10_classifier.pt)")
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
    """pytorch-fid's InceptionV3 up to pool3, and the final linear layer (1008 classes) of the same weights,
    which pytorch-fid drops: we keep it for the Inception Score. pytorch-fid reads its weights through the torch
    hub cache (downloading them when missing); a local `fid_weights` file is handed to it as that cache."""
    import pytorch_fid.inception as pfi
    if fid_weights is not None and not Path(fid_weights).is_file():
        raise GanError(f"FID weights file {fid_weights} not found (fid_weights / --fid-weights)")
    try:
        with _hub_cache_holding(fid_weights):
            inception = pfi.InceptionV3([pfi.InceptionV3.BLOCK_INDEX_BY_DIM[2048]])
            state = torch.hub.load_state_dict_from_url(pfi.FID_WEIGHTS_URL, map_location="cpu")   # now cached
    except OSError as exc:  # offline: URLError / socket errors from the download
        cached = Path(torch.hub.get_dir()) / "checkpoints" / INCEPTION_WEIGHTS_FILE
        raise GanError(f"FID Inception weights are not in {cached} and could not be downloaded "
                       f"({type(exc).__name__}); pass fid_weights=PATH (--fid-weights) with {INCEPTION_WEIGHTS_FILE}, "
                       f"or feature_net=PATH (--feature-net) for an offline proxy metric (not FID)") from exc
    fc = nn.Linear(*state["fc.weight"].T.shape)                          # 2048 -> 1008
    fc.load_state_dict({"weight": state["fc.weight"], "bias": state["fc.bias"]})
    return inception, fc


@contextlib.contextmanager
def _hub_cache_holding(weights: str | Path | None) -> Iterator[None]:
    """With a weights file: the torch hub cache ($TORCH_HOME/hub) is, meanwhile, a temporary folder holding only a
    link to it under pytorch-fid's file name (so pytorch-fid loads it, and nothing is downloaded); without one:
    the usual cache."""
    if weights is None:
        yield
        return
    usual = os.environ.get("TORCH_HOME")
    with tempfile.TemporaryDirectory() as home:
        cache = Path(home) / "hub" / "checkpoints"
        cache.mkdir(parents=True)
        (cache / INCEPTION_WEIGHTS_FILE).symlink_to(Path(weights).resolve())
        os.environ["TORCH_HOME"] = home
        try:
            if Path(torch.hub.get_dir()) != cache.parent:
                raise GanError(f"torch.hub.set_dir({torch.hub.get_dir()!r}) hides fid_weights={str(weights)!r}: "
                               f"put {INCEPTION_WEIGHTS_FILE} in {torch.hub.get_dir()}/checkpoints instead")
            yield
        finally:
            if usual is None:
                del os.environ["TORCH_HOME"]
            else:
                os.environ["TORCH_HOME"] = usual


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
        """Write `mu`, `sigma` (pytorch-fid's .npz layout) and `features`, atomically (parallel study runs share
        the cache)."""
        with atomic_path(path) as tmp, open(tmp, "wb") as f:   # a file object: numpy adds no ".npz" to its name
            np.savez(f, mu=self.mu, sigma=self.sigma, features=np.asarray(self.features, dtype=np.float32))

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
    stats.save(path)
    return stats
