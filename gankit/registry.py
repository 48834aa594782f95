"""Every choice a Config names by a string, in one place: the registries of architectures (ARCHS), losses
(LOSSES), class conditionings (CONDITIONINGS), differentiable augmentations (AUGMENTS), datasets (DATASETS) and
evaluation measures (METRICS). Config.validate() checks its fields against them, the command line lists them, and
tests/test_registry.py runs every entry of each. An implementation registers itself where it is defined, e.g.
`ARCHS.add("dcgan", Architecture(...))` at the end of gankit/models/dcgan.py; the README's "Extending" section
names the place for each kind.

The model protocol (what every registered G and D exposes) is written down here, once: Generator and
Discriminator below."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Protocol

import torch.nn as nn
from torch import Tensor

from .core import GanError, IMG_SIZES

__all__ = ['Registry', 'Generator', 'Discriminator', 'Conditioning', 'CONDITIONINGS', 'Architecture', 'ARCHS', 'DatasetReader', 'Metric',
           'LOSSES', 'AUGMENTS', 'DATASETS', 'METRICS', 'attention_resolutions', 'augment_policy']


class Registry(dict):
    """name -> implementation, for one Config field (or, for METRICS, one entry of every score)."""

    def __init__(self, kind: str, field: str):
        super().__init__()
        self.kind, self.field = kind, field

    def add(self, name: str, value: Any) -> Any:
        """Register `value` under `name` (each name once) and return it."""
        if name in self:
            raise ValueError(f"{self.kind} {name!r} is registered twice")
        self[name] = value
        return value

    def pick(self, name: str) -> Any:
        """The entry `name`, or GanError naming the valid choices."""
        if name not in self:
            raise GanError(f"unknown {self.kind} {name!r} ({self.field}): choose one of {sorted(self)}")
        return self[name]


class Generator(Protocol):
    """What every generator of ARCHS exposes (an nn.Module built from a Config)."""
    config: Any                              # the Config it was built from (sample() and checkpoints read it)
    num_classes: int                         # classes it is conditioned on (0: unconditional)
    label_embed: nn.Embedding | None         # label embedding joined to z (concat, acgan), else None
    encoder: nn.Module | None                # BiGAN's encoder E, image -> z (encoder='bigan'), else None

    def __call__(self, z: Tensor, y: Tensor | None = None) -> Tensor:
        """z (N, latent_dim: z_dim, then any InfoGAN codes), labels y (N,) (or class weights (N, K)) -> images
        (N, 3, S, S) in [-1, 1]."""

    @staticmethod
    def attention_resolutions(img_size: int) -> tuple[int, ...]:
        """Resolutions at which self-attention can follow a stage (Config.g_attn), in forward order."""


class Discriminator(Protocol):
    """What every discriminator of ARCHS exposes (an nn.Module built from a Config)."""
    config: Any
    label_planes: int                        # one-hot label planes joined to its input (concat), else 0
    embed: nn.Embedding | None               # projection embedding (projection, projection-ac), else None
    classifier: nn.Linear | None             # ACGAN class head (acgan, projection-ac), else None
    q_head: nn.Module | None                 # InfoGAN's Q head (info_cat or info_cont > 0), else None
    joint: nn.Module | None                  # BiGAN's joint term of (x, z) (encoder='bigan'), else None

    def __call__(self, x: Tensor, y: Tensor | None = None,
                 with_classes: bool = False, z: Tensor | None = None,
                 with_codes: bool = False) -> Tensor | tuple[Tensor, ...]:
        """x (N, 3, S, S) in [-1, 1], y (N,), z (N, z_dim) (BiGAN) -> adversarial logits (N,) [, class logits
        (N, K)] [, code predictions (N, info_cat + info_cont)]."""

    @staticmethod
    def attention_resolutions(img_size: int) -> tuple[int, ...]:
        """Resolutions at which self-attention can follow a stage (Config.d_attn), in forward order."""


@dataclass(frozen=True)
class Conditioning:
    """Where class labels enter G and D; one row of CONDITIONINGS per Config.cond."""
    g_cbn: bool          # G: class-conditional BatchNorm gains and biases (de Vries 2017)
    g_input: bool        # G: a learned label embedding (z_dim wide, N(0, 1) like z) joined to z
    d_input: bool        # D: one-hot label planes (N, K, S, S) joined to its input image (a vector for mlp)
    d_projection: bool   # D: <embed(y), phi(x)> added to the logit (Miyato & Koyama 2018)
    d_classifier: bool   # D: a linear head phi(x) -> class logits (N, K), trained by cross-entropy


CONDITIONINGS = Registry("conditioning", "cond")
CONDITIONINGS.update({
    "none": Conditioning(g_cbn=False, g_input=False, d_input=False, d_projection=False, d_classifier=False),
    # CGAN (Mirza & Osindero 2014): the label joins the input of both networks
    "concat": Conditioning(g_cbn=False, g_input=True, d_input=True, d_projection=False, d_classifier=False),
    # ACGAN (Odena et al. 2017): G as in CGAN; D's adversarial logit ignores y, its class head predicts it
    "acgan": Conditioning(g_cbn=False, g_input=True, d_input=False, d_projection=False, d_classifier=True),
    # SNGAN/SAGAN/BigGAN: conditional BN in G, projection discriminator
    "projection": Conditioning(g_cbn=True, g_input=False, d_input=False, d_projection=True, d_classifier=False),
    # projection with ACGAN's class head on D as well (the auxiliary term of Hou et al. 2022's ADC-GAN without
    # its fake classes): the class cross-entropy pushes G towards images of the asked-for class
    "projection-ac": Conditioning(g_cbn=True, g_input=False, d_input=False, d_projection=True, d_classifier=True),
})


@dataclass(frozen=True)
class Architecture:
    """A G and a D class (each built from a Config) and how their weights start."""
    generator: type[nn.Module]
    discriminator: type[nn.Module]
    init: str            # "normal": N(0, 0.02) weights, N(1, 0.02) BN scales (Radford 2016); "orthogonal" (BigGAN)


@dataclass(frozen=True)
class DatasetReader:
    """How a dataset's images are read: read(data_dir, train, size) gives the training (train=True) or test
    images at size x size as an ImageSet; has_test(data_dir) says whether data_dir has a test set of its own
    (else load_dataset holds one out of the training images)."""
    read: Callable[..., Any]
    has_test: Callable[..., bool]


@dataclass(frozen=True)
class Metric:
    """One evaluation measure: compute(ctx) -> entries added to a score (ctx: gankit.measures.ScoreContext),
    text(score) -> its part of the one-line summary (None when the score lacks it), column: (header, cell(score)),
    the column of score tables."""
    compute: Callable[..., dict[str, Any]]
    text: Callable[[dict[str, Any]], str | None]
    column: tuple[Callable[[dict[str, Any]], str], Callable[[dict[str, Any]], str]]


ARCHS = Registry("architecture", "arch")          # name -> Architecture (gankit/models/*.py)
LOSSES = Registry("loss", "loss")                 # name -> (D loss, G loss), pure functions (gankit/losses.py)
AUGMENTS = Registry("augmentation", "diffaug")    # name -> x (N, C, H, W) -> same, differentiable (gankit/augment.py)
DATASETS = Registry("dataset", "dataset")         # name -> DatasetReader (gankit/data.py)
METRICS = Registry("metric", "evaluate")          # name -> Metric, in the order scores print them (gankit/measures.py)


def attention_resolutions(arch: str, who: str, img_size: int) -> tuple[int, ...]:
    """Resolutions at which `who` ("G" or "D") of `arch` can place self-attention, in forward order."""
    if arch not in ARCHS or img_size not in IMG_SIZES:
        return ()
    models = ARCHS[arch]
    return (models.generator if who == "G" else models.discriminator).attention_resolutions(img_size)


def augment_policy(policy: str) -> tuple[str, ...]:
    """Config.diffaug ("none" or comma-separated AUGMENTS names, applied in that order) -> the names."""
    names = () if policy == "none" else tuple(p.strip() for p in policy.split(","))
    bad = [p for p in names if p not in AUGMENTS]
    if bad or len(set(names)) != len(names):
        raise GanError(f"config diffaug={policy!r}: give 'none' or distinct names from {list(AUGMENTS)} "
                       f"joined by commas, e.g. diffaug=translation,cutout")
    return names
