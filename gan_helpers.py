"""A GAN study kit: MLP, DCGAN and ResNet (SAGAN) GANs, unconditional or class-conditional, on CIFAR-10,
a subset of its classes or any image folder, at 32, 64 or 128 pixels: models, losses, data, training,
FID, checkpoints, plots and a command line, in one importable module. A new study is a Config, not an edit.

Sections, in order, and where to change what:
  config          Config (one field per choice, a comment each), presets, validate() (contradictory
                  combinations), LEGACY_VALUES (old checkpoints' spellings)
  setup           seeds and device
  data            load_dataset(): sources, class subsets, image size, the recorded split.
                  A new dataset: a reader returning an ImageSet, chosen in load_dataset() by a DATASETS name
  layers          self-attention, conditional BN, spectral norm, CONDITIONINGS (where labels enter G and D)
  models          MLP, DCGAN, ResNet G and D, ARCHS. A new architecture: G and D classes taking a Config,
                  with attention_resolutions(img_size), and a line in ARCHS. An attention placement:
                  Config.g_attn / d_attn (values from attention_resolutions()), no code
  losses          LOSSES (a loss: a pure function pair, one line in LOSSES), class_loss (ACGAN), gradient penalty
  training step   train_step(): n_critic D steps, n_gen G steps, EMA
  evaluation      feature networks, FID/KID, Inception Score, class accuracy, diversity,
                  real statistics cached by split
  checkpoints     atomic saves, loading (old layouts upgrade through Config.from_dict)
  sampling        latents(), sample(), interpolation (slerp, between classes)
  training loop   train() (the FID sample counts: Config.eval_samples, test_set_score(n), --n), publish
  plots           image grids, curves, snapshots over training, attention maps and explorer
  studies         a study file (arms x seeds of --set overrides): run_study(), collect_study() -> results.json,
                  study_table(), plot_study()
  final evaluation and command line
                  final_evaluation(), `python gan_helpers.py {train,sample,fid,publish,evaluate,study}`

    python gan_helpers.py train sagan --iters 1000 --data-dir data/cifar10-jpeg
    python gan_helpers.py train dcgan --data-dir FOLDER --set img_size=64 cond=acgan
    python gan_helpers.py evaluate model/sagan_best.pt
    python gan_helpers.py study run studies/attention.json --data-dir data
"""
from __future__ import annotations

import argparse
import ast
import contextlib
import copy
import dataclasses
import datetime
import hashlib
import json
import math
import os
import random
import sys
import tempfile
import time
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor
from torch.nn.utils.parametrizations import _SpectralNorm, spectral_norm

CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer",
                   "dog", "frog", "horse", "ship", "truck")
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp")


class GanError(Exception):
    """An error with a message meant for the user (bad input, missing file); the CLI prints it in one line."""


# ----------------------------------------------------------------------------------------------------
# config
# ----------------------------------------------------------------------------------------------------

@dataclass
class Config:
    """Everything that defines a run. Checkpoints store it, so a checkpoint alone rebuilds its generator."""
    name: str = "sagan"              # run name; best generator goes to model/<name>_best.pt when published
    # data: what load_dataset() reads; these fields are the split, stored in every checkpoint
    dataset: str = "auto"            # "cifar10" (batches, image tree or download), "folder" (any image folder),
                                     # "auto" (a folder if --data-dir holds images, else CIFAR-10); see DATASETS
    img_size: int = 32               # image side in pixels (see IMG_SIZES); other sizes are centre-cropped and
                                     # resized once at load time; every architecture derives its stages from it
    classes: tuple[str, ...] = ()    # class names to keep, relabelled 0..k-1 in this order; () = all classes
    val_size: int = 5000             # validation images held out of the training images (CIFAR-10: 5000)
    split_seed: int = 0              # seed of the train/validation(/test) split, independent of `seed`
    # models
    arch: str = "resnet"             # "mlp" (Goodfellow 2014), "dcgan" (Radford 2016), "resnet" (SNGAN/BigGAN); ARCHS
    z_dim: int = 128                 # latent size (DCGAN reference: 100; SNGAN/BigGAN: 128)
    num_classes: int = 10            # classes of the data (the CLI takes it from the dataset), read when
                                     # cond != "none"; 0 also means unconditional (as before `cond` existed)
    cond: str = "projection"         # class conditioning (see CONDITIONINGS): "none", "concat" (CGAN, Mirza 2014),
                                     # "acgan" (Odena 2017), "projection" (CBN in G, projection D, Miyato 2018),
                                     # "projection-ac" (projection plus an ACGAN class head on D)
    acgan_weight: float = 1.0        # weight of the class cross-entropy in the D and G losses of a D with a class
                                     # head (acgan, projection-ac; Odena: 1)
    g_ch: int = 256                  # G width: resnet = channels of every block; dcgan = channels of the last hidden
                                     # layer (img_size/2), doubling towards 4x4; mlp = 16 * g_ch hidden units
    d_ch: int = 128                  # D width: resnet = channels of every block; dcgan = channels of the first layer
                                     # (img_size/2), doubling towards 4x4; mlp = 16 * d_ch hidden units
    g_attn: tuple[int, ...] = (16,)  # resolutions in G followed by self-attention (repeat = stack; see
                                     # attention_resolutions(): resnet 8..img_size, dcgan 4..img_size/2)
    d_attn: tuple[int, ...] = (16,)  # resolutions in D followed by self-attention (resnet img_size..8, dcgan
                                     # img_size/2..4)
    d_batchnorm: bool = True         # arch="dcgan": BatchNorm in D after every conv but the first (DCGAN); False =
                                     # none, as in SNGAN's CNN critic, where BatchNorm's division by the batch's
                                     # spread would undo spectral norm's Lipschitz bound (resnet, mlp: never any)
    spectral_norm: str = "gd"        # spectral norm on every conv/linear of: "none", "d" (D only), "gd" (G and D,
                                     # SAGAN, Zhang 2019; the paper's ablation compares the three)
    loss: str = "wgan"               # "wgan", "hinge" or "bce" (see LOSSES)
    lipschitz: str = "none"          # extra Wasserstein critic constraint: "none", "clip" (weight clipping),
                                     # "gp" (gradient penalty); loss="wgan" needs one of them or SN on D
    clip_value: float = 0.011        # weight clipping bound for lipschitz="clip" (reference report: 0.011)
    gp_weight: float = 10.0          # gradient penalty weight for lipschitz="gp" (Gulrajani 2017: 10)
    drift: float = 1e-3              # eps_drift * E[D(x)^2] keeps Wasserstein critic scores from drifting
                                     # (Karras et al. 2018, ProGAN: 1e-3); 0 = off
    optimizer: str = "adam"          # "adam" or "rmsprop" (the reference report's SAGAN used RMSprop)
    g_lr: float = 1e-4               # TTUR: G learning rate (SAGAN: 1e-4)
    d_lr: float = 4e-4               # TTUR: D learning rate (SAGAN: 4e-4)
    betas: tuple[float, float] = (0.0, 0.9)  # Adam betas (SAGAN: (0, 0.9); DCGAN: (0.5, 0.999))
    n_critic: int = 1                # D steps per round (WGAN: 5)
    n_gen: int = 1                   # G steps per round (after the n_critic D steps)
    batch_size: int = 64             # images per D step and per G step (SAGAN: 64 on CIFAR-sized setups)
    ema_decay: float = 0.9999        # EMA of G's weights for sampling (Karras 2018, BigGAN); 0 = off
    ema_start: int = 1000            # iterations before the EMA starts averaging (it copies G until then)
    iters: int = 100_000             # rounds (n_critic D steps + n_gen G steps) in total
    eval_every: int = 1000           # validation FID every this many iterations (assignment: <= 1000)
    eval_samples: int = 5000         # generated images per validation FID (vs the val_size validation images)
    checkpoint_every: int = 1000     # full training state to last.pt every this many iterations
    hflip: bool = True               # random horizontal flips of real images
    diffaug: str = "none"            # differentiable augmentation of every D input in training (Zhao 2020):
                                     # "none" or names from AUGMENTS joined by commas, e.g. "translation,cutout"
    cr_weight: float = 0.0           # balanced consistency regularisation (bCR, Zhao et al. 2021): D pays
                                     # cr_weight x the squared change of its logits when its real and generated
                                     # inputs are flipped and shifted a little (consistency_shift); 0 = off
                                     # (the paper: 10)
    seed: int = 0                    # seeds python, numpy and torch (one place: setup())
    diverged_above: float = 1e6      # |loss| or |mean D logit| above this stops training as diverged, like a
                                     # NaN (the shipped runs stay below 2e3; a run past 1e6 does not recover)
    amp: str = "auto"                # mixed precision of G and D in training (see PRECISIONS): "auto" = bf16 on a
                                     # CUDA GPU that has it, else fp16 with gradient scaling; float32 on CPU/MPS
    compile: str = "off"             # torch.compile backend for G and D in training ("inductor", "aot_eager", ...);
                                     # "off" = eager. Off by default until timed on each device (train_speed.py)

    def __post_init__(self) -> None:
        for (key, old), new in LEGACY_VALUES.items():   # old spellings, however the config was made
            value = getattr(self, key)
            if type(value) is type(old) and value == old:
                setattr(self, key, new)

    @property
    def cond_classes(self) -> int:
        """Classes the models are conditioned on: num_classes, or 0 when cond="none" (0: unconditional)."""
        return self.num_classes if self.cond != "none" else 0

    @staticmethod
    def dcgan(**overrides: Any) -> "Config":
        """The baseline: the reference report's DCGAN (BCE, Adam 2e-4, beta1 0.5, batch 128), made
        class-conditional with projection plus ACGAN's class head: at equal iterations its samples carry their
        class twice as often as with projection alone, at a lower FD (studies/dcgan_recipe.json, 3 seeds).
        No EMA: an EMA of G (0.999) scored worse than G itself for this DCGAN, even with standing BatchNorm
        statistics (model/rescore_dcgan_10000.json)."""
        base = dict(name="dcgan", arch="dcgan", z_dim=100, cond="projection-ac", g_ch=64, d_ch=32, g_attn=(),
                    d_attn=(), spectral_norm="none", loss="bce", drift=0.0, g_lr=2e-4, d_lr=2e-4,
                    betas=(0.5, 0.999), batch_size=128, ema_decay=0.0)
        return Config(**{**base, **overrides})

    @staticmethod
    def sagan(**overrides: Any) -> "Config":
        """Class-conditional ResNet SAGAN: SN on G and D, Wasserstein loss with a drift term, TTUR,
        self-attention at 16x16 in G and D."""
        return Config(**overrides)

    @staticmethod
    def reference_dcgan(**overrides: Any) -> "Config":
        """The reference report's DCGAN recipe as it was: unconditional, BCE, Adam 2e-4 (0.5, 0.999),
        batch 128, no EMA. The baseline our presets are compared with."""
        return Config.dcgan(**{"name": "ref_dcgan", "num_classes": 0, "cond": "none", **overrides})

    @staticmethod
    def reference_sagan(**overrides: Any) -> "Config":
        """The reference report's SAGAN recipe: its DCGAN-style G and D with spectral norm, attention after
        G's 8x8 and 16x16 layers and twice at D's 4x4 layer, unconditional, Wasserstein loss with weight
        clipping at 0.011, RMSprop with G 5e-4 / D 1e-4, batch 128, no EMA."""
        base = dict(name="ref_sagan", arch="dcgan", z_dim=100, num_classes=0, cond="none", g_ch=64, d_ch=32,
                    g_attn=(8, 16), d_attn=(4, 4), lipschitz="clip", drift=0.0, optimizer="rmsprop", g_lr=5e-4,
                    d_lr=1e-4, batch_size=128, ema_decay=0.0)
        return Config(**{**base, **overrides})

    @staticmethod
    def from_dict(d: dict[str, Any]) -> "Config":
        """Inverse of dataclasses.asdict (tuples come back from JSON/pickle as lists); unknown keys are errors.
        Configs written before a field existed get its default; old values are upgraded (LEGACY_VALUES)."""
        names = {f.name for f in dataclasses.fields(Config)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise GanError(f"unknown config field(s) {unknown}; valid fields: {sorted(names)}")
        if "cond" not in d:  # before `cond`, num_classes=0 meant unconditional and the rest projection
            d = {**d, "cond": "projection" if d.get("num_classes", Config.num_classes) else "none"}
        return Config(**{k: tuple(v) if isinstance(v, list) else v for k, v in d.items()})

    def with_overrides(self, pairs: list[str]) -> "Config":
        """Apply `key=value` strings (values parsed as Python literals, else kept as strings; a tuple field
        takes one value or a comma-separated list: classes=cat,dog); a key given twice with different values
        is an error rather than the last one silently winning."""
        updates: dict[str, Any] = {}
        names = {f.name for f in dataclasses.fields(self)}
        for pair in pairs:
            key, sep, text = pair.partition("=")
            if not sep or key not in names:
                raise GanError(f"--set expects key=value with key one of {sorted(names)}, got {pair!r}")
            try:
                quoted = len(text) > 1 and text[0] == text[-1] and text[0] in "'\""   # loss='bce' as in Python
                value = text if isinstance(getattr(self, key), str) and not quoted else ast.literal_eval(text)
            except (ValueError, SyntaxError):
                value = text
            if isinstance(getattr(self, key), tuple):  # "g_attn=16" means (16,), "classes=cat,dog" two names
                if isinstance(value, str):
                    value = [v.strip() for v in value.strip("()[]").split(",") if v.strip()]
                value = tuple(value) if isinstance(value, (list, tuple)) else (value,)
            if key in updates and updates[key] != value:
                raise GanError(f"--set gives {key} twice ({updates[key]!r} and {value!r}); give it once")
            updates[key] = value
        return dataclasses.replace(self, **updates).check_types()

    def check_types(self) -> "Config":
        """Raise GanError naming a field whose value does not have the field's type (an int is accepted
        where a float is expected); return self so calls can chain."""
        hints = typing.get_type_hints(Config)
        for f in dataclasses.fields(self):
            value, hint = getattr(self, f.name), hints[f.name]
            if not _has_type(value, hint):
                raise GanError(f"config {f.name}={value!r} is not a valid {_type_name(hint)} "
                               f"(e.g. {f.name}={getattr(Config(), f.name)!r})")
        return self

    def validate(self) -> "Config":
        """Raise GanError naming the bad field and the fix; return self so calls can chain."""
        self.check_types()
        choices = {"dataset": DATASETS, "img_size": IMG_SIZES, "arch": tuple(ARCHS), "cond": tuple(CONDITIONINGS),
                   "spectral_norm": SPECTRAL_NORM, "loss": tuple(LOSSES), "lipschitz": ("none", "clip", "gp"),
                   "optimizer": ("adam", "rmsprop"), "amp": PRECISIONS}
        for key, allowed in choices.items():
            if getattr(self, key) not in allowed:
                raise GanError(f"config {key}={getattr(self, key)!r} is not one of {allowed}")
        for key in ("z_dim", "g_ch", "d_ch", "n_critic", "n_gen", "batch_size", "iters", "eval_every",
                    "checkpoint_every", "val_size"):
            if getattr(self, key) < 1:
                raise GanError(f"config {key} must be >= 1, got {getattr(self, key)}")
        if self.eval_samples < 2:  # a covariance and an unbiased KID need at least two images
            raise GanError(f"config eval_samples must be >= 2, got {self.eval_samples}")
        if self.compile != "off" and self.compile not in torch.compiler.list_backends(exclude_tags=()):
            raise GanError(f"config compile={self.compile!r} is not 'off' or a torch.compile backend: "
                           f"{torch.compiler.list_backends()}")
        augment_policy(self.diffaug)
        if not 0 <= self.ema_decay < 1:
            raise GanError(f"config ema_decay must be in [0, 1), got {self.ema_decay}")
        if self.loss == "wgan" and self.lipschitz == "none" and self.spectral_norm == "none":
            raise GanError("loss='wgan' leaves the critic unconstrained: set lipschitz='gp' or 'clip', "
                           "or spectral_norm='d' or 'gd' (or choose loss='hinge' or 'bce')")
        if (self.cond == "concat" or CONDITIONINGS[self.cond].d_classifier) and self.num_classes < 1:
            raise GanError(f"cond={self.cond!r} needs labelled data (num_classes >= 1, got {self.num_classes}); "
                           f"set cond='none' for an unconditional model")
        if CONDITIONINGS[self.cond].d_classifier and self.acgan_weight <= 0:
            raise GanError(f"cond={self.cond!r} needs acgan_weight > 0 (got {self.acgan_weight}); "
                           f"or choose cond='concat' or 'projection'")
        if len(set(self.classes)) != len(self.classes):
            raise GanError(f"config classes={self.classes} names a class twice")
        for who, placements in (("G", self.g_attn), ("D", self.d_attn)):
            valid = attention_resolutions(self.arch, who, self.img_size)
            bad = [r for r in placements if r not in valid]
            if bad:
                fix = f"choose among resolutions {valid}" if valid else "it has no attention layers"
                raise GanError(f"{who} attention at {bad} does not exist for arch={self.arch!r} at "
                               f"img_size={self.img_size}: set {who.lower()}_attn=() or {fix}")
        for key in ("g_lr", "d_lr", "clip_value", "diverged_above"):
            if not getattr(self, key) > 0:
                raise GanError(f"config {key} must be > 0, got {getattr(self, key)}")
        for key in ("num_classes", "ema_start", "seed", "drift", "gp_weight", "cr_weight"):
            if getattr(self, key) < 0:
                raise GanError(f"config {key} must be >= 0, got {getattr(self, key)}")
        if not all(0 <= b < 1 for b in self.betas):
            raise GanError(f"config betas must both be in [0, 1), got {self.betas}")
        return self


DATASETS = ("auto", "cifar10", "folder")     # Config.dataset: how load_dataset() reads --data-dir
IMG_SIZES = (32, 64, 128)                    # Config.img_size: every architecture builds for each of these
SPECTRAL_NORM = ("none", "d", "gd")          # Config.spectral_norm: which of G and D get spectral norm
# values written before issue 11 -> their current spelling (Config.__post_init__ applies it to checkpoints,
# commands and code alike): spectral_norm was a bool (on the command line, typed as "True"/"False");
# lipschitz="sn" meant "the constraint is spectral norm", which is now spectral_norm's job alone
LEGACY_VALUES = {("spectral_norm", True): "gd", ("spectral_norm", False): "none", ("spectral_norm", "True"): "gd",
                 ("spectral_norm", "False"): "none", ("lipschitz", "sn"): "none"}


def _has_type(value: Any, hint: Any) -> bool:
    """isinstance for the annotations Config uses: int, float, bool, str, tuple[T, ...], tuple[T, T]."""
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if typing.get_origin(hint) is tuple:
        args = typing.get_args(hint)
        if not isinstance(value, tuple):
            return False
        if len(args) == 2 and args[1] is Ellipsis:
            return all(_has_type(v, args[0]) for v in value)
        return len(value) == len(args) and all(_has_type(v, a) for v, a in zip(value, args))
    return isinstance(value, hint)


def _type_name(hint: Any) -> str:
    """'int', 'float', 'tuple of int', 'tuple of 2 float' for error messages."""
    if typing.get_origin(hint) is tuple:
        args = typing.get_args(hint)
        if len(args) == 2 and args[1] is Ellipsis:
            return f"tuple of {_type_name(args[0])}"
        return f"tuple of {len(args)} {_type_name(args[0])}"
    return hint.__name__


PRESETS: dict[str, Callable[..., Config]] = {"dcgan": Config.dcgan, "sagan": Config.sagan,
                                             "ref_dcgan": Config.reference_dcgan, "ref_sagan": Config.reference_sagan}


# ----------------------------------------------------------------------------------------------------
# setup: seeds and device in one place
# ----------------------------------------------------------------------------------------------------

def setup(seed: int = 0, device: str | None = None) -> torch.device:
    """Seed python, numpy and torch; return `device` or the best available one (cuda > mps > cpu)."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)  # also seeds every CUDA device
    if device is not None:
        return torch.device(device)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def to_device(model: nn.Module, device: torch.device | str) -> nn.Module:
    """Move `model` to `device` with its conv weights in channels_last (NHWC) memory format, the layout the
    oneDNN (CPU) and cuDNN (GPU) convolution kernels run fastest in; activations follow the weights' layout.
    tests/benchmarks/train_speed.py times a training step both ways."""
    return model.to(device, memory_format=torch.channels_last)


PRECISIONS = ("auto", "bf16", "fp16", "off")


@dataclass
class Precision:
    """How a training step runs G and D: autocast to `dtype` (None = plain float32) and, for fp16, one
    gradient scaler per optimizer (fp16 gradients underflow without it; bf16 has float32's range)."""
    device_type: str
    dtype: torch.dtype | None = None
    scaler_g: Any = None             # torch.amp.GradScaler for fp16, else None
    scaler_d: Any = None

    def autocast(self) -> contextlib.AbstractContextManager:
        return torch.autocast(self.device_type, dtype=self.dtype, enabled=self.dtype is not None)

    def step(self, loss: Tensor, opt: torch.optim.Optimizer, scaler: Any) -> None:
        """backward + optimizer step, through the gradient scaler when there is one."""
        if scaler is None:
            loss.backward()
            opt.step()
            return
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()


def precision(amp: str, device: torch.device | str) -> Precision:
    """Resolve Config.amp on `device`. "auto": bf16 on CUDA GPUs with native bf16 (Ampere and later), fp16
    with gradient scaling on older ones (e.g. Colab's T4), float32 elsewhere: on the CPU, bf16 autocast is
    slower than float32 for these convolutions (tests/benchmarks/train_speed.py)."""
    device = torch.device(device)
    if amp == "auto":
        amp = "off" if device.type != "cuda" else ("bf16" if torch.cuda.is_bf16_supported(including_emulation=False)
                                                  else "fp16")
    if amp == "off":
        return Precision(device.type)
    if amp == "bf16":
        return Precision(device.type, torch.bfloat16)
    if device.type != "cuda":
        raise GanError(f"amp='fp16' needs a CUDA device (got {device}); use amp='bf16' or 'off'")
    return Precision(device.type, torch.float16, torch.amp.GradScaler("cuda"), torch.amp.GradScaler("cuda"))


def compiled(model: nn.Module, backend: str) -> nn.Module:
    """`model` through torch.compile with `backend` ("off": the model itself). The compiled module shares the
    model's parameters and buffers, so optimizers, the EMA and checkpoints keep using the model."""
    return model if backend == "off" else torch.compile(model, backend=backend)


def _device_of(model: nn.Module) -> torch.device:
    """The device a model's parameters live on."""
    return next(model.parameters()).device


# The runtime packages of requirements.txt by the module each provides (tests keep the two in agreement).
# ipywidgets: 7.7 and 8 both work; Colab ships 7.7 and does not render every ipywidgets 8 widget without
# its custom widget manager (googlecolab/colabtools #3020, #4525), so Colab's own copy is never replaced.
RUNTIME_PACKAGES = {"torch": "torch>=2.1", "torchvision": "torchvision>=0.16", "pytorch_fid": "pytorch-fid>=0.3.0",
                    "numpy": "numpy>=1.24", "scipy": "scipy>=1.10", "PIL": "pillow>=9.0",
                    "matplotlib": "matplotlib>=3.7", "ipywidgets": "ipywidgets>=7.7,<9", "tqdm": "tqdm>=4.60"}


def colab_installs() -> list[str]:
    """What the notebooks' setup cell pip-installs: nothing outside Colab; on Colab the requirements of
    the runtime packages it lacks (usually only pytorch-fid), keeping its own torch and ipywidgets."""
    import importlib.util
    if "google.colab" not in sys.modules:
        return []
    return [spec for module, spec in RUNTIME_PACKAGES.items() if importlib.util.find_spec(module) is None]


# ----------------------------------------------------------------------------------------------------
# data: load_dataset() reads CIFAR-10 or any image folder at Config.img_size, selects Config.classes and
# splits off validation (and test) images; held as one uint8 tensor on the training device, batches drawn
# by indexing. A new dataset: a reader returning an ImageSet, chosen in load_dataset() by a DATASETS name
# ----------------------------------------------------------------------------------------------------

@dataclass
class ImageSet:
    """Images `x` (N, 3, S, S) uint8 and labels `y` (N,) int64, on one device."""
    x: Tensor
    y: Tensor
    classes: tuple[str, ...] = CIFAR10_CLASSES  # label i names classes[i]; () = unlabelled (y all 0)
    source: str = ""               # where the images came from (recorded in checkpoint summaries)
    split: dict[str, Any] = dataclasses.field(default_factory=dict)  # how it was selected (load_dataset)

    def __len__(self) -> int:
        return len(self.y)

    def to(self, device: torch.device | str) -> "ImageSet":
        return ImageSet(self.x.to(device), self.y.to(device), self.classes, self.source, self.split)

    def subset(self, idx: Tensor) -> "ImageSet":
        return ImageSet(self.x[idx], self.y[idx], self.classes, self.source, self.split)

    def with_split(self, **entries: Any) -> "ImageSet":
        return ImageSet(self.x, self.y, self.classes, self.source, {**self.split, **entries})

    @property
    def key(self) -> str:
        """Short hash of the source and split: the cache key of this set's real-image statistics."""
        text = json.dumps({"source": self.source, **self.split}, sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:10]

    def batch(self, n: int, hflip: bool = False) -> tuple[Tensor, Tensor]:
        """Random batch (with replacement, global torch RNG): images (n, 3, S, S) in [-1, 1], labels (n,)."""
        idx = torch.randint(len(self), (n,), device=self.x.device)
        x = to_float(self.x[idx])
        if hflip:
            flip = torch.rand(n, device=x.device) < 0.5
            x = torch.where(flip[:, None, None, None], x.flip(3), x)
        return x, self.y[idx]


def to_float(x: Tensor) -> Tensor:
    """uint8 [0, 255] -> float [-1, 1]."""
    return x.float().div(127.5).sub(1.0)


def to_uint8(x: Tensor) -> Tensor:
    """float [-1, 1] -> uint8 [0, 255], rounded as when saving a PNG (the way FID sees generated images)."""
    return x.add(1.0).mul(127.5).add(0.5).clamp(0, 255).to(torch.uint8)


def _image_folder_root(data_dir: Path) -> Path | None:
    """The folder holding train/ and test/ class folders: data_dir itself or data_dir/cifar10-jpeg."""
    for root in (data_dir, data_dir / "cifar10-jpeg"):
        if (root / "train").is_dir() and (root / "test").is_dir():
            return root
    return None


def fit_image(im: Any, size: int) -> Any:
    """A PIL image centre-cropped to a square and resized (bicubic, antialiased) to size x size; unchanged
    when it already is. The one place where images are brought to Config.img_size."""
    from PIL import Image
    w, h = im.size
    if (w, h) == (size, size):
        return im
    side = min(w, h)
    left, top = (w - side) // 2, (h - side) // 2
    return im.crop((left, top, left + side, top + side)).resize((size, size), Image.BICUBIC)


def read_images(paths: list[Path], size: int | None = None) -> Tensor:
    """Image files -> uint8 (N, 3, H, W), converted to RGB (as pytorch-fid does); fitted to size x size
    (fit_image) when `size`, else they must all have one size."""
    from PIL import Image
    arrays = []
    for path in paths:
        try:
            with Image.open(path) as im:
                im = im.convert("RGB")
                arrays.append(np.asarray(fit_image(im, size) if size else im, dtype=np.uint8))
        except (OSError, ValueError) as exc:  # PIL.UnidentifiedImageError is an OSError; truncated files too
            raise GanError(f"cannot read {path} as an image ({type(exc).__name__}: {str(exc)[:80]}); "
                           f"remove or replace that file") from exc
    if len({a.shape for a in arrays}) > 1:
        raise GanError(f"images in {paths[0].parent} differ in size: {sorted({a.shape for a in arrays})[:3]}")
    return torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).contiguous()  # (N, H, W, 3) -> (N, 3, H, W)


def image_files(folder: Path) -> list[Path]:
    """Image files directly in `folder`, sorted by name."""
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS)


def read_image_folder(folder: Path, size: int = 32) -> ImageSet:
    """Read `<folder>/<class>/*.{png,jpg}` (class folders sorted by name; labels 0, 1, ...) or, without
    class folders, `<folder>/*.{png,jpg}` (unlabelled) into an ImageSet of size x size images."""
    classes = tuple(sorted(p.name for p in folder.iterdir() if p.is_dir() and image_files(p)))
    files = [image_files(folder / name) for name in classes] if classes else [image_files(folder)]
    if not any(files):
        raise GanError(f"no images found in {folder} or {folder}/<class>/ ({', '.join(IMAGE_EXTENSIONS)})")
    labels = torch.cat([torch.full((len(f),), i, dtype=torch.int64) for i, f in enumerate(files)])
    return ImageSet(read_images([p for f in files for p in f], size), labels, classes, f"image folder {folder}")


def load_cifar10(data_dir: str | Path = "./data", train: bool = True, download: bool = True,
                 size: int = 32) -> ImageSet:
    """CIFAR-10 train (50,000) or test (10,000) images at size x size, from the first source found in
    `data_dir`: torchvision's `cifar-10-batches-py`, an image-folder tree `{train,test}/<class>/*` (directly
    or under `cifar10-jpeg/`), else torchvision's download into `data_dir`."""
    data_dir = Path(data_dir)
    folder_root = _image_folder_root(data_dir)
    if folder_root is not None:
        return read_image_folder(folder_root / ("train" if train else "test"), size)
    import torchvision
    from PIL import Image
    has_batches = (data_dir / "cifar-10-batches-py").is_dir()
    if not has_batches and not download:
        raise GanError(f"CIFAR-10 not found in {data_dir}: pass data_dir (--data-dir) pointing to a folder "
                       f"with cifar-10-batches-py or {{train,test}}/<class>/ images, or allow the download")
    try:
        ds = torchvision.datasets.CIFAR10(str(data_dir), train=train, download=not has_batches)
    except Exception as exc:  # network errors come in many types (URLError, socket errors, HTTP errors)
        raise GanError(f"CIFAR-10 is not in {data_dir} and downloading it failed ({type(exc).__name__}: "
                       f"{exc}); pass data_dir (--data-dir) pointing to an existing cifar-10-batches-py "
                       f"folder or an image-folder tree {{train,test}}/<class>/*.png|jpg") from exc
    arrays = ds.data if size == 32 else np.stack([np.asarray(fit_image(Image.fromarray(a), size)) for a in ds.data])
    x = torch.from_numpy(arrays).permute(0, 3, 1, 2).contiguous()  # (N, S, S, 3) -> (N, 3, S, S)
    return ImageSet(x, torch.tensor(ds.targets, dtype=torch.int64), tuple(ds.classes),
                    f"torchvision CIFAR-10 ({data_dir / 'cifar-10-batches-py'})")


def _holdout(data: ImageSet, sizes: tuple[int, ...], split_seed: int) -> list[ImageSet]:
    """Disjoint subsets of `sizes` images each, then the rest, from one fixed permutation of `data`."""
    perm = torch.randperm(len(data), generator=torch.Generator().manual_seed(split_seed))
    ends = np.cumsum((0,) + sizes).tolist()
    return [data.subset(perm[a:b]) for a, b in zip(ends, ends[1:])] + [data.subset(perm[ends[-1]:])]


def train_val_split(data: ImageSet, val_size: int = 5000, split_seed: int = 0) -> tuple[ImageSet, ImageSet]:
    """Fixed split of the training images (45,000 / 5,000 for CIFAR-10), independent of the run's seed."""
    if not 0 < val_size < len(data):
        raise GanError(f"val_size must be between 1 and {len(data) - 1}, got {val_size}")
    val, train = _holdout(data, (val_size,), split_seed)
    return (train.with_split(val_size=val_size, split_seed=split_seed, part="train"),
            val.with_split(val_size=val_size, split_seed=split_seed, part="val"))


def _select_classes(data: ImageSet, names: tuple[str, ...]) -> ImageSet:
    """The images of the classes `names` (all when empty), relabelled 0..k-1 in the order of `names`."""
    if not names:
        return data
    missing = [n for n in names if n not in data.classes]
    if missing:
        raise GanError(f"classes {missing} are not in {data.source}; its classes: {list(data.classes) or 'none'}")
    old = torch.tensor([data.classes.index(n) for n in names])
    keep = (data.y[:, None] == old[None]).nonzero()                     # (M, 2): row, position in names
    return ImageSet(data.x[keep[:, 0]], keep[:, 1].clone(), tuple(names), data.source)


def dataset_kind(dataset: str, data_dir: str | Path) -> str:
    """Resolve Config.dataset="auto": "cifar10" when data_dir holds cifar-10-batches-py or no images at all
    (torchvision then downloads CIFAR-10), else "folder"."""
    data_dir = Path(data_dir)
    if dataset != "auto":
        return dataset
    if (data_dir / "cifar-10-batches-py").is_dir() or not data_dir.is_dir():
        return "cifar10"
    has_images = any(p.suffix.lower() in IMAGE_EXTENSIONS for p in data_dir.rglob("*"))
    return "folder" if has_images else "cifar10"


def load_dataset(cfg: Config, data_dir: str | Path = "data",
                 parts: tuple[str, ...] = ("train", "val")) -> tuple[ImageSet, ...]:
    """The images of `parts` ("train", "val", "test") of the dataset cfg describes, in that order, at
    cfg.img_size, limited to cfg.classes. The one entry point for data: the command line, the notebooks,
    the validation and test statistics all come through here.

    cfg.dataset picks the reader (DATASETS): CIFAR-10 (see load_cifar10) or an image folder: `{train,test}/`
    (or `train/` alone, or the class folders themselves) holding `<class>/` folders, or images directly
    for an unlabelled set. The validation set is cfg.val_size images of the training images, drawn with
    cfg.split_seed; without a test/ folder, the next cfg.val_size images of the same draw are the test set.
    Every returned set's `split` records all of this (checkpoints store it; statistics are cached by it)."""
    data_dir = Path(data_dir)
    kind = dataset_kind(cfg.dataset, data_dir)
    root = _image_folder_root(data_dir) or data_dir
    has_test = kind == "cifar10" or (root / "test").is_dir()
    if kind == "folder" and not data_dir.is_dir():
        raise GanError(f"image folder {data_dir} not found (--data-dir)")

    def read(train: bool) -> ImageSet:
        if kind == "cifar10":
            return load_cifar10(data_dir, train=train, size=cfg.img_size)
        train_dir = root / "train" if (root / "train").is_dir() else root
        return read_image_folder(train_dir if train else root / "test", cfg.img_size)

    need_train = "train" in parts or "val" in parts or not has_test
    full = _select_classes(read(True), cfg.classes) if need_train else None
    split = dict(dataset=kind, img_size=cfg.img_size, classes=list(cfg.classes), val_size=cfg.val_size,
                 split_seed=cfg.split_seed, test="test folder" if has_test else "held out")
    sets: dict[str, ImageSet] = {}
    if full is not None:
        n_held = cfg.val_size * (1 if has_test else 2)
        if n_held >= len(full):
            raise GanError(f"{full.source}{f' (classes {list(cfg.classes)})' if cfg.classes else ''} has "
                           f"{len(full)} images: val_size={cfg.val_size} leaves none for training"
                           f"{'' if has_test else ' (without a test/ folder, as many again are held out for testing)'}"
                           f"; set val_size={max(1, len(full) // 10)}")
        held = _holdout(full, (cfg.val_size,) * (n_held // cfg.val_size), cfg.split_seed)
        sets.update(val=held[0], train=held[-1], **({} if has_test else {"test": held[1]}))
    if has_test and "test" in parts:
        sets["test"] = _select_classes(read(False), cfg.classes)
    return tuple(sets[p].with_split(**split, part=p) for p in parts)


def split_record(data: ImageSet) -> dict[str, Any]:
    """What a checkpoint stores about the data it was selected on: the source, its class names and the
    split (load_dataset's `split`, without the part name)."""
    return {"source": data.source, "class_names": list(data.classes),
            **{k: v for k, v in data.split.items() if k != "part"}}


def check_split(recorded: dict[str, Any], data: ImageSet) -> None:
    """GanError unless `data` comes from the split a checkpoint recorded (split_record): same dataset kind,
    image size, classes, validation size and split seed. Sources are not compared (folders move between
    machines); a checkpoint trained on in-memory images (no dataset recorded) is not checked."""
    if "dataset" not in recorded:
        return
    now = split_record(data)
    keys = ("dataset", "img_size", "classes", "class_names", "val_size", "split_seed", "test")
    diff = [f"{k}: {recorded.get(k)!r} in the checkpoint vs {now.get(k)!r} here" for k in keys
            if k in now and recorded.get(k) != now.get(k)]
    if diff:
        raise GanError(f"the data in {data.source} is not the split this checkpoint was selected on "
                       f"({'; '.join(diff)}): pass the checkpoint's data folder (--data-dir)")


def check_data(cfg: Config, data: ImageSet) -> None:
    """GanError when `data` does not fit cfg: image size, or the number of classes of a conditional model."""
    side = data.x.shape[-1]
    if side != cfg.img_size:
        raise GanError(f"images are {side}x{side} but img_size={cfg.img_size}: set img_size={side} or load the "
                       f"images with load_dataset(cfg, ...), which resizes them")
    if cfg.cond_classes and not data.classes:
        raise GanError(f"cond={cfg.cond!r} needs labels, but {data.source} is unlabelled (no <class>/ folders): "
                       f"set cond=none")
    if cfg.cond_classes and cfg.cond_classes != len(data.classes):
        raise GanError(f"cond={cfg.cond!r} with num_classes={cfg.num_classes}, but the data has "
                       f"{len(data.classes)} classes {list(data.classes)[:10]}: set num_classes={len(data.classes)}")


def config_for_data(cfg: Config, data: ImageSet) -> Config:
    """cfg with num_classes taken from the data's classes when the model is conditional (a class subset or
    an image folder sets it; the command line and the notebooks train with this), validated."""
    if not cfg.cond_classes:
        return cfg.validate()
    return dataclasses.replace(cfg, num_classes=len(data.classes)).validate()


def synthetic_images(n: int, num_classes: int = 10, seed: int = 0, size: int = 32) -> ImageSet:
    """Small stand-in for CIFAR-10 (tests, GAN_SMOKE=1 notebooks): class c is a soft square of its own
    colour and place on a noisy background, so a GAN can learn it in a few hundred steps. (n, 3, size, size)."""
    gen = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % num_classes
    palette = torch.rand(num_classes, 3, generator=gen) * 2 - 1                 # (K, 3) in [-1, 1]
    scale = size / 32
    rows = torch.arange(size).view(size, 1).float() / scale
    cols = torch.arange(size).view(1, size).float() / scale
    centre = 8 + (torch.arange(num_classes) * 7 % 16).float()                    # (K,) square centres
    mask = ((rows - centre[y].view(n, 1, 1)).abs() < 6) & ((cols - centre.flip(0)[y].view(n, 1, 1)).abs() < 6)
    x = 0.2 * torch.randn(n, 3, size, size, generator=gen) - 0.5
    x = torch.where(mask[:, None], palette[y][:, :, None, None], x)
    names = tuple(CIFAR10_CLASSES[:num_classes]) if num_classes <= 10 else tuple(map(str, range(num_classes)))
    return ImageSet(to_uint8(x.clamp(-1, 1)), y, names, f"synthetic squares ({n} images, seed {seed})")


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


# ----------------------------------------------------------------------------------------------------
# layers: self-attention, conditional batch norm, spectral norm
# ----------------------------------------------------------------------------------------------------

class SelfAttention(nn.Module):
    """Self-attention of SAGAN (Zhang et al. 2019, Sec. 3; the paper's variant, no pooling of keys).

    query f(x) and key g(x) are 1x1 convs to C/8 channels, value h(x) a 1x1 conv to C channels;
    attn[j, i] = softmax_i(f(x_j) . g(x_i)) is how much output position j attends to input position i;
    o_j = sum_i attn[j, i] h(x_i); output gamma * o + x, with gamma a learned scalar that starts at 0 so the
    network first relies on local convolutions and brings in non-local evidence gradually.
    """

    def __init__(self, channels: int):
        super().__init__()
        inner = max(channels // 8, 1)
        self.query = nn.Conv2d(channels, inner, 1)
        self.key = nn.Conv2d(channels, inner, 1)
        self.value = nn.Conv2d(channels, channels, 1)
        self.gamma = nn.Parameter(torch.zeros(1))

    def attention(self, x: Tensor) -> Tensor:
        """x (N, C, H, W) -> attn (N, HW, HW), rows (queries) sum to 1 over key positions."""
        q = self.query(x).flatten(2)                   # (N, C/8, HW)
        k = self.key(x).flatten(2)                     # (N, C/8, HW)
        scores = torch.bmm(q.transpose(1, 2), k)       # (N, HW_query, HW_key)
        return scores.softmax(dim=-1)

    # On the CPU the fused kernel only pays off for large maps (tests/benchmarks/train_speed.py, one thread:
    # 0.70x at 8x8, 0.88x at 16x16, 2.44x at 32x32); on GPUs it is used at every size.
    cpu_fused_from: int = 32 * 32                      # positions (HW)

    def forward(self, x: Tensor, return_attention: bool = False) -> Tensor | tuple[Tensor, Tensor]:
        v = self.value(x).flatten(2)                   # (N, C, HW)
        explicit = x.device.type == "cpu" and v.shape[2] < self.cpu_fused_from
        if return_attention or explicit:
            attn = self.attention(x)                   # (N, HW, HW)
            o = torch.bmm(v, attn.transpose(1, 2))     # (N, C, HW): o[:, :, j] = sum_i attn[j, i] v[:, :, i]
            out = self.gamma * o.view_as(x) + x
            return (out, attn) if return_attention else out
        # Same o through the fused kernel, which never stores the (HW, HW) matrix (2.4x faster at 32x32 on
        # CPU, flash attention on GPU). Zero-padding query and key to C channels leaves q.k unchanged and
        # gives the equal head sizes the fused kernels need; scale=1 as in the paper (no 1/sqrt(d)).
        pad = (0, v.shape[1] - self.query.out_channels)
        q = F.pad(self.query(x).flatten(2).transpose(1, 2), pad)  # (N, HW, C)
        k = F.pad(self.key(x).flatten(2).transpose(1, 2), pad)    # (N, HW, C)
        v = v.transpose(1, 2).contiguous()                       # (N, HW, C), unit stride as the kernels need
        o = F.scaled_dot_product_attention(q[:, None], k[:, None], v[:, None], scale=1.0)
        return self.gamma * o[:, 0].transpose(1, 2).reshape_as(x) + x   # (N, HW, C) -> (N, C, H, W)


def attention_stack(resolution: int, placements: tuple[int, ...], channels: int) -> nn.Module:
    """One SelfAttention per time `resolution` appears in `placements` (identity when it does not)."""
    layers = [SelfAttention(channels) for r in placements if r == resolution]
    return nn.Sequential(*layers) if layers else nn.Identity()


class ConditionalBatchNorm(nn.Module):
    """BatchNorm whose scale and shift are looked up per class (de Vries 2017; used by SNGAN/SAGAN/BigGAN).
    With num_classes=0 it is a plain affine BatchNorm and ignores labels."""

    def __init__(self, channels: int, num_classes: int):
        super().__init__()
        self.conditional = num_classes > 0
        self.bn = nn.BatchNorm2d(channels, affine=num_classes == 0)
        if num_classes:
            self.gain = nn.Embedding(num_classes, channels)
            self.bias = nn.Embedding(num_classes, channels)
            nn.init.ones_(self.gain.weight)
            nn.init.zeros_(self.bias.weight)

    def forward(self, x: Tensor, y: Tensor | None) -> Tensor:
        """y: class indices (N,), or class weights (N, K) (a soft label: interpolate_classes mixes the
        scale and shift of two classes this way; a one-hot row gives exactly that class's)."""
        h = self.bn(x)
        if y is None or not self.conditional:
            return h
        gain, bias = embed_labels(self.gain, y), embed_labels(self.bias, y)   # (N, C) each
        return h * gain[:, :, None, None] + bias[:, :, None, None]


class _Float32SpectralNorm(_SpectralNorm):
    """torch's spectral-norm parametrization with its power iteration and sigma computed in float32 even
    inside a bf16/fp16 autocast region (autocast would run its matrix-vector products in half precision)."""

    # Left out of torch.compile: inductor keeps the power-iteration vectors u, v for the backward pass by
    # reference and then updates them in place, so a second forward before backward (D on real, then on
    # generated images) fails with "modified by an inplace operation"; eager torch clones them first.
    @torch.compiler.disable
    def forward(self, weight: Tensor) -> Tensor:
        with torch.autocast(weight.device.type, enabled=False):
            return super().forward(weight.float())


def _spectral_norm(module: nn.Module) -> None:
    spectral_norm(module)
    module.parametrizations.weight[0].__class__ = _Float32SpectralNorm  # same state (u, v), float32 maths


def named_seed(seed: int, name: str) -> int:
    """A random seed keyed by a run's seed and a layer's name. Layers initialised from it start the same in
    every model of one seed that has them, whatever other layers (attention, class embeddings) it adds, so
    the arms of a study differ only in what they study."""
    return int.from_bytes(hashlib.sha256(f"{seed}/{name}".encode()).digest()[:8], "little")


def apply_spectral_norm(model: nn.Module, seed: int = 0) -> nn.Module:
    """Spectral norm (Miyato et al. 2018; one power iteration per training-mode forward, in float32) on every
    conv and linear layer of `model`, attention convs included, and on a projection embedding named `embed`.
    Each layer's random power-iteration start comes from named_seed(seed, its name)."""
    for name, module in list(model.named_modules()):
        if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)) or (
                name == "embed" and isinstance(module, nn.Embedding)):
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(named_seed(seed, name))
                _spectral_norm(module)
    return model


def _check_labels(y: Tensor | None, num_classes: int) -> Tensor | None:
    if num_classes and y is None:
        raise GanError(f"this model is class-conditional ({num_classes} classes): pass labels y of shape (N,)")
    return y if num_classes else None


@dataclass(frozen=True)
class Conditioning:
    """Where class labels enter G and D; one row of CONDITIONINGS per Config.cond."""
    g_cbn: bool          # G: class-conditional BatchNorm gains and biases (de Vries 2017)
    g_input: bool        # G: a learned label embedding (z_dim wide, N(0, 1) like z) joined to z
    d_input: bool        # D: one-hot label planes (N, K, S, S) joined to its input image (a vector for mlp)
    d_projection: bool   # D: <embed(y), phi(x)> added to the logit (Miyato & Koyama 2018)
    d_classifier: bool   # D: a linear head phi(x) -> class logits (N, K), trained by cross-entropy


CONDITIONINGS = {
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
}


def generator_input(cfg: Config) -> tuple[nn.Embedding | None, int]:
    """G's label embedding (concat, acgan; None otherwise) and the width of its input (z, then the label)."""
    if not (CONDITIONINGS[cfg.cond].g_input and cfg.cond_classes):
        return None, cfg.z_dim
    return nn.Embedding(cfg.cond_classes, cfg.z_dim), 2 * cfg.z_dim


def embed_labels(embed: nn.Embedding, y: Tensor) -> Tensor:
    """embed(y) for class indices y (N,); for class weights y (N, K) (soft labels, e.g. interpolate_classes)
    the same mixture of the classes' embedding rows. -> (N, embedding_dim)."""
    return y.to(embed.weight.dtype) @ embed.weight if y.is_floating_point() else embed(y)


def join_label_embedding(embed: nn.Embedding | None, z: Tensor, y: Tensor | None) -> Tensor:
    """z (N, z_dim) -> (N, 2 z_dim) = [z, embed(y)] for a G with a label embedding; z itself otherwise."""
    return z if embed is None else torch.cat([z, embed_labels(embed, y)], 1)


def join_label_planes(x: Tensor, y: Tensor | None, num_classes: int) -> Tensor:
    """D's input with the label joined (CGAN): x (N, 3, S, S) -> (N, 3 + K, S, S) with one-hot planes, or a
    flat x (N, F) -> (N, F + K) with the one-hot vector; x itself when num_classes is 0."""
    if not num_classes:
        return x
    onehot = F.one_hot(_check_labels(y, num_classes), num_classes).to(x.dtype)   # (N, K)
    if x.dim() == 2:
        return torch.cat([x, onehot], 1)
    return torch.cat([x, onehot[:, :, None, None].expand(-1, -1, *x.shape[2:])], 1)


def discriminator_heads(cfg: Config, features: int) -> tuple[nn.Embedding | None, nn.Linear | None]:
    """The class terms at the end of D, read from phi (N, features): the projection embedding (projection)
    and the ACGAN classifier (acgan, projection-ac); None where cfg.cond does not use them."""
    cond, k = CONDITIONINGS[cfg.cond], cfg.cond_classes
    return (nn.Embedding(k, features) if cond.d_projection and k else None,
            nn.Linear(features, k) if cond.d_classifier and k else None)


def class_projection(embed: nn.Embedding | None, phi: Tensor, y: Tensor | None) -> Tensor:
    """Class term of a projection discriminator (Miyato & Koyama 2018): <embed(y), phi>, phi (N, C) -> (N,).
    Zero for a D without projection (embed is None)."""
    if embed is None:
        return phi.new_zeros(len(phi))
    y = _check_labels(y, embed.num_embeddings)
    return (embed(y) * phi).sum(1)


def discriminator_output(D: nn.Module, logit: Tensor, phi: Tensor, y: Tensor | None,
                         with_classes: bool) -> Tensor | tuple[Tensor, Tensor]:
    """The end of every D's forward: adversarial logits (N,) = logit + projection term, and with
    `with_classes` also the ACGAN class logits (N, K) from the same features phi (N, C)."""
    logits = logit + class_projection(D.embed, phi, y)
    if not with_classes:
        return logits
    if D.classifier is None:
        raise GanError(f"class logits come only from a discriminator with a class head (cond='acgan' or "
                       f"'projection-ac'), not cond={D.config.cond!r}")
    return logits, D.classifier(phi)


def _stages(img_size: int, smallest: int) -> int:
    """Doublings from `smallest` to img_size pixels (32 from 4: 3)."""
    return int(math.log2(img_size // smallest))


# ----------------------------------------------------------------------------------------------------
# models: every G maps z (N, z_dim) and labels y (N,) to images (N, 3, S, S) in [-1, 1]; every D maps
# images and labels to adversarial logits (N,), and D(x, y, with_classes=True) also returns the ACGAN
# class logits (N, K) of the same forward pass. A new architecture: a G and a D class taking a Config,
# each with attention_resolutions(img_size), and one line in ARCHS.
# ----------------------------------------------------------------------------------------------------

class MLPGenerator(nn.Module):
    """The fully-connected GAN generator (Goodfellow et al. 2014): z -> two hidden layers of 16 g_ch units,
    each Linear-(conditional) BatchNorm-ReLU -> Linear to 3 S^2 values -> Tanh."""

    def __init__(self, cfg: Config):
        super().__init__()
        self.config, self.num_classes = cfg, cfg.cond_classes
        h, k = 16 * cfg.g_ch, cfg.cond_classes if CONDITIONINGS[cfg.cond].g_cbn else 0
        self.label_embed, z_in = generator_input(cfg)
        self.hidden = nn.ModuleList([nn.Linear(z_in, h), nn.Linear(h, h)])
        self.norms = nn.ModuleList([ConditionalBatchNorm(h, k), ConditionalBatchNorm(h, k)])
        self.out = nn.Linear(h, 3 * cfg.img_size ** 2)

    @staticmethod
    def attention_resolutions(img_size: int) -> tuple[int, ...]:
        return ()

    def forward(self, z: Tensor, y: Tensor | None = None) -> Tensor:
        """z (N, z_dim), y (N,) int64 or None -> images (N, 3, S, S) in [-1, 1]."""
        y = _check_labels(y, self.num_classes)
        h = join_label_embedding(self.label_embed, z, y)                # (N, z_dim or 2 z_dim)
        for linear, norm in zip(self.hidden, self.norms):
            h = F.relu(norm(linear(h)[:, :, None, None], y).flatten(1))  # BN over (N, h, 1, 1) = BatchNorm1d
        s = self.config.img_size
        return torch.tanh(self.out(h)).view(len(z), 3, s, s)


class MLPDiscriminator(nn.Module):
    """The fully-connected GAN discriminator: flattened image (with the one-hot label for concat) -> two
    hidden layers of 16 d_ch units with LeakyReLU(0.2) -> one logit plus the class terms."""

    def __init__(self, cfg: Config):
        super().__init__()
        self.config, h = cfg, 16 * cfg.d_ch
        self.label_planes = cfg.cond_classes if CONDITIONINGS[cfg.cond].d_input else 0
        self.hidden = nn.ModuleList([nn.Linear(3 * cfg.img_size ** 2 + self.label_planes, h), nn.Linear(h, h)])
        self.out = nn.Linear(h, 1)
        self.embed, self.classifier = discriminator_heads(cfg, h)

    @staticmethod
    def attention_resolutions(img_size: int) -> tuple[int, ...]:
        return ()

    def forward(self, x: Tensor, y: Tensor | None = None, with_classes: bool = False) -> Tensor | tuple[Tensor, Tensor]:
        """x (N, 3, S, S) in [-1, 1], y (N,) or None -> logits (N,) [, class logits (N, K)]."""
        h = join_label_planes(x.flatten(1), y, self.label_planes)        # (N, 3 S^2 [+ K])
        for linear in self.hidden:
            h = F.leaky_relu(linear(h), 0.2)                             # (N, 16 d_ch)
        return discriminator_output(self, self.out(h).squeeze(1), h, y, with_classes)


class DCGANGenerator(nn.Module):
    """The reference report's DCGAN generator: z -> 4x4 (4c) -> 8x8 (2c) -> 16x16 (c) -> 32x32 (3) at
    img_size 32 (one more doubling stage per doubling of img_size: 8c at 4x4 for 64), each transposed conv
    followed by (conditional) BatchNorm and LeakyReLU(0.1); Tanh output. c = g_ch."""

    def __init__(self, cfg: Config):
        super().__init__()
        self.config, self.num_classes = cfg, cfg.cond_classes
        c, k = cfg.g_ch, cfg.cond_classes if CONDITIONINGS[cfg.cond].g_cbn else 0
        res = self.attention_resolutions(cfg.img_size)                   # 4, 8, ..., S/2
        widths = [c * 2 ** (len(res) - 1 - i) for i in range(len(res))]  # ..., 4c, 2c, c
        self.label_embed, z_in = generator_input(cfg)
        self.convs = nn.ModuleList([nn.ConvTranspose2d(z_in, widths[0], 4, 1, 0, bias=False)]
                                   + [nn.ConvTranspose2d(a, b, 4, 2, 1, bias=False)
                                      for a, b in zip(widths, widths[1:])])
        self.norms = nn.ModuleList([ConditionalBatchNorm(w, k) for w in widths])
        self.attns = nn.ModuleList([attention_stack(r, cfg.g_attn, w) for r, w in zip(res, widths)])
        self.out = nn.ConvTranspose2d(c, 3, 4, 2, 1, bias=False)

    @staticmethod
    def attention_resolutions(img_size: int) -> tuple[int, ...]:
        return tuple(4 * 2 ** i for i in range(_stages(img_size, 4)))

    def forward(self, z: Tensor, y: Tensor | None = None) -> Tensor:
        """z (N, z_dim), y (N,) int64 or None -> images (N, 3, S, S) in [-1, 1]."""
        y = _check_labels(y, self.num_classes)
        h = join_label_embedding(self.label_embed, z, y)[:, :, None, None]  # (N, z_in, 1, 1)
        for conv, norm, attn in zip(self.convs, self.norms, self.attns):
            h = attn(F.leaky_relu(norm(conv(h), y), 0.1))
        return torch.tanh(self.out(h))


class DCGANDiscriminator(nn.Module):
    """The reference report's DCGAN discriminator: strided 4x4 convs 3 -> c -> 2c -> 2c (16x16, 8x8, 4x4)
    at img_size 32 (widths double per stage, the last two equal: c, 2c, 4c, 4c at 64), LeakyReLU(0.2),
    BatchNorm except after the first (none with d_batchnorm=False); a 4x4 conv to one logit plus the class terms."""

    def __init__(self, cfg: Config):
        super().__init__()
        self.config, c = cfg, cfg.d_ch
        res = self.attention_resolutions(cfg.img_size)                   # S/2, ..., 8, 4
        widths = [c * 2 ** min(i, len(res) - 2) for i in range(len(res))]
        self.label_planes = cfg.cond_classes if CONDITIONINGS[cfg.cond].d_input else 0
        self.convs = nn.ModuleList([nn.Conv2d(a, b, 4, 2, 1, bias=i > 0 and not cfg.d_batchnorm)  # BN has a shift
                                    for i, (a, b) in enumerate(zip([3 + self.label_planes] + widths, widths))])
        self.norms = nn.ModuleList([nn.Identity()] + [nn.BatchNorm2d(w) if cfg.d_batchnorm else nn.Identity()
                                                      for w in widths[1:]])
        self.attns = nn.ModuleList([attention_stack(r, cfg.d_attn, w) for r, w in zip(res, widths)])
        self.out = nn.Conv2d(widths[-1], 1, 4, 1, 0, bias=False)
        self.embed, self.classifier = discriminator_heads(cfg, widths[-1])

    @staticmethod
    def attention_resolutions(img_size: int) -> tuple[int, ...]:
        return tuple(img_size // 2 ** (i + 1) for i in range(_stages(img_size, 4)))

    def forward(self, x: Tensor, y: Tensor | None = None, with_classes: bool = False) -> Tensor | tuple[Tensor, Tensor]:
        """x (N, 3, S, S) in [-1, 1], y (N,) or None -> logits (N,) [, class logits (N, K)]."""
        h = join_label_planes(x, y, self.label_planes)                   # (N, 3 [+ K], S, S)
        for conv, norm, attn in zip(self.convs, self.norms, self.attns):
            h = attn(F.leaky_relu(norm(conv(h)), 0.2))                  # ends at (N, C, 4, 4)
        return discriminator_output(self, self.out(h).flatten(), h.sum((2, 3)), y, with_classes)


class GBlock(nn.Module):
    """Pre-activation residual up-block of SNGAN/BigGAN: CBN-ReLU-up-conv3x3-CBN-ReLU-conv3x3, plus a
    1x1-conv shortcut of the upsampled input. (N, C_in, H, W) -> (N, C_out, 2H, 2W)."""

    def __init__(self, c_in: int, c_out: int, num_classes: int):
        super().__init__()
        self.norm1 = ConditionalBatchNorm(c_in, num_classes)
        self.conv1 = nn.Conv2d(c_in, c_out, 3, padding=1)
        self.norm2 = ConditionalBatchNorm(c_out, num_classes)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1)
        self.shortcut = nn.Conv2d(c_in, c_out, 1)

    def forward(self, x: Tensor, y: Tensor | None) -> Tensor:
        h = F.interpolate(F.relu(self.norm1(x, y)), scale_factor=2)
        h = self.conv2(F.relu(self.norm2(self.conv1(h), y)))
        return h + self.shortcut(F.interpolate(x, scale_factor=2))


class DBlock(nn.Module):
    """Residual block of the SNGAN/BigGAN discriminator. The first block sees raw pixels, so it has no
    activation before its first conv (SNGAN's "optimized" block); `mid` (self-attention at the input
    resolution) sits between its two convs. Downsampling is 2x2 average pooling after the convs."""

    def __init__(self, c_in: int, c_out: int, down: bool, first: bool = False, mid: nn.Module | None = None):
        super().__init__()
        self.first, self.down = first, down
        self.conv1 = nn.Conv2d(c_in, c_out, 3, padding=1)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1)
        self.mid = mid if mid is not None else nn.Identity()
        self.shortcut = nn.Conv2d(c_in, c_out, 1) if (c_in != c_out or down) else nn.Identity()

    def _pool(self, h: Tensor) -> Tensor:
        return F.avg_pool2d(h, 2) if self.down else h

    def forward(self, x: Tensor) -> Tensor:
        h = x if self.first else F.relu(x)
        h = self.conv2(F.relu(self.mid(self.conv1(h))))
        # the first block pools before its shortcut conv (cheaper, as in SNGAN); the others after it
        sc = self.shortcut(self._pool(x)) if self.first else self._pool(self.shortcut(x))
        return self._pool(h) + sc


class ResNetGenerator(nn.Module):
    """z -> linear to 4x4 -> up-blocks to 8x8, 16x16, ..., SxS, each optionally followed by self-attention
    -> BN-ReLU-conv3x3 -> Tanh. All blocks have g_ch channels (SNGAN CIFAR: 256)."""

    def __init__(self, cfg: Config):
        super().__init__()
        self.config, self.num_classes = cfg, cfg.cond_classes
        c, k = cfg.g_ch, cfg.cond_classes if CONDITIONINGS[cfg.cond].g_cbn else 0
        self.ch = c
        res = self.attention_resolutions(cfg.img_size)                   # 8, 16, ..., S
        self.label_embed, z_in = generator_input(cfg)
        self.linear = nn.Linear(z_in, 4 * 4 * c)
        self.blocks = nn.ModuleList([GBlock(c, c, k) for _ in res])
        self.attns = nn.ModuleList([attention_stack(r, cfg.g_attn, c) for r in res])
        self.norm = nn.BatchNorm2d(c)
        self.out = nn.Conv2d(c, 3, 3, padding=1)

    @staticmethod
    def attention_resolutions(img_size: int) -> tuple[int, ...]:
        return tuple(8 * 2 ** i for i in range(_stages(img_size, 4)))

    def forward(self, z: Tensor, y: Tensor | None = None) -> Tensor:
        """z (N, z_dim), y (N,) int64 or None -> images (N, 3, S, S) in [-1, 1]."""
        y = _check_labels(y, self.num_classes)
        h = self.linear(join_label_embedding(self.label_embed, z, y)).view(len(z), self.ch, 4, 4)  # (N, c, 4, 4)
        for block, attn in zip(self.blocks, self.attns):
            h = attn(block(h, y))                                       # (N, c, 8|16|..|S, same)
        return torch.tanh(self.out(F.relu(self.norm(h))))


class ResNetDiscriminator(nn.Module):
    """SNGAN's CIFAR discriminator: blocks S -> S/2 -> ... -> 8 (32: 32->16->8), then two blocks at 8x8,
    d_ch channels (SNGAN: 128); self-attention at S (inside the first block) or after the block producing
    S/2, ..., 8; ReLU, global sum pooling, linear logit plus the class terms."""

    def __init__(self, cfg: Config):
        super().__init__()
        self.config, c = cfg, cfg.d_ch
        res = self.attention_resolutions(cfg.img_size)                   # S, S/2, ..., 8
        self.label_planes = cfg.cond_classes if CONDITIONINGS[cfg.cond].d_input else 0
        first = DBlock(3 + self.label_planes, c, down=True, first=True, mid=attention_stack(res[0], cfg.d_attn, c))
        self.blocks = nn.ModuleList([first] + [DBlock(c, c, down=True) for _ in res[2:]]
                                    + [DBlock(c, c, down=False), DBlock(c, c, down=False)])
        self.attns = nn.ModuleList([attention_stack(r, cfg.d_attn, c) for r in res[1:]]
                                   + [nn.Identity(), nn.Identity()])
        self.linear = nn.Linear(c, 1)
        self.embed, self.classifier = discriminator_heads(cfg, c)

    @staticmethod
    def attention_resolutions(img_size: int) -> tuple[int, ...]:
        return tuple(img_size // 2 ** i for i in range(_stages(img_size, 8) + 1))

    def forward(self, x: Tensor, y: Tensor | None = None, with_classes: bool = False) -> Tensor | tuple[Tensor, Tensor]:
        """x (N, 3, S, S) in [-1, 1], y (N,) or None -> logits (N,) [, class logits (N, K)]."""
        h = join_label_planes(x, y, self.label_planes)                   # (N, 3 [+ K], S, S)
        for block, attn in zip(self.blocks, self.attns):
            h = attn(block(h))                                          # ends at (N, c, 8, 8)
        phi = F.relu(h).sum((2, 3))                                     # (N, c)
        return discriminator_output(self, self.linear(phi).squeeze(1), phi, y, with_classes)


@dataclass(frozen=True)
class Architecture:
    """A G and a D class (each built from a Config) and how their weights start."""
    generator: type[nn.Module]
    discriminator: type[nn.Module]
    init: str            # "normal": N(0, 0.02) weights, N(1, 0.02) BN scales (Radford 2016); "orthogonal" (BigGAN)


ARCHS = {"mlp": Architecture(MLPGenerator, MLPDiscriminator, "normal"),
         "dcgan": Architecture(DCGANGenerator, DCGANDiscriminator, "normal"),
         "resnet": Architecture(ResNetGenerator, ResNetDiscriminator, "orthogonal")}


def attention_resolutions(arch: str, who: str, img_size: int) -> tuple[int, ...]:
    """Resolutions at which `who` ("G" or "D") of `arch` can place self-attention, in forward order."""
    if arch not in ARCHS or img_size not in IMG_SIZES:
        return ()
    models = ARCHS[arch]
    return (models.generator if who == "G" else models.discriminator).attention_resolutions(img_size)


def _init_weights(model: nn.Module, init: str, seed: int) -> None:
    """"normal": N(0, 0.02) weights, N(1, 0.02) BN scales (DCGAN, Radford 2016). "orthogonal" (BigGAN).
    Every layer draws from named_seed(seed, its name): same seed and name, same initial weights."""
    for name, m in model.named_modules():
        gen = torch.Generator().manual_seed(named_seed(seed, name))
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            if init == "normal":
                nn.init.normal_(m.weight, 0.0, 0.02, generator=gen)
            else:
                nn.init.orthogonal_(m.weight, generator=gen)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d) and m.affine and init == "normal":
            nn.init.normal_(m.weight, 1.0, 0.02, generator=gen)
    # D's class projection starts small (an N(0, 1) default would swamp the logits); G's CBN gains stay 1
    # and its label embedding N(0, 1), on the scale of z
    if isinstance(getattr(model, "embed", None), nn.Embedding):
        gen = torch.Generator().manual_seed(named_seed(seed, "embed"))
        if init == "normal":
            nn.init.normal_(model.embed.weight, 0.0, 0.02, generator=gen)
        else:
            nn.init.xavier_uniform_(model.embed.weight, generator=gen)


def build_models(cfg: Config) -> tuple[nn.Module, nn.Module]:
    """(G, D) for `cfg` from ARCHS, initialised, with spectral norm where cfg.spectral_norm puts it; on the
    CPU. Each model keeps cfg as `model.config` (sample() and checkpoints read it)."""
    cfg.validate()
    arch = ARCHS[cfg.arch]
    # every weight comes from named_seed; the global RNG (data order, latents) is left as it was
    with torch.random.fork_rng(devices=[]):
        G, D = arch.generator(cfg), arch.discriminator(cfg)
    for model, sn in ((G, cfg.spectral_norm == "gd"), (D, cfg.spectral_norm in ("d", "gd"))):
        _init_weights(model, arch.init, cfg.seed)
        if sn:
            apply_spectral_norm(model, cfg.seed)
    return G, D


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def layer_table(model: nn.Module) -> list[dict[str, Any]]:
    """G's or D's stages in the order a forward pass runs them (the model's children, ModuleLists opened;
    identity placeholders left out): name, type, output shape (C, H, W) of one sample and parameters, from
    one forward pass on two dummy inputs. For the report's and notebooks' architecture tables."""
    cfg, stages = model.config, []
    for name, child in model.named_children():
        for i, m in enumerate(child) if isinstance(child, nn.ModuleList) else [(None, child)]:
            if not isinstance(m, nn.Identity):
                stages.append((name if i is None else f"{name}.{i}", m))
    rows: list[dict[str, Any]] = []

    def kind(module: nn.Module) -> str:      # "Conv2d + SN", "SelfAttention x 2", "GBlock"
        if isinstance(module, nn.Sequential):
            names = sorted({kind(m) for m in module})
            return names[0] + (f" × {len(module)}" if len(module) > 1 else "") if len(names) == 1 else "Sequential"
        name = type(module).__name__
        return name.removeprefix("Parametrized") + " + SN" if name.startswith("Parametrized") else name

    def record(name: str, module: nn.Module, out: Any) -> None:
        out = out[0] if isinstance(out, tuple) else out
        rows.append({"layer": name, "type": kind(module), "output": tuple(out.shape[1:]),
                     "params": count_parameters(module)})

    hooks = [m.register_forward_hook(lambda mod, _, out, name=name: record(name, mod, out)) for name, m in stages]
    labels = torch.arange(2) % cfg.cond_classes if cfg.cond_classes else None
    try:
        with eval_mode(model), torch.no_grad():
            if isinstance(model, tuple(a.generator for a in ARCHS.values())):
                model(torch.zeros(2, cfg.z_dim), labels)
            else:
                model(torch.zeros(2, 3, cfg.img_size, cfg.img_size), labels,
                      **({"with_classes": True} if getattr(model, "classifier", None) is not None else {}))
    finally:
        for h in hooks:
            h.remove()
    return rows


def format_layer_table(rows: list[dict[str, Any]], fmt: str = "markdown") -> str:
    """layer_table() rows as a table (format_table), with the total parameter count as the last row."""
    body = [[r["layer"], r["type"], " × ".join(map(str, r["output"])), f"{r['params']:,}"] for r in rows]
    total = sum(r["params"] for r in rows)
    return format_table(["stage", "type", "output shape", "parameters"], [*body, ["total", "", "", f"{total:,}"]],
                        fmt, align="llrr")


# ----------------------------------------------------------------------------------------------------
# losses: pure functions of logits; in every loss D scores real images high
# ----------------------------------------------------------------------------------------------------

def _wgan_d(real_logits: Tensor, fake_logits: Tensor) -> Tensor:
    """Wasserstein critic (Arjovsky 2017): E[D(fake)] - E[D(real)], minimised (dual form, negated)."""
    return fake_logits.mean() - real_logits.mean()


def _wgan_g(fake_logits: Tensor) -> Tensor:
    """Wasserstein generator: -E[D(fake)]."""
    return -fake_logits.mean()


def _hinge_d(real_logits: Tensor, fake_logits: Tensor) -> Tensor:
    """Hinge (Lim & Ye 2017; SAGAN's choice): E[relu(1 - D(real))] + E[relu(1 + D(fake))]."""
    return F.relu(1.0 - real_logits).mean() + F.relu(1.0 + fake_logits).mean()


def _bce_d(real_logits: Tensor, fake_logits: Tensor) -> Tensor:
    """GAN discriminator (Goodfellow 2014): -E[log sigmoid(D(real))] - E[log(1 - sigmoid(D(fake)))]."""
    return (F.binary_cross_entropy_with_logits(real_logits, torch.ones_like(real_logits))
            + F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits)))


def _bce_g(fake_logits: Tensor) -> Tensor:
    """Non-saturating generator loss: -E[log sigmoid(D(fake))]."""
    return F.binary_cross_entropy_with_logits(fake_logits, torch.ones_like(fake_logits))


# name -> (D loss (real_logits, fake_logits), G loss (fake_logits)); hinge's G loss is Wasserstein's
LOSSES: dict[str, tuple[Callable[[Tensor, Tensor], Tensor], Callable[[Tensor], Tensor]]] = {
    "wgan": (_wgan_d, _wgan_g), "hinge": (_hinge_d, _wgan_g), "bce": (_bce_d, _bce_g)}


def _loss_pair(name: str) -> tuple[Callable[[Tensor, Tensor], Tensor], Callable[[Tensor], Tensor]]:
    if name not in LOSSES:
        raise GanError(f"unknown loss {name!r}: choose one of {sorted(LOSSES)}")
    return LOSSES[name]


def d_loss(name: str, real_logits: Tensor, fake_logits: Tensor) -> Tensor:
    """Discriminator/critic loss to minimise; logits (N,) for real and generated images -> scalar."""
    return _loss_pair(name)[0](real_logits, fake_logits)


def g_loss(name: str, fake_logits: Tensor) -> Tensor:
    """Generator loss to minimise; logits (N,) of generated images -> scalar."""
    return _loss_pair(name)[1](fake_logits)


def class_loss(class_logits: Tensor, y: Tensor) -> Tensor:
    """ACGAN's auxiliary classifier loss (Odena et al. 2017): cross-entropy -E[log softmax(class_logits)[y]],
    class_logits (N, K), labels y (N,). D minimises it on real images, G on its images and their labels."""
    return F.cross_entropy(class_logits, y)


def discriminate(D: nn.Module, x: Tensor, y: Tensor | None) -> tuple[Tensor, Tensor | None]:
    """D's adversarial logits (N,) and, for an ACGAN D, its class logits (N, K) (else None), from one
    forward pass, in float32 (under autocast too: losses are computed in float32)."""
    if D.classifier is None:
        return D(x, y).float(), None
    logits, classes = D(x, y, with_classes=True)
    return logits.float(), classes.float()


# ----------------------------------------------------------------------------------------------------
# differentiable augmentation (Zhao et al. 2020, DiffAugment): the same random transforms of real and
# generated images before every D forward in training, differentiable so G learns through them
# ----------------------------------------------------------------------------------------------------

def _per_image(x: Tensor) -> Tensor:
    """Uniform [0, 1) draws (N, 1, 1, 1), one per image of x (N, C, H, W)."""
    return torch.rand(len(x), 1, 1, 1, device=x.device, dtype=x.dtype)


def augment_color(x: Tensor) -> Tensor:
    """Per image: brightness + U(-0.5, 0.5), saturation x U(0, 2), contrast x U(0.5, 1.5) (DiffAugment's
    ranges for images in [-1, 1]); x (N, 3, H, W) -> (N, 3, H, W)."""
    x = x + (_per_image(x) - 0.5)
    grey = x.mean(dim=1, keepdim=True)
    x = (x - grey) * (2 * _per_image(x)) + grey
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    return (x - mean) * (_per_image(x) + 0.5) + mean


def augment_translation(x: Tensor, ratio: float = 0.125) -> Tensor:
    """Per image: shift by up to ratio * size pixels along each axis (integers, uniform), filling the
    uncovered border with zeros (mid-grey); x (N, C, H, W) -> (N, C, H, W)."""
    n, _, h, w = x.shape
    sy, sx = int(h * ratio + 0.5), int(w * ratio + 0.5)
    rows = torch.arange(h, device=x.device).view(1, h, 1) - torch.randint(-sy, sy + 1, (n, 1, 1), device=x.device)
    cols = torch.arange(w, device=x.device).view(1, 1, w) - torch.randint(-sx, sx + 1, (n, 1, 1), device=x.device)
    inside = (rows >= 0) & (rows < h) & (cols >= 0) & (cols < w)              # (N, H, W)
    batch = torch.arange(n, device=x.device).view(n, 1, 1)
    moved = x.permute(0, 2, 3, 1)[batch, rows.clamp(0, h - 1), cols.clamp(0, w - 1)]   # (N, H, W, C)
    return (moved * inside.unsqueeze(-1).to(x.dtype)).permute(0, 3, 1, 2)


def augment_cutout(x: Tensor, ratio: float = 0.5) -> Tensor:
    """Per image: zero (mid-grey) a ratio * size square centred on a uniform pixel, cut at the border;
    x (N, C, H, W) -> (N, C, H, W)."""
    n, _, h, w = x.shape
    ch, cw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    top = torch.randint(0, h, (n, 1, 1), device=x.device) - ch // 2
    left = torch.randint(0, w, (n, 1, 1), device=x.device) - cw // 2
    rows, cols = torch.arange(h, device=x.device).view(1, h, 1), torch.arange(w, device=x.device).view(1, 1, w)
    cut = (rows >= top) & (rows < top + ch) & (cols >= left) & (cols < left + cw)   # (N, H, W)
    return x * (~cut).unsqueeze(1).to(x.dtype)


def consistency_shift(x: Tensor) -> Tensor:
    """bCR's semantics-preserving transform (Zhang et al. 2020; Zhao et al. 2021): per image a random
    horizontal flip, then a shift by up to 1/8 of the size (augment_translation); x (N, C, H, W) -> same."""
    flip = torch.rand(len(x), 1, 1, 1, device=x.device) < 0.5
    return augment_translation(torch.where(flip, x.flip(3), x))


def consistency_penalty(logits: Tensor, shifted_logits: Tensor) -> Tensor:
    """bCR's term for one batch: E[(D(x) - D(T(x)))^2], logits (N,) of x and of its transform -> scalar."""
    return (logits - shifted_logits).pow(2).mean()


AUGMENTS: dict[str, Callable[[Tensor], Tensor]] = {
    "color": augment_color, "translation": augment_translation, "cutout": augment_cutout}


def augment_policy(policy: str) -> tuple[str, ...]:
    """Config.diffaug ("none" or comma-separated AUGMENTS names, applied in that order) -> the names."""
    names = () if policy == "none" else tuple(p.strip() for p in policy.split(","))
    bad = [p for p in names if p not in AUGMENTS]
    if bad or len(set(names)) != len(names):
        raise GanError(f"config diffaug={policy!r}: give 'none' or distinct names from {list(AUGMENTS)} "
                       f"joined by commas, e.g. diffaug=translation,cutout")
    return names


def diff_augment(x: Tensor, policy: str) -> Tensor:
    """x (N, C, H, W) through the policy's transforms (each drawn per image from the global RNG, so resumed
    training repeats them); policy "none" returns x itself."""
    for name in augment_policy(policy):
        x = AUGMENTS[name](x)
    return x


def gradient_penalty(D: nn.Module, real: Tensor, fake: Tensor, y: Tensor | None, eps: Tensor) -> Tensor:
    """WGAN-GP (Gulrajani 2017): E[(||grad_x D(x_hat)||_2 - 1)^2] at x_hat = eps * real + (1 - eps) * fake,
    eps (N, 1, 1, 1) in [0, 1]. Differentiable w.r.t. D's parameters."""
    x_hat = (eps * real + (1 - eps) * fake).detach().requires_grad_(True)
    (grad,) = torch.autograd.grad(D(x_hat, y).sum(), x_hat, create_graph=True)
    return (grad.flatten(1).norm(dim=1) - 1).pow(2).mean()


# ----------------------------------------------------------------------------------------------------
# training step
# ----------------------------------------------------------------------------------------------------

@torch.no_grad()
def ema_update(ema: nn.Module, model: nn.Module, decay: float) -> None:
    """ema_p <- decay * ema_p + (1 - decay) * p for parameters; buffers (BN statistics, spectral norm's
    u/v power-iteration vectors) are copied, not averaged (train() recomputes the EMA's BN statistics
    with standing_batch_norm before every evaluation)."""
    for e, p in zip(ema.parameters(), model.parameters()):
        e.lerp_(p, 1.0 - decay)
    for e, b in zip(ema.buffers(), model.buffers()):
        e.copy_(b)


def make_optimizers(cfg: Config, G: nn.Module, D: nn.Module) -> tuple[torch.optim.Optimizer, torch.optim.Optimizer]:
    """TTUR (Heusel 2017): separate learning rates for G and D."""
    if cfg.optimizer == "adam":
        return (torch.optim.Adam(G.parameters(), cfg.g_lr, betas=cfg.betas),
                torch.optim.Adam(D.parameters(), cfg.d_lr, betas=cfg.betas))
    return torch.optim.RMSprop(G.parameters(), cfg.g_lr), torch.optim.RMSprop(D.parameters(), cfg.d_lr)


def random_labels(n: int, num_classes: int, device: torch.device) -> Tensor | None:
    """Uniform class labels (n,) for generated images, or None for an unconditional model."""
    return torch.randint(num_classes, (n,), device=device) if num_classes else None


def train_step(cfg: Config, G: nn.Module, D: nn.Module, G_ema: nn.Module | None,
               opt_g: torch.optim.Optimizer, opt_d: torch.optim.Optimizer,
               real_batch: Callable[[], tuple[Tensor, Tensor]], iteration: int,
               prec: Precision | None = None) -> dict[str, float]:
    """One GAN round: cfg.n_critic D updates, then cfg.n_gen G updates and the EMA update.
    `real_batch()` returns images (N, 3, S, S) in [-1, 1] and labels (N,). `prec` (default: float32) runs
    G and D under autocast; logits, losses and the gradient penalty stay in float32. With cfg.diffaug every
    image D sees in training (real, generated, the penalty's interpolates) is augmented first (diff_augment:
    new draws at every D call); with cfg.cr_weight D also pays bCR's consistency penalty. Returns the last
    losses and mean D logits on real and generated images (D(x), D(G(z))) of the last D step."""
    d_loss_fn, g_loss_fn = _loss_pair(cfg.loss)
    device = next(G.parameters()).device
    prec = prec or Precision(device.type)
    # (1) Update D: minimise d_loss (+ Lipschitz terms) on a real batch and a detached generated batch
    for step in range(cfg.n_critic):
        real, y_real = real_batch()
        y_real = y_real if cfg.cond_classes else None
        n = len(real)
        y_fake = random_labels(n, cfg.cond_classes, device)
        # the last critic step keeps G's graph: (2) reuses its batch, saving one G forward (pytorch/examples)
        with torch.set_grad_enabled(step == cfg.n_critic - 1), prec.autocast():
            fake = G(torch.randn(n, cfg.z_dim, device=device), y_fake)
        seen_real, seen_fake = diff_augment(real, cfg.diffaug), diff_augment(fake.detach(), cfg.diffaug)
        with prec.autocast():
            real_logits, real_classes = discriminate(D, seen_real, y_real)
            fake_logits, _ = discriminate(D, seen_fake, y_fake)
        loss_d = d_loss_fn(real_logits, fake_logits)
        if real_classes is not None:   # ACGAN: D also learns to classify real images
            loss_d = loss_d + cfg.acgan_weight * class_loss(real_classes, y_real)
        if cfg.drift:
            loss_d = loss_d + cfg.drift * real_logits.pow(2).mean()
        if cfg.cr_weight:              # bCR: D's scores of real and generated images barely move under a shift
            with prec.autocast():
                real_shifted, _ = discriminate(D, consistency_shift(seen_real), y_real)
                fake_shifted, _ = discriminate(D, consistency_shift(seen_fake), y_fake)
            loss_d = loss_d + cfg.cr_weight * (consistency_penalty(real_logits, real_shifted)
                                               + consistency_penalty(fake_logits, fake_shifted))
        if cfg.lipschitz == "gp":
            eps = torch.rand(n, 1, 1, 1, device=device)
            loss_d = loss_d + cfg.gp_weight * gradient_penalty(D, seen_real, seen_fake.float(), y_real, eps)
        opt_d.zero_grad(set_to_none=True)
        prec.step(loss_d, opt_d, prec.scaler_d)
        if cfg.lipschitz == "clip":
            with torch.no_grad():
                for p in D.parameters():
                    p.clamp_(-cfg.clip_value, cfg.clip_value)
    # (2) Update G cfg.n_gen times: minimise g_loss, scored by the updated D; the first step reuses the last
    # critic step's batch, later ones draw a new one
    for step in range(cfg.n_gen):
        with prec.autocast():
            if step > 0:
                y_fake = random_labels(n, cfg.cond_classes, device)
                fake = G(torch.randn(n, cfg.z_dim, device=device), y_fake)
            g_logits, g_classes = discriminate(D, diff_augment(fake, cfg.diffaug), y_fake)
        loss_g = g_loss_fn(g_logits)
        if g_classes is not None:      # ACGAN: G makes images D classifies as their labels
            loss_g = loss_g + cfg.acgan_weight * class_loss(g_classes, y_fake)
        opt_g.zero_grad(set_to_none=True)
        prec.step(loss_g, opt_g, prec.scaler_g)
    if G_ema is not None:
        ema_update(G_ema, G, cfg.ema_decay if iteration >= cfg.ema_start else 0.0)
    return {"d_loss": loss_d.item(), "g_loss": loss_g.item(),
            "d_real": real_logits.mean().item(), "d_fake": fake_logits.mean().item()}


# ----------------------------------------------------------------------------------------------------
# evaluation: Inception (or proxy) features, FID, KID, cached real statistics
# ----------------------------------------------------------------------------------------------------

INCEPTION_WEIGHTS_FILE = "pt_inception-2015-12-05-6726825d.pth"  # pytorch-fid's FID weights
# two samples of a class are near-duplicates when closer in feature space than this fraction of the
# mean distance between two real images of the class (see diversity())
DUPLICATE_FRACTION = 0.25
IS_SPLITS = 10                     # the Inception Score's splits (Salimans et al. 2016; torch-fidelity: 10)


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
KIT_CLASSIFIER = Path(__file__).resolve().parent / "model" / "eval" / "cifar10_classifier.pt"


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


def _sqrtm_psd(a: np.ndarray) -> np.ndarray:
    """Square root of a symmetric positive semi-definite matrix via its eigendecomposition."""
    w, v = np.linalg.eigh(a)
    return (v * np.sqrt(np.clip(w, 0, None))) @ v.T


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray) -> float:
    """||mu1 - mu2||^2 + tr(S1) + tr(S2) - 2 tr((S1 S2)^(1/2)) (Dowson & Landau 1982; FID, Heusel 2017).
    tr((S1 S2)^(1/2)) = tr((A S2 A)^(1/2)) with A = S1^(1/2): a symmetric PSD root, stable in float64."""
    a = _sqrtm_psd(np.asarray(sigma1, np.float64))
    m = a @ np.asarray(sigma2, np.float64) @ a
    tr_covmean = np.sqrt(np.clip(np.linalg.eigvalsh((m + m.T) / 2), 0, None)).sum()
    diff = np.asarray(mu1, np.float64) - np.asarray(mu2, np.float64)
    return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2 * tr_covmean)


def kernel_inception_distance(f1: np.ndarray, f2: np.ndarray, subsets: int = 50, subset_size: int = 1000,
                              seed: int = 0) -> tuple[float, float]:
    """KID (Binkowski 2018): unbiased MMD^2 with kernel (x.y / d + 1)^3, mean and std over random subsets.
    When both sets are no larger than `subset_size`, every subset is the whole of both: one value, and the
    std is NaN (no spread to measure) rather than a rounding-error 1e-16."""
    rng = np.random.default_rng(seed)
    m = min(subset_size, len(f1), len(f2))
    if m == len(f1) == len(f2):
        subsets = 1
    d = f1.shape[1]
    values = []
    for _ in range(subsets):
        x = f1[rng.choice(len(f1), m, replace=False)]
        y = f2[rng.choice(len(f2), m, replace=False)]
        kxx, kyy, kxy = ((a @ b.T / d + 1) ** 3 for a, b in ((x, x), (y, y), (x, y)))
        mmd = ((kxx.sum() - np.trace(kxx)) + (kyy.sum() - np.trace(kyy))) / (m * (m - 1)) - 2 * kxy.mean()
        values.append(mmd)
    return float(np.mean(values)), float(np.std(values)) if len(values) > 1 else math.nan


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


def inception_score(logits: np.ndarray, splits: int = IS_SPLITS) -> tuple[float, float]:
    """Inception Score (Salimans et al. 2016) of logits (N, K): with p(y|x) = softmax(logits), each of
    `splits` consecutive parts of the samples scores exp(mean_x KL(p(y|x) || p(y))), p(y) the part's mean
    prediction; returns the mean and std over the parts. As the original TF code and torch-fidelity
    (without its shuffle). From 1 (every prediction equal) up to K (confident and spread evenly)."""
    if len(logits) < splits:
        raise GanError(f"the Inception Score needs at least {splits} samples (one per split), got {len(logits)}")
    log_p = torch.as_tensor(logits, dtype=torch.float64).log_softmax(1)  # (N, K)
    n, scores = len(log_p), []
    for i in range(splits):
        part = log_p[i * n // splits:(i + 1) * n // splits]
        p = part.exp()                                                  # (n / splits, K) p(y|x)
        # KL per sample; xlogy (0 log 0 = 0) keeps classes whose probabilities underflow to 0 out of it
        kl = (p * part - torch.special.xlogy(p, p.mean(0))).sum(1)     # (n / splits,)
        scores.append(kl.mean().exp().item())
    return float(np.mean(scores)), float(np.std(scores))


def class_accuracy(logits: np.ndarray, labels: np.ndarray | Tensor, num_classes: int) -> dict[str, Any]:
    """Fraction of samples whose arg-max class is their label: overall, and per class (NaN for a class
    without samples). logits (N, C), labels (N,) in [0, num_classes)."""
    labels = np.asarray(labels)
    if logits.shape[1] != num_classes:
        raise GanError(f"the classifier gives {logits.shape[1]} classes but the images have {num_classes}: "
                       f"pass a classifier for these classes (classifier= / --classifier), or none")
    right = logits.argmax(1) == labels
    per_class = [float(right[labels == c].mean()) if (labels == c).any() else float("nan") for c in range(num_classes)]
    return {"overall": float(right.mean()), "per_class": per_class}


def _pair_distances(x: Tensor) -> Tensor:
    """Euclidean distances of all pairs i < j of the rows of x (N, D) -> (N (N - 1) / 2,)."""
    i, j = torch.triu_indices(len(x), len(x), 1)
    return torch.cdist(x, x, compute_mode="donot_use_mm_for_euclid_dist")[i, j]     # exact: 0 for copies


def diversity(fake: np.ndarray, fake_labels: np.ndarray | None, real: np.ndarray, real_labels: np.ndarray | None,
              duplicate_fraction: float = DUPLICATE_FRACTION) -> dict[str, Any]:
    """Mode collapse, per class, in feature space: the mean distance between two samples of the class, and
    the fraction of their pairs that are near-duplicates (closer than `duplicate_fraction` times the mean
    distance between two real images of the class), each for generated (features (N, D)) and real
    (features (M, D)) images. Labels None: one group. Both sets are cut to the same count per class, as
    the fraction of close pairs grows with the count. Returns per-class lists and their means."""
    groups = [0] if fake_labels is None else sorted(set(np.asarray(fake_labels).tolist()))
    rows = {key: [] for key in ("dup_fake", "dup_real", "dist_fake", "dist_real")}
    for c in groups:
        f = fake if fake_labels is None else fake[np.asarray(fake_labels) == c]
        r = real if real_labels is None or fake_labels is None else real[np.asarray(real_labels) == c]
        m = min(len(f), len(r))
        if m < 2:
            raise GanError(f"diversity needs at least 2 generated and 2 real images per class (class {c}: "
                           f"{len(f)} generated, {len(r)} real)")
        df, dr = (_pair_distances(torch.as_tensor(a[:m], dtype=torch.float64)) for a in (f, r))
        threshold = duplicate_fraction * dr.mean()
        for key, value in (("dup_fake", (df < threshold).double().mean()), ("dup_real", (dr < threshold).double().mean()),
                           ("dist_fake", df.mean()), ("dist_real", dr.mean())):
            rows[key].append(float(value))
    return {**{key: float(np.mean(v)) for key, v in rows.items()}, "per_class": rows, "classes": groups}


def median_nearest_neighbour(images: Tensor, chunk: int = 500) -> float:
    """Median over images (N, 3, H, W) of the pixel-space Euclidean distance (values in [0, 1]) to the
    nearest other image of the set: small when a generator repeats itself."""
    x = images.flatten(1).float() / 255.0 if images.dtype == torch.uint8 else images.flatten(1).float()
    nearest = []
    for i in range(0, len(x), chunk):
        d = torch.cdist(x[i:i + chunk], x)                              # (chunk, N)
        d[torch.arange(len(d)), torch.arange(i, i + len(d))] = float("inf")   # not itself
        nearest.append(d.min(1).values)
    return float(torch.cat(nearest).median())


def nearest_neighbour_ratio(fake: Tensor, real: Tensor) -> float:
    """median_nearest_neighbour of generated uint8 images over that of as many real ones (1: as spread
    out as real images; below 1: samples closer to each other than real images are)."""
    n = min(len(fake), len(real))
    return median_nearest_neighbour(fake[:n]) / median_nearest_neighbour(real[:n])


def score(fake: Stats, real: Stats, label: str) -> dict[str, Any]:
    """Frechet distance and KID between generated and real statistics, with the sample counts."""
    kid, kid_std = kernel_inception_distance(fake.features, real.features)
    return {"fd": frechet_distance(fake.mu, fake.sigma, real.mu, real.sigma), "kid": kid, "kid_std": kid_std,
            "n_fake": fake.n, "n_real": real.n, "metric": label}


def sample_scores(out: NetOutputs, labels: Tensor | None, net: FeatureNet, num_classes: int) -> dict[str, Any]:
    """IS (when the net gives logits and there are at least 10 samples, one per split) and class accuracy
    (when it has a classifier for the model's `num_classes` classes and the samples have labels: the kit's
    CIFAR-10 classifier says nothing about a folder of 2 classes or a relabelled CIFAR-10 subset)."""
    result: dict[str, Any] = {}
    if out.is_logits is not None and len(out.is_logits) >= IS_SPLITS:
        result["is"], result["is_std"] = inception_score(out.is_logits)
        result["is_metric"] = net.is_label
    if out.class_logits is not None and labels is not None and out.class_logits.shape[1] == num_classes:
        acc = class_accuracy(out.class_logits, labels.numpy(), out.class_logits.shape[1])
        result.update(class_acc=acc["overall"], class_acc_per_class=acc["per_class"], class_metric=net.class_label)
    return result


def format_score(s: dict[str, Any]) -> str:
    """One line naming each metric and the sample counts, e.g. 'FID 23.41, KID 0.02 ± 0.001 (10000
    generated vs 10000 real), IS 6.1 ± 0.1, class accuracy (proxy: ...) 0.366 (real test images 0.859)'."""
    kid_name = "KID" if s["metric"] == "FID" else "KID (proxy)"
    spread = f" ± {s['kid_std']:.2g}" if math.isfinite(s["kid_std"]) else " (one subset, no spread)"
    parts = [f"{s['metric']} {s['fd']:.4g}", f"{kid_name} {s['kid']:.4g}{spread} "
                                              f"({s['n_fake']} generated vs {s['n_real']} real)"]
    if "is" in s:
        parts.append(f"{s['is_metric']} {s['is']:.4g} ± {s['is_std']:.2g}")
    if "class_acc" in s:
        real = f" (real test images {s['real_class_acc']:.3f})" if "real_class_acc" in s else ""
        parts.append(f"{s['class_metric']} {s['class_acc']:.3f}{real}")
    return ", ".join(parts)


def _sample_and_score(G: nn.Module, real: Stats, net: FeatureNet, n: int,
                      seed: int) -> tuple[dict[str, Any], Tensor, Tensor | None, NetOutputs]:
    """(scores, the uint8 images (n, 3, 32, 32), their labels (n,) or None, the net's outputs on them)."""
    _, labels = latents(G, n, seed=seed)
    images = to_uint8(sample(G, n, seed=seed))
    out = net.outputs(images)
    scores = {**score(Stats.of(out.features), real, net.label),
              **sample_scores(out, labels, net, G.config.cond_classes)}
    return scores, images, labels, out


def format_diversity(s: dict[str, Any]) -> str:
    """One line from test_set_score's diversity and nearest-neighbour entries."""
    d = s["diversity"]
    return (f"near-duplicate pairs {d['dup_fake']:.4f} (real test images {d['dup_real']:.4f}), mean pairwise "
            f"feature distance {d['dist_fake']:.4g} (real {d['dist_real']:.4g}), per class; median "
            f"nearest-neighbour distance in pixels {s['nn_ratio']:.3f} x real test images'")


def format_table(head: list[str], rows: list[list[str]], fmt: str = "markdown", align: str | None = None) -> str:
    """A table as markdown or LaTeX (booktabs; columns aligned by `align`, e.g. "llr", default the first
    left and the rest right; _ , * ± and × escaped): the one place every table of the kit is formatted."""
    if fmt == "markdown":
        return "\n".join(["| " + " | ".join(head) + " |", "|" + "---|" * len(head),
                          *("| " + " | ".join(r) + " |" for r in rows)])
    if fmt != "latex":
        raise GanError(f"table format {fmt!r}: choose 'markdown' or 'latex'")
    esc = lambda t: (t.replace("_", r"\_").replace(",", "{,}").replace("*", r"$^*$")  # noqa: E731
                     .replace("±", r"$\pm$").replace("×", r"$\times$"))
    return "\n".join([r"\begin{tabular}{" + (align or "l" + "r" * (len(head) - 1)) + "}", r"\toprule",
                      " & ".join(map(esc, head)) + r" \\", r"\midrule",
                      *(" & ".join(map(esc, r)) + r" \\" for r in rows), r"\bottomrule", r"\end{tabular}"])


def score_table(results: dict[str, dict[str, Any]], fmt: str = "markdown") -> str:
    """Table of test_set_score results by model name: FD, KID, IS, class accuracy, diversity. Markdown ends
    with a line giving the sample counts; LaTeX (fmt="latex") leaves them to the caption."""
    first = next(iter(results.values()))
    head = ["model", first["metric"], "KID", first.get("is_metric", "IS"), first.get("class_metric", "class accuracy"),
            "near-duplicate pairs", "nearest-neighbour ratio"]
    rows = []
    for name, r in results.items():
        d = r.get("diversity")
        rows.append([name, f"{r['fd']:.4g}", f"{r['kid']:.4g} ± {r['kid_std']:.2g}",
                     f"{r['is']:.3f} ± {r['is_std']:.2g}" if "is" in r else "-",
                     f"{r['class_acc']:.3f} (real {r.get('real_class_acc', float('nan')):.3f})" if "class_acc" in r else "-",
                     f"{d['dup_fake']:.4f} (real {d['dup_real']:.4f})" if d else "-",
                     f"{r['nn_ratio']:.3f}" if "nn_ratio" in r else "-"])
    if fmt == "latex":
        return format_table(head, rows, "latex")
    return (format_table(head, rows, fmt)
            + f"\n\n{first['n_fake']} generated vs {first['n_real']} real test images per model.")


def evaluate_generator(G: nn.Module, real: Stats, net: FeatureNet, n: int, seed: int = 12345) -> dict[str, Any]:
    """Score `n` images sampled from G (a fixed seed, so every evaluation sees the same z and labels):
    Frechet distance and KID, and from the same forward pass IS and class accuracy where available."""
    return _sample_and_score(G, real, net, n, seed)[0]


# ----------------------------------------------------------------------------------------------------
# checkpoints: atomic writes, clear errors
# ----------------------------------------------------------------------------------------------------

# fields that may change between a run and its resumption (or fork, train(fork_from=...)); train() logs every
# change in the history's segments. How long and how often, and the EMA of G (it only samples; it never feeds
# back into training): G and D learn exactly as they would have.
RUN_FIELDS = ("iters", "eval_every", "eval_samples", "checkpoint_every", "amp", "compile", "diverged_above",
              "ema_decay", "ema_start")
# Training hyperparameters that leave every tensor's shape alone (learning rates, loss weights, steps per
# round, batch size, augmentation): a change alters what G and D learn from that iteration on, like a schedule.
TRAINING_FIELDS = ("g_lr", "d_lr", "n_critic", "n_gen", "batch_size", "acgan_weight", "drift", "gp_weight",
                   "clip_value", "cr_weight", "diffaug", "hflip")
RESUMABLE_FIELDS = RUN_FIELDS + TRAINING_FIELDS
FORK_FIELDS = ("name", "seed")   # a fork is a new run: its own name, and its own seed for the random stream


def save_atomic(obj: Any, path: str | Path) -> None:
    """torch.save to a temporary file in the same folder, then rename: a crash never leaves half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    os.close(fd)
    try:
        torch.save(obj, tmp)
        os.chmod(tmp, 0o644)  # mkstemp creates 0600; checkpoints are meant to be shared
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def write_json_atomic(obj: Any, path: str | Path) -> None:
    """Write obj as JSON to path (its folder made if missing) through a temporary file and a rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)   # e.g. a study whose only finished runs are shared ones
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")   # per process, so concurrent writers never share one
    tmp.write_text(json.dumps(obj))
    os.replace(tmp, path)


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Read a checkpoint written by this module; GanError if missing, unreadable or foreign."""
    path = Path(path)
    if not path.is_file():
        raise GanError(f"checkpoint {path} not found")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise GanError(f"{path} is not a readable checkpoint ({type(exc).__name__}: {str(exc)[:120]}); "
                       f"it may be truncated or corrupt: use another file or retrain") from exc
    if not isinstance(ckpt, dict) or ckpt.get("kind") not in ("generator", "train_state"):
        raise GanError(f"{path} is not a gan_helpers checkpoint (no generator or training state in it)")
    return ckpt


def generator_from_checkpoint(ckpt: dict[str, Any], path: str | Path = "checkpoint") -> nn.Module:
    """Rebuild G from a checkpoint's config and load its weights (EMA weights when the run had an EMA)."""
    cfg = Config.from_dict(ckpt["config"])
    G, _ = build_models(cfg)
    weights = ckpt["G"] if ckpt["kind"] == "generator" else (ckpt["G_ema"] or ckpt["G"])
    try:
        G.load_state_dict(weights)
    except RuntimeError as exc:
        raise GanError(f"{path}: generator weights do not match its config (arch={cfg.arch}): "
                       f"{str(exc).splitlines()[0]}") from exc
    return G.eval()


def load_generator(path: str | Path, device: torch.device | str = "cpu") -> nn.Module:
    """G in eval mode from best.pt, last.pt or model/*.pt (EMA weights when present); `G.config` is set."""
    return to_device(generator_from_checkpoint(load_checkpoint(path), path), device)


def load_discriminator(path: str | Path, device: torch.device | str = "cpu") -> nn.Module:
    """D in eval mode from a training state (last.pt); best.pt and model/*.pt hold only the generator."""
    ckpt = load_checkpoint(path)
    if ckpt["kind"] != "train_state":
        raise GanError(f"{path} holds only a generator; the discriminator is in the run's last.pt")
    _, D = build_models(Config.from_dict(ckpt["config"]))
    D.load_state_dict(ckpt["D"])
    return to_device(D.eval(), device)


def _rng_state() -> dict[str, Any]:
    mt, keys, pos, has_gauss, cached = np.random.get_state()
    return {"torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
            "numpy": [mt, torch.from_numpy(keys.astype(np.int64)), pos, has_gauss, cached],
            "python": random.getstate()}


def _set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    mt, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((mt, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    random.setstate(tuple(tuple(x) if isinstance(x, list) else x for x in state["python"]))


# ----------------------------------------------------------------------------------------------------
# sampling
# ----------------------------------------------------------------------------------------------------

@contextlib.contextmanager
def eval_mode(model: nn.Module) -> Iterator[nn.Module]:
    """Put `model` in eval mode (BN running statistics, spectral norm without power iteration), then back."""
    was_training = model.training
    model.eval()
    try:
        yield model
    finally:
        model.train(was_training)


def latents(G: nn.Module, n: int, labels: Tensor | int | None = None, seed: int = 0) -> tuple[Tensor, Tensor | None]:
    """The inputs sample() feeds G: z (n, z_dim) from `seed`, and labels (n,) or None (unconditional G).
    `labels`: (n,) class indices, one class for all, or None (a conditional G then cycles 0, 1, 2, ...)."""
    cfg: Config = G.config
    z = torch.randn(n, cfg.z_dim, generator=torch.Generator().manual_seed(seed))
    if not cfg.cond_classes:
        return z, None
    y = torch.arange(n) % cfg.cond_classes if labels is None else torch.as_tensor(labels, dtype=torch.int64).expand(n)
    if y.min() < 0 or y.max() >= cfg.cond_classes:
        raise GanError(f"labels must be class indices in [0, {cfg.cond_classes - 1}]")
    return z, y


@torch.no_grad()
def generate(G: nn.Module, z: Tensor, y: Tensor | None, batch_size: int = 500) -> Tensor:
    """G(z, y) in eval mode, in batches on G's device: z (n, z_dim), y (n,) class indices, (n, K) class
    weights or None -> images (n, 3, S, S) in [-1, 1] on the CPU."""
    device = _device_of(G)
    with eval_mode(G):
        return torch.cat([G(z[i:i + batch_size].to(device), None if y is None else y[i:i + batch_size].to(device))
                          .float().cpu() for i in range(0, len(z), batch_size)])


def sample(G: nn.Module, n: int, labels: Tensor | int | None = None, seed: int = 0,
           batch_size: int = 500) -> Tensor:
    """n images (n, 3, 32, 32) in [-1, 1] on the CPU, the same for the same seed (see latents())."""
    return generate(G, *latents(G, n, labels, seed), batch_size)


def slerp(z0: Tensor, z1: Tensor, t: Tensor) -> Tensor:
    """Spherical interpolation (Shoemake 1985; for GAN latents White 2016) from z0 to z1 (D,) at t (T,)
    in [0, 1] -> (T, D). It follows the great circle, so the points between keep the norm Gaussian
    latents have; a straight line passes through short latents G has hardly ever seen."""
    cos = torch.dot(z0 / z0.norm(), z1 / z1.norm()).clamp(-1, 1)
    omega, t = torch.arccos(cos), t[:, None]
    if torch.sin(omega) < 1e-6:                                         # (anti)parallel: the line is the arc
        return (1 - t) * z0 + t * z1
    return (torch.sin((1 - t) * omega) * z0 + torch.sin(t * omega) * z1) / torch.sin(omega)


def interpolate_latents(G: nn.Module, seeds: tuple[int, int] = (0, 1), label: int | None = 0,
                        steps: int = 8) -> Tensor:
    """Within a class: images (steps, 3, 32, 32) along the slerp between the latents of
    sample(G, 1, label, seeds[0]) and sample(G, 1, label, seeds[1]); its ends are those two samples.
    `label` is ignored by an unconditional G."""
    (z0, y), (z1, _) = (latents(G, 1, label, seed) for seed in seeds)
    z = slerp(z0[0], z1[0], torch.linspace(0, 1, steps))                # (steps, z_dim)
    return generate(G, z, None if y is None else y.expand(steps))


def interpolate_classes(G: nn.Module, classes: tuple[int, int] = (0, 1), seed: int = 0, steps: int = 8) -> Tensor:
    """Between classes: images (steps, 3, 32, 32) from one latent (that of sample(G, 1, seed=seed)) with
    the class conditioning going from classes[0] to classes[1]: soft labels (1 - t) one_hot(a) +
    t one_hot(b), i.e. conditional BN's per-class scale and shift mixed linearly. The ends are
    sample(G, 1, a, seed) and sample(G, 1, b, seed)."""
    k = G.config.cond_classes
    if not k:
        raise GanError("interpolating between classes needs a class-conditional generator (cond != 'none')")
    if not all(0 <= c < k for c in classes):
        raise GanError(f"classes must be class indices in [0, {k - 1}], got {classes}")
    z, _ = latents(G, 1, seed=seed)
    t = torch.linspace(0, 1, steps)[:, None]
    a, b = (F.one_hot(torch.tensor(c), k).float() for c in classes)
    return generate(G, z.expand(steps, -1), (1 - t) * a + t * b)        # labels (steps, k)


# ----------------------------------------------------------------------------------------------------
# training loop
# ----------------------------------------------------------------------------------------------------

@torch.no_grad()
def standing_batch_norm(G: nn.Module, n_batches: int = 16, batch_size: int = 128, seed: int = 99_991) -> nn.Module:
    """Recompute G's BatchNorm running statistics as the average over n_batches of its own batches
    ("standing statistics", Brock et al. 2019). An EMA generator needs this before it is evaluated or
    saved: the statistics copied from the trained G belong to other weights, and with them the EMA
    generator's samples are clearly worse. Only the BatchNorm layers run in training mode (spectral norm's
    power iteration is not advanced); latents come from `seed`, the global RNG is untouched."""
    norms = [m for m in G.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    momenta = [m.momentum for m in norms]
    device = _device_of(G)
    G.eval()
    for m in norms:
        m.reset_running_stats()
        m.momentum = None                                  # None: cumulative average over the batches
        m.train()
    for i in range(n_batches):
        z, y = latents(G, batch_size, seed=seed + i)
        G(z.to(device), None if y is None else y.to(device))
    for m, momentum in zip(norms, momenta):
        m.momentum = momentum
    return G.eval()


# images of each kind (validation, training, generated) in the validation-loss check of every evaluation
VALIDATION_LOSS_IMAGES = 1000


@torch.no_grad()
def _d_logits(D: nn.Module, images: Tensor, labels: Tensor | None, batch_size: int = 500) -> Tensor:
    """D's logits (N,) for images (N, 3, 32, 32) in [-1, 1] (any device), in batches on D's device."""
    device = _device_of(D)
    return torch.cat([D(images[i:i + batch_size].to(device),
                        None if labels is None else labels[i:i + batch_size].to(device))
                      for i in range(0, len(images), batch_size)])


@torch.no_grad()
def validation_losses(cfg: Config, D: nn.Module, G: nn.Module, train_data: ImageSet, val_data: ImageSet,
                      n: int = VALIDATION_LOSS_IMAGES, seed: int = 0) -> dict[str, float]:
    """D's loss and mean logit on n held-out validation images ("_val") and on n training images, a fixed
    draw ("_train"), each against the same n images from G. A D that memorises its training images scores
    them above held-out ones and its validation loss rises above its training loss (the overfitting signal
    of Karras et al. 2020, ADA). D and G run in eval mode; the global RNG is untouched."""
    n = min(n, len(train_data), len(val_data))
    pick = torch.randperm(len(train_data), generator=torch.Generator().manual_seed(seed))[:n]
    _, fake_labels = latents(G, n, seed=seed)
    with eval_mode(D):
        fake_logits = _d_logits(D, sample(G, n, seed=seed), fake_labels)
        result = {"d_fake_eval": fake_logits.mean().item()}
        for name, data in (("train", train_data.subset(pick.to(train_data.y.device))),
                           ("val", val_data.subset(torch.arange(n, device=val_data.y.device)))):
            real_logits = _d_logits(D, to_float(data.x), data.y)
            result[f"d_loss_{name}"] = d_loss(cfg.loss, real_logits, fake_logits).item()
            result[f"d_real_{name}"] = real_logits.mean().item()
    return result


class TrainingDiverged(GanError):
    """A loss or mean logit became NaN, infinite or larger than cfg.diverged_above; the last good
    checkpoint is left as it was."""


def diverged(logs: dict[str, float], limit: float) -> bool:
    """True when any logged value is non-finite or its magnitude exceeds `limit` (Config.diverged_above)."""
    return not all(math.isfinite(v) and abs(v) <= limit for v in logs.values())


def new_history() -> dict[str, list]:
    """Per-iteration losses and mean D logits, one entry per evaluation, and one per training segment (a start
    or resume: from which iteration, under which code, on which device; see train())."""
    return {"iter": [], "d_loss": [], "g_loss": [], "d_real": [], "d_fake": [], "eval": [], "segments": []}


def code_version() -> str:
    """Which code is running: the first 12 hex digits of the sha256 of this module's source (git or not), so a
    run's history shows where a long run went on under changed code."""
    return hashlib.sha256(Path(__file__).read_bytes()).hexdigest()[:12]


def describe_segments(history: dict[str, list]) -> str:
    """One sentence on how a run was trained: its stretches (start and every resume) and where the code changed
    (the module hash logged by train()); what a report must disclose about a long run."""
    segments = history.get("segments", [])
    if not segments:
        return "no training segments logged (a run from before they were recorded)"
    ends = [s["from_iter"] for s in segments[1:]] + [history["iter"][-1] if history["iter"] else 0]
    stretches = ", ".join(f"{s['from_iter']:,}-{end:,} on {s['device']}" for s, end in zip(segments, ends))
    changes = [f"{s['from_iter']:,}" for prev, s in zip(segments, segments[1:]) if s["code"] != prev["code"]]
    code = (f"the code changed at iteration{'s' * (len(changes) > 1)} {', '.join(changes)}" if changes
            else "the same code throughout")
    settings = "".join(f"; {field} {before} -> {now} at iteration {s['from_iter']:,}"
                       for s in segments for field, (before, now) in s.get("changed", {}).items())
    fork = history.get("forked_from")
    origin = f"forked from {fork['name']} (seed {fork['seed']}) at iteration {fork['iteration']:,}, then " if fork else ""
    return (f"{origin}trained in {len(segments)} stretch{'es' * (len(segments) > 1)} ({stretches}); "
            f"{code}{settings}")


def best_eval(history: dict[str, list]) -> dict[str, Any] | None:
    """The evaluation with the lowest Frechet distance, or None before the first one."""
    return min(history["eval"], key=lambda e: e["fd"], default=None)


def _check_resumable(saved: Config, cfg: Config, path: Path, free: tuple[str, ...] = RESUMABLE_FIELDS) -> None:
    diff = {f.name: (getattr(saved, f.name), getattr(cfg, f.name)) for f in dataclasses.fields(Config)
            if f.name not in free and getattr(saved, f.name) != getattr(cfg, f.name)}
    if diff:
        shown = ", ".join(f"{k}: {a!r} in checkpoint vs {b!r} now" for k, (a, b) in diff.items())
        raise GanError(f"cannot resume from {path}: it was trained with another config ({shown}); "
                       f"use the same settings or another output folder (settings that may change: "
                       f"{', '.join(free)})")


def train(cfg: Config, out_dir: str | Path, train_data: ImageSet, val_data: ImageSet, features: FeatureNet,
          device: torch.device | str = "cpu", resume: bool = False, progress: bool = True,
          on_eval: Callable[[dict[str, list]], None] | None = None,
          stats_dir: str | Path | None = None, time_limit: float | None = None,
          fork_from: str | Path | None = None) -> dict[str, list]:
    """Train G and D for cfg.iters iterations (in total, counting resumed ones), or until `time_limit`
    seconds have passed (then last.pt is written and resume=True continues; e.g. a Colab or batch session).

    fork_from: a training state (another run's last.pt) to start from when out_dir holds none: its weights,
    EMA and optimizer states at its iteration, with cfg's resumable settings (RESUMABLE_FIELDS, e.g. a lower
    learning rate), its own name and seed: the random stream (data order, latents) starts from cfg.seed, so
    forks of one state with one seed see the same batches and differ only in their settings. The fork's
    history starts at that iteration with an evaluation (its curve's starting point) and records the state
    it came from (history["forked_from"]); its training time counts from the fork.

    Writes to `out_dir`: last.pt (full state, every cfg.checkpoint_every iterations and at the end),
    best.pt (generator at its best validation metric, evaluated every cfg.eval_every iterations and at
    the end on cfg.eval_samples images), history.json, and at every evaluation snapshots/iter_NNNNNN.png
    (save_snapshot: the same latents and labels every time). Each evaluation logs the Frechet distance, KID,
    IS and class accuracy (where the feature network gives them) and validation_losses(). Returns the
    history; each evaluation also records `seconds`, the wall-clock time spent in training steps so far
    (evaluations and checkpoints excluded; carried across resumes), and `cpu_seconds`, this process's CPU time
    in them (on a shared CPU, what the steps cost without the waiting). `on_eval(history)` is called after each
    evaluation (e.g. a live plot)."""
    from tqdm.auto import tqdm
    cfg.validate()
    check_data(cfg, train_data)
    out_dir, device = Path(out_dir), torch.device(device)
    out_dir.mkdir(parents=True, exist_ok=True)
    last_path, best_path, history_path = out_dir / "last.pt", out_dir / "best.pt", out_dir / "history.json"
    if last_path.is_file() and not resume:
        raise GanError(f"{out_dir} already holds a run (last.pt): resume it (resume=True / --resume) "
                       f"or choose another output folder, so that nothing is overwritten")
    setup(cfg.seed)
    started = time.monotonic()
    G, D = build_models(cfg)
    G_ema = copy.deepcopy(G) if cfg.ema_decay > 0 else None
    G, D = to_device(G, device), to_device(D, device)
    G_ema = to_device(G_ema, device) if G_ema is not None else None
    opt_g, opt_d = make_optimizers(cfg, G, D)
    prec = precision(cfg.amp, device)
    torch.backends.cudnn.benchmark = device.type == "cuda"   # fixed shapes: let cuDNN pick its fastest kernels
    G_run, D_run = compiled(G, cfg.compile), compiled(D, cfg.compile)   # what the training step calls
    history, start, seconds, changed = new_history(), 0, 0.0, {}   # seconds: time in training steps
    cpu_seconds = 0.0   # this process's CPU time in training steps: on a shared CPU, the cost without the waiting
    resuming = resume and last_path.is_file()
    if resuming or fork_from is not None:
        source = last_path if resuming else Path(fork_from)
        state = load_checkpoint(source)
        if state["kind"] != "train_state":
            raise GanError(f"{source} holds no training state to {'resume' if resuming else 'fork'} from")
        saved = Config.from_dict(state["config"])
        _check_resumable(saved, cfg, source, RESUMABLE_FIELDS + (() if resuming else FORK_FIELDS))
        changed = {f: [getattr(saved, f), getattr(cfg, f)] for f in RESUMABLE_FIELDS   # iters: every resume's
                   if f != "iters" and getattr(saved, f) != getattr(cfg, f)}                # own, not a setting
        G.load_state_dict(state["G"])
        D.load_state_dict(state["D"])
        if G_ema is not None:   # a run without an EMA so far starts its EMA from G, as a new run does
            G_ema.load_state_dict(state["G_ema"] if state["G_ema"] is not None else state["G"])
        opt_g.load_state_dict(state["opt_g"])
        opt_d.load_state_dict(state["opt_d"])
        for opt, lr in ((opt_g, cfg.g_lr), (opt_d, cfg.d_lr)):   # the state holds the learning rates it ran with
            for group in opt.param_groups:
                group["lr"] = lr
        for scaler, key in ((prec.scaler_g, "scaler_g"), (prec.scaler_d, "scaler_d")):
            if scaler is not None and state.get(key):
                scaler.load_state_dict(state[key])
        start = state["iteration"]
        if resuming:
            _set_rng_state(state["rng"])
            history, seconds = state["history"], state.get("seconds", 0.0)
            cpu_seconds = state.get("cpu_seconds", seconds)   # states from before CPU time was kept: wall-clock
        else:   # a fork: setup(cfg.seed) above seeded its random stream; its history and time start here
            if start >= cfg.iters:
                raise GanError(f"cannot fork from {source}: it is at iteration {start:,}, and iters={cfg.iters:,} "
                               f"leaves nothing to train; set iters above {start:,}")
            history["forked_from"] = {"state": str(source), "name": saved.name, "seed": saved.seed,
                                      "iteration": start}
    history.setdefault("segments", []).append(   # histories from before segments were logged have none
        {"from_iter": start, "code": code_version(), "device": _device_name(device),
         "started": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
         **({"changed": changed} if changed else {})})   # resumable fields set differently: [before, now]
    train_data, val_data = train_data.to(device), val_data
    real = real_stats(val_data, "val", features, stats_dir or out_dir)
    validation_hash = hashlib.sha256(val_data.x.cpu().contiguous().numpy().tobytes()).hexdigest()[:16]
    G_eval = G_ema if G_ema is not None else G

    def checkpoint(iteration: int) -> None:
        save_atomic({"kind": "train_state", "config": dataclasses.asdict(cfg), "split": split_record(val_data),
                     "iteration": iteration,
                     "G": G.state_dict(), "D": D.state_dict(),
                     "G_ema": G_ema.state_dict() if G_ema is not None else None,
                     "opt_g": opt_g.state_dict(), "opt_d": opt_d.state_dict(), "rng": _rng_state(),
                     "scaler_g": prec.scaler_g.state_dict() if prec.scaler_g is not None else None,
                     "scaler_d": prec.scaler_d.state_dict() if prec.scaler_d is not None else None,
                     "history": history, "seconds": seconds, "cpu_seconds": cpu_seconds}, last_path)
        write_json_atomic(history, history_path)

    def evaluate(iteration: int) -> None:
        if G_ema is not None:
            standing_batch_norm(G_ema)   # its copied BN statistics belong to G's weights, not the EMA's
        result = {"iter": iteration, "seconds": round(seconds, 3), "cpu_seconds": round(cpu_seconds, 3),
                  **evaluate_generator(G_eval, real, features, cfg.eval_samples),
                  **validation_losses(cfg, D, G, train_data, val_data)}
        save_snapshot(G_eval, snapshot_path(out_dir, iteration))
        best = best_eval(history)
        history["eval"].append(result)
        if best is None or result["fd"] < best["fd"]:
            save_atomic({"kind": "generator", "config": dataclasses.asdict(cfg), "split": split_record(val_data),
                         "iteration": iteration, "G": G_eval.state_dict(), "metrics": result,
                         "summary": {"data": train_data.source, "features": features.label,
                                     "features_key": features.key, "validation_sha256": validation_hash,
                                     "ema": G_ema is not None, "selected_by": "lowest validation " + result["metric"]}},
                        best_path)
        write_json_atomic(history, history_path)
        if on_eval is not None:
            on_eval(history)

    bar = tqdm(range(start, cfg.iters), initial=start, total=cfg.iters, disable=not progress,
               desc=cfg.name, dynamic_ncols=True)
    if not history["eval"]:
        evaluate(start)  # the starting point of the validation curve (iteration 0, or the state a fork starts from)
    for it in bar:
        tick, cpu_tick = time.perf_counter(), time.process_time()
        logs = train_step(cfg, G_run, D_run, G_ema, opt_g, opt_d, lambda: train_data.batch(cfg.batch_size, cfg.hflip),
                          it, prec)
        seconds += time.perf_counter() - tick   # the step's .item() calls wait for the GPU, so this is its time
        cpu_seconds += time.process_time() - cpu_tick
        if diverged(logs, cfg.diverged_above):
            kept = f"{last_path} (iteration {load_checkpoint(last_path)['iteration']})" if last_path.is_file() \
                else "no checkpoint yet"
            shown = ", ".join(f"{k}={v:.3g}" for k, v in logs.items())
            raise TrainingDiverged(f"training diverged at iteration {it + 1} ({shown}; the limit is non-finite or "
                                   f"|value| > diverged_above={cfg.diverged_above:g}); training stopped, last good "
                                   f"state kept: {kept}. Lower the learning rates or resume with another seed")
        history["iter"].append(it + 1)
        for key, value in logs.items():
            history[key].append(round(value, 6))
        done = it + 1
        if done % cfg.eval_every == 0 or done == cfg.iters:
            evaluate(done)
        out_of_time = time_limit is not None and time.monotonic() - started > time_limit
        if done % cfg.checkpoint_every == 0 or done == cfg.iters or out_of_time:
            checkpoint(done)
        last_eval = history["eval"][-1]
        bar.set_postfix(d=f"{logs['d_loss']:.3f}", g=f"{logs['g_loss']:.3f}",
                        fd=f"{last_eval['fd']:.3g}@{last_eval['iter']}", refresh=False)
        if out_of_time:
            bar.write(f"time limit of {time_limit:.0f} s reached at iteration {done}: state saved to {last_path}; "
                      f"continue with resume=True (--resume)")
            break
    if start >= cfg.iters:
        write_json_atomic(history, history_path)
    return history


def _validation_set(ckpt: dict[str, Any], by_hash: bool) -> str:
    """What a generator checkpoint was validated on: the hash of its validation images (by_hash), else its
    data source with the path cut to its last two folders (checkpoints written before the hash was
    recorded), so the same data read through another path still matches."""
    summary = ckpt.get("summary") or {}
    if by_hash:
        return summary["validation_sha256"]
    kind, _, path = summary.get("data", "").rpartition(" ")
    return f"{kind} {'/'.join(Path(path.strip('()')).parts[-2:])}"


def publish_refusal(new: dict[str, Any], old: dict[str, Any]) -> str | None:
    """Why generator checkpoint `new` must not replace `old` (None when it may): their validation scores
    were measured differently (metric, feature network, sample counts, validation images), or new's
    is not lower."""
    a, b = new.get("metrics") or {}, old.get("metrics") or {}
    if not a or not b:
        return "one of them has no validation score to compare"
    keys = {"metric": (a["metric"], b["metric"]), "generated images": (a["n_fake"], b["n_fake"]),
            "validation images": (a["n_real"], b["n_real"])}
    sa, sb = new.get("summary") or {}, old.get("summary") or {}
    if "features_key" in sa and "features_key" in sb:
        keys["feature network"] = (sa["features_key"], sb["features_key"])
    by_hash = "validation_sha256" in sa and "validation_sha256" in sb
    keys["validation set"] = (_validation_set(new, by_hash), _validation_set(old, by_hash))
    differ = [f"{k} {x!r} vs {y!r}" for k, (x, y) in keys.items() if x != y]
    if differ:
        return f"their validation scores were measured differently ({'; '.join(differ)}), so they are not comparable"
    if not a["fd"] < b["fd"]:
        return (f"its validation {a['metric']} {a['fd']:.4g} (iteration {new['iteration']}) is not lower than the "
                f"published {b['fd']:.4g} (iteration {old['iteration']})")
    return None


def publish(run_dir: str | Path, name: str, model_dir: str | Path = "model", sample_dir: str | Path | None = None,
            force: bool = False) -> Path:
    """Copy a run's best generator and history to model/<name>_best.pt and model/<name>_history.json and,
    with `sample_dir`, write its one-image-per-class PNGs there. An existing published model is replaced
    only when the new one's validation score is lower and was measured the same way (publish_refusal),
    or with force=True; whatever is replaced is moved to model/replaced/<time>/, never deleted."""
    run_dir, model_dir = Path(run_dir), Path(model_dir)
    ckpt = load_checkpoint(run_dir / "best.pt")
    history_src = run_dir / "history.json"
    if not history_src.is_file():
        raise GanError(f"{history_src} not found: publish a run folder written by train()")
    target, history = model_dir / f"{name}_best.pt", model_dir / f"{name}_history.json"
    if target.is_file() and not force:
        reason = publish_refusal(ckpt, load_checkpoint(target))
        if reason is not None:
            raise GanError(f"not publishing {run_dir / 'best.pt'} over {target}: {reason}; to replace it anyway, "
                           f"pass --force (force=True; FORCE_PUBLISH = True in a notebook): the old files are "
                           f"then moved to {model_dir / 'replaced'}/")
    old = [p for p in (target, history) if p.is_file()]
    old += image_files(Path(sample_dir)) if sample_dir is not None and Path(sample_dir).is_dir() else []
    if old:
        stamp = time.strftime("%Y%m%d-%H%M%S")
        keep, n = model_dir / "replaced" / stamp, 1
        while keep.exists():                                # two publishes within one second
            n += 1
            keep = model_dir / "replaced" / f"{stamp}-{n}"
        for p in old:
            dest = keep / (p.name if p.parent == model_dir else f"{p.parent.name}/{p.name}")
            dest.parent.mkdir(parents=True, exist_ok=True)
            os.replace(p, dest)
        print(f"moved the replaced files to {keep}")
    save_atomic(ckpt, target)
    write_json_atomic(json.loads(history_src.read_text()), history)
    if sample_dir is not None:
        save_class_samples(generator_from_checkpoint(ckpt, target), sample_dir)
    return target


def validation_stats(data_dir: str | Path, features: FeatureNet, stats_dir: str | Path | None = None,
                     cfg: Config | None = None) -> Stats:
    """Statistics of the validation split of cfg (default: Config(), CIFAR-10's 5,000 of split seed 0) that
    train() scores against, cached in `stats_dir` (default <data_dir>/fid_stats)."""
    _, val = load_dataset(cfg or Config(), data_dir)
    return real_stats(val, "val", features, stats_dir or Path(data_dir) / "fid_stats")


def test_set_score(G: nn.Module, data_dir: str | Path, features: FeatureNet, n: int = 10_000,
                   stats_dir: str | Path | None = None, split: dict[str, Any] | None = None,
                   seed: int = 12345) -> dict[str, Any]:
    """The final numbers: n generated images vs the test images of G's dataset (load_dataset with G.config:
    CIFAR-10's 10,000 test images by default). `split`, a checkpoint's record, must match the test set
    found in data_dir (check_split). Frechet distance, KID, IS and class accuracy (as evaluate_generator),
    the classifier's accuracy on the test images themselves ("real_class_acc"), diversity() of the samples
    next to the test images' ("diversity") and nearest_neighbour_ratio() against as many test images
    ("nn_ratio"); under "data", where the test images came from. Real statistics are cached in `stats_dir` (default <data_dir>/fid_stats)."""
    (test,) = load_dataset(G.config, data_dir, ("test",))
    if split is not None:
        check_split(split, test)
    real = real_stats(test, "test", features, stats_dir or Path(data_dir) / "fid_stats")
    result, images, labels, out = _sample_and_score(G, real, features, n, seed)
    if "class_acc" in result:
        result["real_class_acc"] = class_accuracy(features.class_logits(test.x), test.y, len(test.classes))["overall"]
    result["diversity"] = diversity(out.features, None if labels is None else labels.numpy(), real.features,
                                    test.y.numpy())
    shuffled = torch.randperm(len(test), generator=torch.Generator().manual_seed(0))  # the test set is class-sorted
    result["nn_ratio"] = nearest_neighbour_ratio(images, test.x[shuffled[:n]])
    result["data"] = test.source
    return result


# ----------------------------------------------------------------------------------------------------
# plots and attention maps
# ----------------------------------------------------------------------------------------------------

def image_grid(images: Tensor, nrow: int = 8, pad: int = 2) -> np.ndarray:
    """Images (N, 3, H, W) in [-1, 1] -> one uint8 picture (rows, cols, 3), nrow images per row."""
    import torchvision.utils as vutils
    grid = vutils.make_grid(images.cpu(), nrow=nrow, padding=pad, pad_value=1.0)  # (3, rows, cols)
    return to_uint8(grid).permute(1, 2, 0).numpy()


def show_grid(images: Tensor, nrow: int = 8, title: str = "", ax: Any = None) -> Any:
    """Draw `image_grid(images, nrow)` on `ax` (a new figure when None); returns the axes."""
    import matplotlib.pyplot as plt
    if ax is None:
        _, ax = plt.subplots(figsize=(nrow, math.ceil(len(images) / nrow)))
    ax.imshow(image_grid(images, nrow), interpolation="nearest")
    ax.set_title(title)
    ax.axis("off")
    return ax


def class_names(G: nn.Module, names: tuple[str, ...] | None = None) -> tuple[str, ...]:
    """The names of G's classes: `names` when given (a checkpoint's split records them), CIFAR-10's for 10
    classes, else the indices as text."""
    k = G.config.cond_classes
    return tuple(names) if names else (CIFAR10_CLASSES if k == 10 else tuple(map(str, range(k))))


def class_rows(G: nn.Module, classes: list[int] | None = None, per_class: int = 8, seed: int = 0) -> Tensor:
    """Images (len(classes) * per_class, 3, S, S): one row per class (all classes when None)."""
    classes = list(range(G.config.cond_classes)) if classes is None else classes
    if not G.config.cond_classes:
        raise GanError("class rows need a class-conditional generator (cond != 'none')")
    return torch.cat([sample(G, per_class, labels=c, seed=seed + c) for c in classes])


def show_class_rows(G: nn.Module, classes: list[int] | None = None, per_class: int = 8, seed: int = 0,
                    title: str = "", ax: Any = None, names: tuple[str, ...] | None = None) -> Any:
    """Draw class_rows() with each row labelled by its class name (see class_names); returns the axes."""
    images = class_rows(G, classes, per_class, seed)
    classes = list(range(G.config.cond_classes)) if classes is None else classes
    ax = show_grid(images, per_class, title, ax)
    ax.axis("on")
    size, pad = images.shape[-1], 2                                     # image_grid's padding
    ax.set_yticks([pad + r * (size + pad) + size / 2 for r in range(len(classes))],
                  [class_names(G, names)[c] for c in classes])
    ax.set_xticks([])
    ax.tick_params(length=0)
    for spine in ax.spines.values():
        spine.set_visible(False)
    return ax


def interpolation_figure(G: nn.Module, within: tuple[int, ...] = (1, 7, 8),
                         between: tuple[tuple[int, int], ...] = ((1, 9), (3, 5), (4, 7)), steps: int = 8,
                         seeds: tuple[int, int] = (0, 1)) -> Any:
    """One row per interpolation: within each class of `within` (slerp between the latents of `seeds`),
    then between each pair of classes in `between` (latent of seeds[0], conditioning mixed). An
    unconditional G gets one latent row. Returns the figure."""
    import matplotlib.pyplot as plt
    names = class_names(G).__getitem__
    if G.config.cond_classes:
        rows = [(f"{names(c)}: latent {seeds[0]} -> {seeds[1]}", interpolate_latents(G, seeds, c, steps)) for c in within]
        rows += [(f"latent {seeds[0]}: {names(a)} -> {names(b)}", interpolate_classes(G, (a, b), seeds[0], steps))
                 for a, b in between]
    else:
        rows = [(f"latent {seeds[0]} -> {seeds[1]}", interpolate_latents(G, seeds, None, steps))]
    fig, axes = plt.subplots(len(rows), 1, figsize=(steps * 1.1, 1.5 * len(rows)), squeeze=False)
    for ax, (title, images) in zip(axes[:, 0], rows):
        show_grid(images, nrow=steps, title=title, ax=ax)
    fig.tight_layout()
    return fig


def save_pngs(images: Tensor, folder: str | Path, names: list[str]) -> list[Path]:
    """Write images (N, 3, H, W) in [-1, 1] as 8-bit PNGs named `names` (without extension)."""
    from PIL import Image
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / f"{name}.png" for name in names]
    for img, path in zip(to_uint8(images).permute(0, 2, 3, 1).numpy(), paths):
        Image.fromarray(img).save(path)
    return paths


def snapshot_path(run_dir: str | Path, iteration: int) -> Path:
    return Path(run_dir) / "snapshots" / f"iter_{iteration:06d}.png"


def save_snapshot(G: nn.Module, path: str | Path, n: int = 64, seed: int = 0) -> Path:
    """An 8-per-row grid PNG of sample(G, n, seed): with the default seed the latents and labels (cycling
    through the classes) of every snapshot, and of the notebooks' 64-sample grids, are the same."""
    from PIL import Image
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(image_grid(sample(G, n, seed=seed))).save(path)
    return path


def snapshots(run_dir: str | Path) -> dict[int, Path]:
    """{iteration: PNG} of a run's snapshot grids, in iteration order."""
    files = sorted((Path(run_dir) / "snapshots").glob("iter_*.png"))
    if not files:
        raise GanError(f"no snapshots in {Path(run_dir) / 'snapshots'}: train() writes one at every evaluation")
    return {int(p.stem.split("_")[1]): p for p in files}


def _nearest_snapshots(found: dict[int, Path], iterations: list[int]) -> list[int]:
    return [min(found, key=lambda it: abs(it - wanted)) for wanted in iterations]


def snapshot_strip(run_dir: str | Path, iterations: list[int] | None = None, count: int = 5, title: str = "") -> Any:
    """One figure with the snapshot grids of `iterations` side by side (each the nearest snapshot
    taken), or `count` of them evenly spread over the run. Returns the figure."""
    import matplotlib.pyplot as plt
    from PIL import Image
    found = snapshots(run_dir)
    its = list(found)
    chosen = _nearest_snapshots(found, iterations) if iterations else \
        [its[round(i)] for i in np.linspace(0, len(its) - 1, min(count, len(its)))]
    fig, axes = plt.subplots(1, len(chosen), figsize=(3.2 * len(chosen), 3.6), squeeze=False)
    for ax, it in zip(axes[0], chosen):
        with Image.open(found[it]) as im:
            ax.imshow(np.asarray(im))
        ax.set_title(f"iteration {it:,}")
        ax.axis("off")
    fig.suptitle(title or "the same latents and labels over training")
    fig.tight_layout()
    return fig


def snapshot_slider(run_dir: str | Path) -> Any:
    """ipywidgets slider over a run's snapshot grids (one image per evaluation). Returns the widget box."""
    import ipywidgets as widgets
    found = snapshots(run_dir)
    image = widgets.Image(format="png", width=384)
    slider = widgets.SelectionSlider(options=[(f"{it:,}", it) for it in found], value=list(found)[-1],
                                     description="iteration", continuous_update=True,
                                     layout=widgets.Layout(width="480px"))

    def show(*_: Any) -> None:
        image.value = found[slider.value].read_bytes()
    slider.observe(show, names="value")
    show()
    return widgets.VBox([slider, image])


def save_class_samples(G: nn.Module, folder: str | Path, seed: int = 0,
                       names: tuple[str, ...] | None = None) -> list[Path]:
    """One generated image per class as <folder>/<index>_<class>.png (the DCGAN/ and SAGAN/ deliverables),
    named by class_names(G, names)."""
    k = G.config.cond_classes
    if not k:
        raise GanError("one image per class needs a class-conditional generator (cond != 'none')")
    names = class_names(G, names)
    return save_pngs(sample(G, k, labels=torch.arange(k), seed=seed), folder,
                     [f"{c:02d}_{name}" for c, name in enumerate(names)])


def _smooth(values: list[float], window: int) -> np.ndarray:
    """Trailing moving average over `window` values, the same length as `values` (the first points
    average what there is), so even a run shorter than the window draws its whole curve."""
    v = np.asarray(values, dtype=np.float64)
    sums = np.cumsum(np.concatenate([[0.0], v]))
    ends = np.arange(1, len(v) + 1)
    counts = np.minimum(ends, max(1, window))                           # value i averages v[i - count + 1 : i + 1]
    return (sums[ends] - sums[ends - counts]) / counts


def plot_losses(history: dict[str, list], window: int = 100, title: str = "") -> Any:
    """Two panels: D and G losses, and mean D logits on real (D(x)) and generated (D(G(z))) images,
    smoothed with a trailing moving average over `window` iterations. Where the evaluations logged
    validation_losses(), their points are drawn on top: D's loss and mean logit on held-out validation
    images (squares) and on as many training images (circles), so a gap between the two shows D
    memorising its training set. Returns the figure."""
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.5))
    it = np.asarray(history["iter"])
    evals = [e for e in history["eval"] if "d_loss_val" in e]
    panels = ((axes[0], {"d_loss": "D", "g_loss": "G"}, "loss",
               {"d_loss_train": ("D, training images", "o"), "d_loss_val": ("D, validation images", "s")}),
              (axes[1], {"d_real": "D(x)", "d_fake": "D(G(z))"}, "mean D logit",
               {"d_real_train": ("D(x), training images", "o"), "d_real_val": ("D(x), validation images", "s"),
                "d_fake_eval": ("D(G(z)), EMA generator's samples", "^")}))
    for ax, names, ylabel, points in panels:
        for key, name in names.items():
            ax.plot(it, _smooth(history[key], window), label=name, marker="." if len(it) < 50 else None)
        for key, (name, marker) in points.items():
            if evals:
                ax.plot([e["iter"] for e in evals], [e[key] for e in evals], marker=marker, linestyle=":",
                        markerfacecolor="none", label=f"{name} (eval)")
        ax.set_xlabel("iteration")
        ax.set_ylabel(ylabel)
        ax.legend(fontsize=7)
    fig.suptitle(title or f"training curves (moving average over {window} iterations)")
    fig.tight_layout()
    return fig


def plot_scores(histories: dict[str, dict[str, list]]) -> Any:
    """IS and class accuracy of the generated samples at every evaluation, for each named run (panels
    only for what was logged; the metric names say whether they are proxies). Returns the figure."""
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.2))
    for ax, key, what in ((axes[0], "is", "is_metric"), (axes[1], "class_acc", "class_metric")):
        names = set()
        for name, history in histories.items():
            evals = [e for e in history["eval"] if key in e]
            if evals:
                ax.plot([e["iter"] for e in evals], [e[key] for e in evals], marker=".", label=name)
                names.add(evals[-1][what])
        ax.set_xlabel("iteration")
        ax.set_ylabel(" / ".join(sorted(names)) or f"{key}: not logged")
        if names:
            ax.legend()
        else:
            ax.text(0.5, 0.5, "not logged (no classifier / no IS logits)", ha="center", transform=ax.transAxes)
    fig.tight_layout()
    return fig


def log_y(ax: Any) -> None:
    """Make ax's y axis (already drawn on) logarithmic with ticks that read as plain numbers (2, 3, 5 rather than
    2x10^0): as many labelled ticks as the range allows without crowding (every integer multiple of a power of
    ten over less than 0.6 decades, 1-2-3-4-5-7 up to 1.5, else 1-2-5), the other multiples as unlabelled ticks."""
    import matplotlib.ticker as mticker
    ax.set_yscale("log")
    low, high = ax.get_ylim()
    span = math.log10(high / low)
    subs = tuple(range(1, 10)) if span < 0.6 else (1, 2, 3, 4, 5, 7) if span < 1.5 else (1, 2, 5)
    ax.yaxis.set_major_locator(mticker.LogLocator(subs=[float(k) for k in subs]))
    ax.yaxis.set_major_formatter(mticker.FormatStrFormatter("%g"))
    ax.yaxis.set_minor_locator(mticker.LogLocator(subs=[float(k) for k in range(1, 10) if k not in subs]))
    ax.yaxis.set_minor_formatter(mticker.NullFormatter())


def metric_label(metric: str, n_fake: int, n_real: int) -> str:
    """A y-axis label for a validation metric, in lines short enough for a small figure: the metric, its
    parenthesis (which proxy) and the sample counts, e.g. "validation FD\n(proxy: ...)\n2,000 vs 5,000 real"."""
    return f"validation {metric}".replace(" (", "\n(", 1) + f"\n{n_fake:,} generated vs {n_real:,} real"


def plot_metric(histories: dict[str, dict[str, list]], ax: Any = None) -> Any:
    """Validation Frechet distance vs iteration for each named run, its best point marked. Returns axes."""
    import matplotlib.pyplot as plt
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 3.5))
    for name, history in histories.items():
        evals = history["eval"]
        best = best_eval(history)   # its value goes in the legend: annotations beside the curves collide
        label = name if best is None else f"{name} (best {best['fd']:.3f} @ {best['iter']:,})"
        line, = ax.plot([e["iter"] for e in evals], [e["fd"] for e in evals], marker=".", label=label)
        if best is not None:
            ax.scatter([best["iter"]], [best["fd"]], s=80, facecolors="none", edgecolors=line.get_color(),
                       linewidths=2, zorder=3)
        if evals:
            ax.set_ylabel(metric_label(evals[-1]["metric"], evals[-1]["n_fake"], evals[-1]["n_real"]))
    ax.set_xlabel("iteration")
    log_y(ax)
    ax.legend()
    return ax


def comparison_table(histories: dict[str, dict[str, list]], upto: int | None = None) -> str:
    """Markdown table of each run's best validation metric among evaluations at iterations <= `upto`
    (all when None), so runs are compared at the same training budget."""
    rows = []
    for name, history in histories.items():
        evals = [e for e in history["eval"] if upto is None or e["iter"] <= upto]
        best = min(evals, key=lambda e: e["fd"])
        rows.append([name, f"{best['metric']} {best['fd']:.4g}", str(best["iter"]),
                     f"{best['kid']:.4g} ± {best['kid_std']:.2g}", f"{best['n_fake']} vs {best['n_real']}"])
    return format_table(["run", "best validation metric", "at iteration", "KID", "samples (generated vs real)"], rows)


def live_metric_plot(name: str = "run") -> Callable[[dict[str, list]], None]:
    """An `on_eval` callback for train(): redraws the validation curve in place in a notebook."""
    import matplotlib.pyplot as plt
    from IPython.display import display
    handle = display({"text/plain": ""}, raw=True, display_id=True)

    def update(history: dict[str, list]) -> None:
        fig, ax = plt.subplots(figsize=(6, 3.5))
        plot_metric({name: history}, ax=ax)
        handle.update(fig)
        plt.close(fig)
    return update


def attention_layers(model: nn.Module) -> list[tuple[str, SelfAttention]]:
    """(name, module) of every self-attention layer in `model`, in forward order."""
    return [(name, m) for name, m in model.named_modules() if isinstance(m, SelfAttention)]


@torch.no_grad()
def attention_maps(model: nn.Module, *inputs: Any) -> dict[str, Tensor]:
    """Run model(*inputs) in eval mode and return each attention layer's map (N, HW, HW) by layer name."""
    captured: dict[str, Tensor] = {}
    hooks = [m.register_forward_pre_hook(lambda mod, args, name=name: captured.__setitem__(name, args[0]))
             for name, m in attention_layers(model)]
    try:
        with eval_mode(model):
            model(*inputs)
            return {name: m.attention(captured[name]).cpu() for name, m in attention_layers(model)}
    finally:
        for h in hooks:
            h.remove()


def plot_attention(image: Tensor, attn: Tensor, query: tuple[float, float], axes: Any = None,
                   title: str | None = None, colorbar: bool = False, heat_title: str | None = None) -> Any:
    """Image (3, S, S) in [-1, 1] with the query pixel (row, col in image pixels) marked, beside the
    attention of that query over all key positions, upsampled and laid over the image (with its colour
    scale when `colorbar`). attn (HW, HW) from one layer; `heat_title` replaces the attention panel's
    title (default: the query's cell on the map). Returns the two axes."""
    import matplotlib.pyplot as plt
    side = int(math.isqrt(attn.shape[0]))
    scale = image.shape[-1] / side
    qr, qc = int(query[0] // scale), int(query[1] // scale)            # query in attention-map cells
    heat = attn[qr * side + qc].view(1, 1, side, side)
    heat = F.interpolate(heat, size=image.shape[-2:], mode="nearest")[0, 0]
    if axes is None:
        _, axes = plt.subplots(1, 2, figsize=(5, 2.6))
    pic = to_uint8(image).permute(1, 2, 0).numpy()
    centre = ((qc + 0.5) * scale - 0.5, (qr + 0.5) * scale - 0.5)
    axes[0].imshow(pic)
    axes[0].add_patch(plt.Rectangle((qc * scale - 0.5, qr * scale - 0.5), scale, scale, fill=False,
                                    edgecolor="red", linewidth=2))
    axes[0].set_title("query" if title is None else title)
    axes[1].imshow(pic, alpha=0.45)
    shown = axes[1].imshow(heat.numpy(), cmap="inferno", alpha=0.6)
    axes[1].plot(*centre, "c+", markersize=12, markeredgewidth=2)
    axes[1].set_title(f"attention of query cell ({qr}, {qc}) on a {side}x{side} map" if heat_title is None
                      else heat_title, fontsize=None if heat_title is None else axes[0].title.get_fontsize())
    if colorbar:
        axes[1].figure.colorbar(shown, ax=axes[1], fraction=0.046, pad=0.04, label="attention weight")
    for ax in axes:
        ax.axis("off")
    return axes


def readable_layer_names(who: str, maps: dict[str, Tensor]) -> list[str]:
    """Names a reader understands for attention_maps() layers, in order: "G 16x16 attention" (by the map's
    size instead of the module path `attns.1.0`), numbered "(1 of 2)" where a size has a stack of layers."""
    sides = [math.isqrt(m.shape[-1]) for m in maps.values()]
    names = []
    for i, side in enumerate(sides):
        name = f"{who} {side}x{side} attention"
        if sides.count(side) > 1:
            name += f" ({sides[:i + 1].count(side)} of {sides.count(side)})"
        names.append(name)
    return names


def generator_attention(G: nn.Module, n: int = 8, seed: int = 0) -> dict[str, tuple[Tensor, Tensor]]:
    """Per G attention layer, by readable name: (the n generated images (n, 3, S, S), maps (n, HW, HW))."""
    z, y = latents(G, n, seed=seed)
    device = _device_of(G)
    maps = attention_maps(G, z.to(device), None if y is None else y.to(device))
    images = sample(G, n, seed=seed)
    return {name: (images, m) for name, m in zip(readable_layer_names("G", maps), maps.values())}


def discriminator_attention(D: nn.Module, real: ImageSet, n: int = 8) -> dict[str, tuple[Tensor, Tensor]]:
    """Per D attention layer, by readable name: (the first n real images (n, 3, S, S), maps (n, HW, HW))."""
    images = to_float(real.x[:n].cpu())
    device = _device_of(D)
    maps = attention_maps(D, images.to(device), real.y[:n].to(device) if D.config.cond_classes else None)
    return {name: (images, m) for name, m in zip(readable_layer_names("D", maps), maps.values())}


def query_dependence(attn: Tensor) -> float:
    """How much an attention map depends on its query, in [0, 1): the mean over images and queries of the
    total-variation distance between a query's attention (a row of attn (N, HW, HW)) and the image's mean row.
    0: every query attends in the same way (the layer adds one global summary to every position); 1 - 1/HW at
    most, when each query attends to a single position of its own."""
    attn = attn.double()
    return float(0.5 * (attn - attn.mean(1, keepdim=True)).abs().sum(-1).mean())


def by_image(layer: tuple[Tensor, Tensor], names: list[str], indices: list[int]) -> dict[str, tuple[Tensor, Tensor]]:
    """One attention layer's (images, maps) regrouped for attention_figure with one row per image: {names[k]:
    (image indices[k], its maps)}; e.g. several classes through one layer."""
    images, attn = layer
    return {name: (images[i:i + 1], attn[i:i + 1]) for name, i in zip(names, indices)}


def attention_figure(layers: dict[str, tuple[Tensor, Tensor]],
                     queries: tuple[tuple[int, int], ...] | None = None, index: int = 0) -> Any:
    """Static figure: one row per attention layer, one pair of panels per query point (row, col), for
    image `index` (default queries: at a quarter and three quarters of the side; 32x32: (8, 8), (8, 24),
    (24, 16)). `layers` from generator_attention() or discriminator_attention(). Returns the figure."""
    import matplotlib.pyplot as plt
    if not layers:
        raise GanError("this model has no self-attention layers to show (see g_attn / d_attn)")
    side = next(iter(layers.values()))[0].shape[-1]
    queries = queries or tuple((int(r * side), int(c * side)) for r, c in ((0.25, 0.25), (0.25, 0.75), (0.75, 0.5)))
    # sized for print: about 1.1 inch per panel, 8 pt titles on the top row only, the layer named at the left
    fig, axes = plt.subplots(len(layers), 2 * len(queries), figsize=(2.2 * len(queries), 1.2 * len(layers) + 0.35),
                             squeeze=False)
    for row, (name, (images, attn)) in enumerate(layers.items()):
        for col, q in enumerate(queries):
            pair = plot_attention(images[index], attn[index], q, axes[row, 2 * col:2 * col + 2],
                                  title=f"query pixel {q}" if row == 0 else "", heat_title="its attention" if row == 0 else "")
            for ax in pair:
                ax.title.set_fontsize(8)
        axes[row, 0].text(-0.08, 0.5, name.replace(" attention", "\nattention"), transform=axes[row, 0].transAxes,
                          rotation=90, ha="right", va="center", fontsize=8)
    fig.tight_layout(pad=0.3)
    return fig


def attention_png(image: Tensor, attn: Tensor, cell: tuple[int, int], title: str | None = None) -> bytes:
    """The explorer's picture as PNG bytes: plot_attention with a colour bar for the query at map cell
    `cell` (row, col). Drawn on a matplotlib Figure of its own, so no notebook backend shows it twice."""
    import io
    from matplotlib.figure import Figure
    scale = image.shape[-1] / math.isqrt(attn.shape[0])
    fig = Figure(figsize=(9, 4.4), dpi=100)
    plot_attention(image, attn, ((cell[0] + 0.5) * scale, (cell[1] + 0.5) * scale), fig.subplots(1, 2),
                   title=title, colorbar=True)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def attention_explorer(G: nn.Module, D: nn.Module | None = None, real: ImageSet | None = None,
                       n: int = 16, seed: int = 0) -> Any:
    """ipywidgets explorer (ipywidgets 7.7 and 8): choose an attention layer (G on its samples, or D on
    real images), a sample and a query cell of that layer's map (sliders step one map cell, not one pixel).
    Returns VBox([HBox([layer, sample]), HBox([query row, query col]), Image, HTML]): the picture is a PNG
    in an Image widget, and an error while redrawing is shown in the HTML line instead of vanishing in
    the widget callback. The first picture is drawn before returning, so a failure shows at once."""
    import html
    import traceback
    import ipywidgets as widgets
    sources = {f"{name} (generated samples)": v for name, v in generator_attention(G, n, seed).items()}
    if D is not None and real is not None:
        sources.update({f"{name} (real images)": v for name, v in discriminator_attention(D, real, n).items()})
    if not sources:
        raise GanError("no self-attention layers in G (or D) to explore")

    def side(name: str) -> int:
        return math.isqrt(sources[name][1].shape[-1])
    first = side(next(iter(sources)))
    wide = {"description_width": "initial"}
    layer = widgets.Dropdown(options=list(sources), description="layer", style=wide,
                             layout=widgets.Layout(width="420px"))
    index = widgets.IntSlider(value=0, min=0, max=n - 1, description="sample", style=wide)
    row = widgets.IntSlider(value=first // 2, min=0, max=first - 1, description="query row (map cell)", style=wide)
    col = widgets.IntSlider(value=first // 2, min=0, max=first - 1, description="query col (map cell)", style=wide)
    picture = widgets.Image(format="png")
    status = widgets.HTML(value="")
    redrawing = [True]          # False while the layer handler moves the query sliders (one redraw, not three)

    def draw(*_: Any) -> None:
        if not redrawing[0]:
            return
        try:
            images, maps = sources[layer.value]
            i = min(index.value, len(images) - 1)
            picture.value = attention_png(images[i], maps[i], (row.value, col.value),
                                          title=f"{layer.value.split(' (')[0]}, sample {i}")
            status.value = ""
        except Exception:                                   # shown to the user, not lost in the callback
            status.value = f"<pre style='color:#b00020'>explorer error:\n{html.escape(traceback.format_exc())}</pre>"

    def change_layer(change: dict[str, Any]) -> None:
        old, new = side(change["old"]), side(change["new"])
        redrawing[0] = False
        for w in (row, col):                                # the same place in the image, in the new map's cells
            w.max = max(w.max, new - 1)
            w.value = min(w.value * new // old, new - 1)
            w.max = new - 1
        redrawing[0] = True
        draw()
    layer.observe(change_layer, names="value")
    for w in (index, row, col):
        w.observe(draw, names="value")
    draw()
    return widgets.VBox([widgets.HBox([layer, index]), widgets.HBox([row, col]), picture, status])


# ----------------------------------------------------------------------------------------------------
# studies: every arm x seed of a study description, resumable, summarised as mean +- std over seeds
# ----------------------------------------------------------------------------------------------------

# Config fields a study sets for all its runs (from its own keys), never through an arm's overrides
STUDY_OWNED_FIELDS = ("name", "seed", "iters", "eval_every", "eval_samples", "checkpoint_every")
STUDY_KEYS = ("name", "description", "preset", "width", "set", "arms", "grid", "shared", "seeds", "iters",
              "eval_every", "eval_samples", "start_from")


@dataclass
class Study:
    """A study (studies/<name>.json): each arm is the preset with the study's `base` overrides, then the arm's
    own; every arm is trained once per seed with one budget and one evaluation protocol."""
    name: str                          # folder of its runs and results: <runs_dir>/<name>/
    description: str                   # the question the study asks (copied into the results file)
    preset: str                        # a PRESETS key
    base: tuple[str, ...]              # key=value overrides of every arm, as `train --set` takes them
    arms: dict[str, tuple[str, ...]]   # arm name -> its own key=value overrides, applied after `base`
    seeds: tuple[int, ...]             # Config.seed of each run; the same seed gives every arm the same start
    iters: int                         # iterations of every run
    eval_every: int                    # validation metric every this many iterations (and checkpoints)
    eval_samples: int                  # generated images per validation metric
    # arm -> (study, arm) whose runs it shares: the same config (checked by load_study), trained once, in the
    # other study's folders; e.g. every study's baseline arm is one set of runs
    shared: dict[str, tuple[str, str]] = dataclasses.field(default_factory=dict)
    # a training state (a run's last.pt) every run forks from (train(fork_from=...)) instead of starting from
    # new networks: arms then ask what a change does from that point of a run; iters counts from 0, as the state's
    start_from: str | None = None

    def owner(self, arm: str) -> tuple[str, str]:
        """(study, arm) whose folders hold this arm's runs: its own, or those of the arm it shares."""
        return self.shared.get(arm, (self.name, arm))

    def config(self, arm: str, seed: int) -> Config:
        """The Config of one run (named after the study and arm that own its runs)."""
        cfg = PRESETS[self.preset]().with_overrides([*self.base, *self.arms[arm]])
        return dataclasses.replace(cfg, name="-".join(self.owner(arm)), seed=seed, iters=self.iters,
                                   eval_every=self.eval_every, eval_samples=self.eval_samples,
                                   checkpoint_every=self.eval_every).validate()

    def runs(self) -> list[tuple[str, int]]:
        """(arm, seed) of every run, seed by seed, so a study stopped early has whole seeds of every arm."""
        return [(arm, seed) for seed in self.seeds for arm in self.arms]


def _grid_arms(axes: list[dict[str, list[str]]]) -> dict[str, tuple[str, ...]]:
    """Cartesian product of named override lists: [{"a": [..], "b": [..]}, {"x": [..]}] -> arms "a-x", "b-x"."""
    arms: dict[str, tuple[str, ...]] = {"": ()}
    for axis in axes:
        arms = {f"{name}-{label}".strip("-"): (*sets, *more) for name, sets in arms.items()
                for label, more in axis.items()}
    return arms


def load_study(path: str | Path, share: bool = True) -> Study:
    """Read and check a study description: every arm's Config is built and validated here, so a typo fails
    before any training. Keys: preset, arms ({name: [key=value, ...]}) or grid ([{name: [...]}, ...], the
    arms being every combination), seeds, iters, eval_every, eval_samples; optional name (default: the
    file's stem), description, set (overrides of every arm), width (g_ch = d_ch = width), shared ({arm:
    "study/arm"}: the arm's runs are that arm's of the study file beside this one, which must give the same
    config; so arms common to several studies are trained once). share=False leaves `shared` out (each arm
    then uses its own folders)."""
    path = Path(path)
    try:
        spec = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise GanError(f"study file {path} could not be read as JSON ({exc})") from exc
    unknown = sorted(set(spec) - set(STUDY_KEYS))
    missing = sorted({"preset", "seeds", "iters", "eval_every", "eval_samples"} - set(spec))
    if unknown or missing or ("arms" in spec) == ("grid" in spec):
        raise GanError(f"study file {path}: unknown keys {unknown}, missing keys {missing}; it needs exactly one "
                       f"of 'arms' and 'grid' (valid keys: {', '.join(STUDY_KEYS)})")
    if spec["preset"] not in PRESETS:
        raise GanError(f"study file {path}: preset {spec['preset']!r} is not one of {sorted(PRESETS)}")
    width = [f"g_ch={spec['width']}", f"d_ch={spec['width']}"] if "width" in spec else []
    arms = spec["arms"] if "arms" in spec else _grid_arms(spec["grid"])
    study = Study(name=spec.get("name", path.stem), description=spec.get("description", ""), preset=spec["preset"],
                  base=(*width, *spec.get("set", [])), arms={a: tuple(s) for a, s in arms.items()},
                  seeds=tuple(spec["seeds"]), iters=spec["iters"], eval_every=spec["eval_every"],
                  eval_samples=spec["eval_samples"], start_from=spec.get("start_from"))
    for arm, sets in study.arms.items():
        owned = [s for s in (*study.base, *sets) if s.partition("=")[0] in STUDY_OWNED_FIELDS]
        if owned or not arm.replace("-", "").replace("_", "").replace(".", "").isalnum():
            raise GanError(f"study file {path}, arm {arm!r}: arm names use letters, digits, '-', '_', '.', and "
                           f"{list(STUDY_OWNED_FIELDS)} are set by the study's own keys, not by overrides {owned}")
        try:
            study.config(arm, 0)
        except GanError as exc:
            raise GanError(f"study file {path}, arm {arm!r}: {exc}") from exc
    if len(set(study.seeds)) != len(study.seeds) or not study.seeds:
        raise GanError(f"study file {path}: seeds must be distinct and at least one, got {list(study.seeds)}")
    for arm, ref in spec.get("shared", {}).items() if share else ():
        _share(study, arm, ref, path)
    return study


def _share(study: Study, arm: str, ref: str, path: Path) -> None:
    """Make `arm` of `study` (read from `path`) use the runs of `ref` ("study/arm", a study file beside
    `path`), after checking that both give the same config for every seed."""
    other_name, _, other_arm = ref.partition("/")
    other_path = path.parent / f"{other_name}.json"
    if arm not in study.arms or not other_arm or other_name == study.name or not other_path.is_file():
        raise GanError(f"study file {path}: shared {{{arm!r}: {ref!r}}} needs an arm of this file and "
                       f"'study/arm' naming another study file beside it ({other_path} does not exist or the "
                       f"names are wrong)")
    other = load_study(other_path, share=False)
    if other_arm not in other.arms or other_arm in json.loads(other_path.read_text()).get("shared", {}):
        raise GanError(f"study file {path}: shared arm {ref!r} is not an arm of {other_path} that owns its runs")
    study.shared[arm] = (other.name, other_arm)
    mine, theirs = study.config(arm, 0), dataclasses.replace(other.config(other_arm, 0), seed=0)
    differ = {f.name: (getattr(mine, f.name), getattr(theirs, f.name)) for f in dataclasses.fields(Config)
              if getattr(mine, f.name) != getattr(theirs, f.name)}
    if differ:
        raise GanError(f"study file {path}: arm {arm!r} cannot share the runs of {ref!r}, their configs differ "
                       f"in {differ} (this study's value first)")


def study_run_dir(study: Study, arm: str, seed: int, runs_dir: str | Path = "model/studies") -> Path:
    """<runs_dir>/<study>/<arm>_s<seed>/ (of the owning study and arm for a shared arm): last.pt, best.pt
    (not committed), history.json, run.json."""
    owner, owner_arm = study.owner(arm)
    return Path(runs_dir) / owner / f"{owner_arm}_s{seed}"


def study_timing_path(study: Study, runs_dir: str | Path = "model/studies") -> Path:
    """Where `study time` writes the study's seconds per iteration of every arm (time_study) for collect_study."""
    return Path(runs_dir) / study.name / "timing.json"


def _run_record(folder: Path) -> dict[str, Any] | None:
    """A finished run's run.json (its config, seed, arm, device), or None when the run has not finished."""
    path = folder / "run.json"
    return json.loads(path.read_text()) if path.is_file() and (folder / "history.json").is_file() else None


def study_status(study: Study, runs_dir: str | Path = "model/studies") -> list[str]:
    """One line per arm x seed: finished, in progress (the iteration its last.pt reached; being trained now when
    a live process holds its lock) or not started; for deciding what a machine should continue."""
    lines = []
    for arm, seed in study.runs():
        folder = study_run_dir(study, arm, seed, runs_dir)
        if _run_record(folder) is not None:
            state = "finished"
        elif (folder / "last.pt").is_file():
            done = torch.load(folder / "last.pt", map_location="cpu", weights_only=True)["iteration"]
            lock = folder / "lock"
            live = lock.is_file() and not _lock_holder_gone(lock.read_text())
            state = f"in progress: {done:,} of {study.iters:,} iterations" + (" (being trained now)" if live else "")
        else:
            state = "not started"
        lines.append(f"{arm} seed {seed} ({folder}): {state}")
    return lines


def _lock_holder_gone(text: str) -> bool:
    """True when a lock ("host pid") was taken by a process of this machine that no longer exists."""
    import socket
    host, _, pid = text.rpartition(" ")
    if host != socket.gethostname() or not pid.isdigit() or os.name != "posix":
        return False
    try:
        os.kill(int(pid), 0)                   # signal 0: only asks whether the process exists
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def _take_lock(folder: Path) -> bool:
    """Claim a run folder for this process (a `lock` file holding "host pid"); False when another live
    process holds it. A lock left by a killed process of this machine is taken over."""
    import socket
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "lock"
    for _ in range(2):
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            if not _lock_holder_gone(path.read_text()):
                return False
            path.unlink(missing_ok=True)
            continue
        os.write(fd, f"{socket.gethostname()} {os.getpid()}".encode())
        os.close(fd)
        return True
    return False


def _device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"{device.type} ({torch.get_num_threads()} thread{'s' if torch.get_num_threads() > 1 else ''})"


def run_study(study: Study, data: str | Path | tuple[ImageSet, ImageSet], features: FeatureNet,
              runs_dir: str | Path = "model/studies",
              device: torch.device | str = "cpu", only: Callable[[str, int], bool] | None = None,
              stats_dir: str | Path | None = None, progress: bool = True,
              time_limit: float | None = None) -> list[str]:
    """Train every run of `study` (those `only(arm, seed)` accepts) that has not finished, each in its own
    folder; an interrupted run resumes exactly from its last checkpoint (train(resume=True)), finished runs
    are skipped, runs another live process holds (its `lock`) are left to it. `data`: a CIFAR-10 folder (read
    once, when a run needs it, and split as train() expects) or (train, validation) images. The validation
    statistics are cached in `stats_dir` (default <data>/fid_stats) for every run. With `time_limit`
    (seconds, for sessions with a time limit) the run in progress saves its state and the study stops once
    that much time has passed; the same call later continues it. Returns one line per run saying what happened."""
    device = torch.device(device)
    started = time.monotonic()
    if stats_dir is None and not isinstance(data, (str, Path)):
        raise GanError("run_study with images in memory needs stats_dir (where real statistics are cached)")
    stats_dir = stats_dir or Path(data) / "fid_stats"
    lines = []
    for arm, seed in study.runs():
        if only is not None and not only(arm, seed):
            continue
        cfg, folder = study.config(arm, seed), study_run_dir(study, arm, seed, runs_dir)
        record = _run_record(folder)
        if record is not None and Config.from_dict(record["config"]) == cfg:
            lines.append(f"{folder}: finished earlier")
            continue
        if record is not None and not (folder / "last.pt").is_file():
            raise GanError(f"{folder} holds a finished run of another config and no last.pt to continue from: "
                           f"move it away, or restore the study file it was made with")
        if not _take_lock(folder):
            lines.append(f"{folder}: skipped, another process holds {folder / 'lock'} (delete it if that "
                         f"process is gone)")
            continue
        try:
            if isinstance(data, (str, Path)):
                data = train_val_split(load_cifar10(data, train=True))
            left = None if time_limit is None else time_limit - (time.monotonic() - started)
            history = train(cfg, folder, *data, features, device, resume=True, progress=progress,
                            stats_dir=stats_dir, time_limit=left, fork_from=study.start_from)
            if history["iter"][-1:] != [cfg.iters]:
                lines.append(f"{folder}: stopped at iteration {history['iter'][-1]} (time limit); run again to continue")
                break
            owner, owner_arm = study.owner(arm)
            write_json_atomic({"study": owner, "arm": owner_arm, "seed": seed, "set": [*study.base, *study.arms[arm]],
                               "config": dataclasses.asdict(cfg), "device": _device_name(device),
                               "torch": torch.__version__}, folder / "run.json")
        finally:
            (folder / "lock").unlink(missing_ok=True)
        lines.append(f"{folder}: trained to iteration {cfg.iters}")
    return lines


def mean_std(values: list[float]) -> dict[str, Any]:
    """Mean and sample standard deviation (n - 1 in the denominator; None for one value) of per-seed values."""
    v = np.asarray(values, dtype=np.float64)
    spread = 0.0 if (v == v[0]).all() else float(v.std(ddof=1))   # equal values: exactly 0, not rounding residue
    return {"mean": float(v.mean()), "std": spread if len(v) > 1 else None, "n": len(v),
            "values": [float(x) for x in v]}


def _score_at(evals: list[dict[str, Any]], key: str, limit: float) -> float:
    """The metric of the last evaluation with `key` (iter or time) <= limit."""
    return [e for e in evals if e[key] <= limit][-1]["fd"]


def time_study(study: Study, iters: int = 20, warmup: int = 3, rounds: int = 3,
               device: torch.device | str = "cpu") -> dict[str, Any]:
    """Seconds per iteration of every arm, measured in this one process: each arm's networks (seed 0) take
    `warmup` untimed train_steps, then `rounds` times in turn every arm takes `iters` timed ones (so a machine
    that gets busier or quieter affects every arm alike); per arm the median round. CPU time of this process on
    the CPU (one thread: the study's unit), wall-clock time on a GPU. Synthetic images of the config's size:
    the cost of a step does not depend on what the images show. collect_study() then puts every run's
    evaluations on this common clock (iterations x seconds per iteration) instead of the logged times, which
    depend on the machine each run happened to train on and on what else ran there."""
    device = torch.device(device)
    clock = time.process_time if device.type == "cpu" else time.perf_counter
    prec = precision("off" if device.type == "cpu" else "auto", device)
    steps: dict[str, Callable[[int], Any]] = {}   # arm -> one training step at iteration i
    for arm in study.arms:
        cfg = study.config(arm, 0)
        data = synthetic_images(4 * cfg.batch_size, max(cfg.cond_classes, 1), size=cfg.img_size).to(device)
        G, D = (to_device(m, device) for m in build_models(cfg))
        G_ema = copy.deepcopy(G) if cfg.ema_decay > 0 else None
        opt_g, opt_d = make_optimizers(cfg, G, D)
        steps[arm] = (lambda i, c=cfg, m=(G, D, G_ema, opt_g, opt_d), x=data:
                      train_step(c, *m, lambda: x.batch(c.batch_size, c.hflip), i, prec))
        for i in range(warmup):
            steps[arm](i)
    samples: dict[str, list[float]] = {arm: [] for arm in study.arms}
    for _ in range(rounds):
        for arm, step in steps.items():
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            start = clock()
            for i in range(iters):
                step(warmup + i)
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            samples[arm].append((clock() - start) / iters)
    return {"study": study.name, "device": _device_name(device), "torch": torch.__version__,
            "clock": "CPU time of the timing process" if device.type == "cpu" else "wall-clock",
            "iters": iters, "warmup": warmup, "rounds": rounds,
            "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "sec_per_iter": {arm: float(np.median(v)) for arm, v in samples.items()}, "rounds_sec_per_iter": samples,
            "configs": {arm: dataclasses.asdict(study.config(arm, 0)) for arm in study.arms}}


STUDY_TIME = ("training time: on the CPU the process's CPU time in training steps (wall-clock for evaluations "
              "logged before CPU time was), so runs sharing a machine with other jobs stay comparable; on a GPU "
              "wall-clock time; evaluations excluded")


def _with_training_time(evals: list[dict[str, Any]], device: str) -> list[dict[str, Any]]:
    """Each evaluation with "time" (seconds, STUDY_TIME) added: its cpu_seconds for a run on the CPU where logged,
    else its wall-clock seconds."""
    on_cpu = device.startswith("cpu")
    return [{**e, "time": e.get("cpu_seconds", e["seconds"]) if on_cpu else e["seconds"]} for e in evals]


def collect_study(study: Study, runs_dir: str | Path = "model/studies") -> dict[str, Any]:
    """Rebuild <runs_dir>/<study>/results.json from the finished runs' folders (made on any machine) and
    return it: per arm, mean +- std over seeds of the best and final validation metric, the metric at the
    iteration every run reached and at the training time every run reached (STUDY_TIME; comparable only when
    the runs shared one kind of device), images seen, seconds per iteration,
    the mean curve with its spread, and the evaluation protocol."""
    # per arm: (seed, run.json, evaluations, the iteration the run started from: 0, or a fork's)
    runs: dict[str, list[tuple[int, dict[str, Any], list[dict[str, Any]], int]]] = {arm: [] for arm in study.arms}
    missing, devices = [], set()
    timing_path = study_timing_path(study, runs_dir)   # `study time`: every arm timed in one process
    timing = json.loads(timing_path.read_text()) if timing_path.is_file() else None
    if timing is not None and (set(timing["sec_per_iter"]) != set(study.arms) or any(
            Config.from_dict(timing["configs"][arm]) != study.config(arm, 0) for arm in study.arms)):
        raise GanError(f"{timing_path} timed other arms or configs than the study's ({sorted(study.arms)}): "
                       f"time the study again (python gan_helpers.py study time FILE)")
    for arm, seed in study.runs():
        folder = study_run_dir(study, arm, seed, runs_dir)
        record = _run_record(folder)
        if record is None or Config.from_dict(record["config"]) != study.config(arm, seed):
            missing.append(folder.name)
            continue
        devices.add(record["device"])
        history = json.loads((folder / "history.json").read_text())
        start = history.get("forked_from", {}).get("iteration", 0)
        evals = (_with_training_time(history["eval"], record["device"]) if timing is None else
                 [{**e, "time": (e["iter"] - start) * timing["sec_per_iter"][arm]} for e in history["eval"]])
        runs[arm].append((seed, record, evals, start))
    done = [evals for arm_runs in runs.values() for _, _, evals, _ in arm_runs]
    if not done:
        raise GanError(f"no finished run of study {study.name!r} under {Path(runs_dir) / study.name}: "
                       f"run `python gan_helpers.py study run` first")
    equal_iter = min(evals[-1]["iter"] for evals in done)
    equal_seconds = min(evals[-1]["time"] for evals in done)
    first = done[0][-1]
    arms = {}
    for arm, arm_runs in runs.items():
        if not arm_runs:
            continue
        per_run = []
        for seed, record, evals, start in arm_runs:
            cfg = Config.from_dict(record["config"])
            best = min(evals, key=lambda e: e["fd"])
            trained = evals[-1]["iter"] - start
            per_run.append({"seed": seed, "best": best["fd"], "best_iter": best["iter"], "final": evals[-1]["fd"],
                            "at_iter": _score_at(evals, "iter", equal_iter),
                            "at_time": _score_at(evals, "time", equal_seconds),
                            "class_acc": best.get("class_acc"),   # of the samples of the best checkpoint
                            "seconds": evals[-1]["time"], "sec_per_iter": evals[-1]["time"] / trained,
                            "images_seen": trained * cfg.batch_size * cfg.n_critic,
                            "device": record["device"]})
        common = sorted(set.intersection(*({e["iter"] for e in evals} for _, _, evals, _ in arm_runs)))
        curves = np.array([[e["fd"] for e in evals if e["iter"] in common] for _, _, evals, _ in arm_runs])
        seconds = np.array([[e["time"] for e in evals if e["iter"] in common] for _, _, evals, _ in arm_runs])
        arms[arm] = {"set": list(study.arms[arm]), "seeds": [r["seed"] for r in per_run],
                     **{key: mean_std([r[key] for r in per_run])
                        for key in ("best", "final", "at_iter", "at_time", "best_iter", "sec_per_iter")},
                     "class_acc": (None if any(r["class_acc"] is None for r in per_run)
                                   else mean_std([r["class_acc"] for r in per_run])),
                     "images_seen": per_run[0]["images_seen"],
                     "curve": {"iter": common, "mean": curves.mean(0).tolist(),
                               "std": (curves.std(0, ddof=1) if len(curves) > 1 else np.zeros(len(common))).tolist(),
                               "seconds": seconds.mean(0).tolist()},
                     "runs": per_run}
    results = {"study": study.name, "description": study.description, "preset": study.preset,
               "base": list(study.base), "seeds": list(study.seeds),
               **({"start_from": study.start_from} if study.start_from else {}),
               "protocol": {"metric": first["metric"], "n_fake": first["n_fake"], "n_real": first["n_real"],
                            "iters": study.iters, "eval_every": study.eval_every,
                            "best": "lowest validation metric over the evaluations of a run",
                            "spread": "mean and sample standard deviation (n - 1) over seeds",
                            "equal_iter": equal_iter, "equal_seconds": equal_seconds,
                            "seconds": STUDY_TIME if timing is None else
                            (f"training time: iterations x seconds per iteration of each arm, all timed in one "
                             f"process ({timing['clock']}, {timing['device']}, torch {timing['torch']}, "
                             f"{timing['date'][:10]}; timing.json)"),
                            "devices": sorted(devices)},
               "arms": arms, "missing": missing}
    write_json_atomic(results, Path(runs_dir) / study.name / "results.json")
    return results


def _pm(s: dict[str, Any], digits: int = 4) -> str:
    return f"{s['mean']:.{digits}g}" + ("" if s["std"] is None else f" ± {s['std']:.2g}")


def study_table(results: dict[str, Any], fmt: str = "markdown") -> str:
    """A results file as a markdown or LaTeX (booktabs) table: per arm, mean ± std over seeds of the best,
    final, equal-iteration and equal-time validation metric, images seen, seconds per iteration, and how far
    its best is from the arm with the lowest mean best; '*' marks a gap larger than the two arms' standard
    deviations added (their mean ± std intervals do not overlap; never marked with a single seed). Where any
    arm logged it, the class accuracy of the best checkpoint's samples follows the scores ("--" for an arm
    without it, such as an unconditional one). The metric and its sample counts (results["protocol"]) belong
    in the caption or the line under the table."""
    p, arms = results["protocol"], results["arms"]
    lead = min(arms, key=lambda a: arms[a]["best"]["mean"])
    with_acc = any(a.get("class_acc") for a in arms.values())
    head = ["arm", "seeds", "best", "final", f"at {p['equal_iter']:,} it", f"at {p['equal_seconds']:,.0f} s",
            *(["class acc."] if with_acc else []), "images seen", "s/it", "best vs lowest"]
    rows = []
    for arm, a in arms.items():
        gap = a["best"]["mean"] - arms[lead]["best"]["mean"]
        spreads = (a["best"]["std"], arms[lead]["best"]["std"])
        apart = None not in spreads and gap > sum(spreads)
        rows.append([arm, str(len(a["seeds"])), *(_pm(a[k]) for k in ("best", "final", "at_iter", "at_time")),
                     *([_pm(a["class_acc"], 2) if a.get("class_acc") else "--"] if with_acc else []), f"{a['images_seen']:,}",
                     _pm(a["sec_per_iter"], 3), "lowest" if arm == lead else f"+{gap:.3g}" + ("*" if apart else "")])
    return format_table(head, rows, fmt)


def study_differences(results: dict[str, Any], key: str = "best") -> list[tuple[str, str, float]]:
    """The pairs of arms whose mean `key` score ("best", "final", "at_iter", "at_time"; lower is better) differs
    by more than the two arms' standard deviations over seeds added, as (lower arm, higher arm, gap), largest gap
    first. Arms with a single seed have no spread and take part in no pair."""
    arms = {arm: a[key] for arm, a in results["arms"].items() if a[key]["std"] is not None}
    pairs = []
    for i, (u, su) in enumerate(arms.items()):
        for v, sv in list(arms.items())[i + 1:]:
            low, high = (u, v) if su["mean"] <= sv["mean"] else (v, u)
            gap = abs(su["mean"] - sv["mean"])
            if gap > su["std"] + sv["std"]:
                pairs.append((low, high, gap))
    return sorted(pairs, key=lambda p: -p[2])


def plot_study(results: dict[str, Any], ax: Any = None, x: str = "iter") -> Any:
    """Validation curves of a results file: per arm the mean over seeds, with a band of ± one standard
    deviation; x = "iter" or "seconds" (training time). Returns the axes."""
    import matplotlib.pyplot as plt
    if ax is None:
        _, ax = plt.subplots(figsize=(6.5, 4))
    for arm, a in results["arms"].items():
        c = a["curve"]
        xs, mean, std = np.asarray(c[x]), np.asarray(c["mean"]), np.asarray(c["std"])
        line, = ax.plot(xs, mean, label=f"{arm} (best {_pm(a['best'], 3)}, {len(a['seeds'])} seeds)")
        ax.fill_between(xs, mean - std, mean + std, color=line.get_color(), alpha=0.2, linewidth=0)
    p = results["protocol"]
    ax.set_xlabel("iteration" if x == "iter" else "training time (s)")
    ax.set_ylabel(metric_label(p["metric"], p["n_fake"], p["n_real"]))
    log_y(ax)
    ax.set_title(f"study {results['study']}: mean ± std over seeds")
    ax.legend(fontsize="small")
    return ax


# ----------------------------------------------------------------------------------------------------
# final evaluation and command line
# ----------------------------------------------------------------------------------------------------

def final_evaluation(ckpt: str | Path = "model/sagan_best.pt", data_dir: str | Path = "data", n: int = 10_000,
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
    G = to_device(generator_from_checkpoint(ckpt_info, ckpt), device)
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
    return result


def _path_stats(path: str, features: FeatureNet, batch_size: int) -> Stats:
    """Statistics of an image folder, or those stored in a pytorch-fid style .npz (mu, sigma)."""
    p = Path(path)
    if p.suffix == ".npz" and p.is_file():
        return Stats.load(p)
    if not p.is_dir():
        raise GanError(f"{path} is neither an image folder nor an .npz of statistics")
    files = image_files(p)
    if not files:
        raise GanError(f"no images ({', '.join(IMAGE_EXTENSIONS)}) directly in {path}")
    return Stats.of(features.features(read_images(files), batch_size))


def _cmd_train(args: argparse.Namespace) -> None:
    cfg = PRESETS[args.model]().with_overrides(args.set)
    for key in ("iters", "eval_every", "eval_samples", "val_size"):
        if getattr(args, key) is not None:
            cfg = dataclasses.replace(cfg, **{key: getattr(args, key)})
    cfg.validate()
    device = setup(cfg.seed, args.device)
    train_data, val_data = load_dataset(cfg, args.data_dir)
    cfg = config_for_data(cfg, train_data)
    G, D = build_models(cfg)
    print(f"{cfg.name}: arch={cfg.arch}, img_size={cfg.img_size}, cond={cfg.cond} ({cfg.cond_classes} classes), "
          f"spectral_norm={cfg.spectral_norm}, loss={cfg.loss}, lipschitz={cfg.lipschitz}; "
          f"G {count_parameters(G):,} and D {count_parameters(D):,} parameters; "
          f"{len(train_data):,} training / {len(val_data):,} validation images from {train_data.source}")
    features = load_feature_net(args.feature_net, args.fid_weights, device, args.classifier)
    out = Path(args.out or f"runs/{cfg.name}")
    history = train(cfg, out, train_data, val_data, features, device, resume=args.resume,
                    stats_dir=args.stats_dir or Path(args.data_dir) / "fid_stats",
                    time_limit=args.time_limit * 60 if args.time_limit else None, fork_from=args.fork_from)
    best = best_eval(history)
    print(f"done: {out}/last.pt, {out}/best.pt (iteration {best['iter']}: {format_score(best)}), "
          f"{out}/history.json")


def _cmd_sample(args: argparse.Namespace) -> None:
    ckpt = load_checkpoint(args.ckpt)
    G = to_device(generator_from_checkpoint(ckpt, args.ckpt), setup(args.seed, args.device))
    out = Path(args.out)
    if args.per_class:
        recorded = ckpt.get("split", {}).get("class_names")
        print(f"wrote {len(save_class_samples(G, out, args.seed, recorded and tuple(recorded)))} PNGs to {out}")
        return
    images = sample(G, args.n, seed=args.seed)
    _, y = latents(G, args.n, seed=args.seed)
    if out.suffix == ".npz":
        out.parent.mkdir(parents=True, exist_ok=True)
        np.savez(out, x=to_uint8(images).permute(0, 2, 3, 1).numpy(),
                 y=(y if y is not None else torch.full((args.n,), -1)).numpy())
        s = G.config.img_size
        print(f"wrote {args.n} images to {out} (x: uint8 (N, {s}, {s}, 3), y: labels, -1 = unconditional)")
    else:
        save_pngs(images, out, [f"{i:05d}" for i in range(args.n)])
        print(f"wrote {args.n} PNGs to {out}")


def _cmd_fid(args: argparse.Namespace) -> None:
    features = load_feature_net(args.feature_net, args.fid_weights, setup(0, args.device), classifier="none")
    a, b = (_path_stats(p, features, args.batch_size) for p in (args.path_a, args.path_b))
    fd = frechet_distance(a.mu, a.sigma, b.mu, b.sigma)
    print(f"{features.label}: {fd:.6f} ({a.n or '?'} vs {b.n or '?'} images)")


def _cmd_publish(args: argparse.Namespace) -> None:
    target = publish(args.run_dir, args.name, args.model_dir, args.sample_dir, args.force)
    print(f"wrote {target} and {Path(args.model_dir) / (args.name + '_history.json')}"
          + (f" and one image per class in {args.sample_dir}" if args.sample_dir else ""))


def _cmd_evaluate(args: argparse.Namespace) -> None:
    import matplotlib
    matplotlib.use("Agg")
    grid = Path(args.grid or Path(args.ckpt).with_suffix(".grid.png").name)
    result = final_evaluation(args.ckpt, args.data_dir, args.n, args.feature_net, args.fid_weights, args.device,
                              grid_path=grid, show=False, classifier=args.classifier)
    print(f"8x8 grid written to {grid}")
    if args.json and result is not None:
        write_json_atomic({"checkpoint": str(args.ckpt), "data_dir": str(args.data_dir), **result}, args.json)
        print(f"scores written to {args.json}")


def _study_flags(args: argparse.Namespace) -> list[str]:
    """The options of `study run` as command-line words: what `study commands` and `--jobs` pass on."""
    flags = ["--data-dir", str(args.data_dir), "--runs-dir", str(args.runs_dir)]
    for name in ("stats_dir", "feature_net", "fid_weights", "device", "threads", "time_limit"):
        if getattr(args, name) is not None:
            flags += ["--" + name.replace("_", "-"), str(getattr(args, name))]
    return flags


def _study_device(args: argparse.Namespace) -> torch.device:
    """The device of a study command that trains or times here (--device, checked now: `study commands` only
    prints it for other machines), with --threads applied."""
    try:
        _device(args.device) if args.device is not None else None
    except argparse.ArgumentTypeError as exc:
        raise GanError(f"--device {exc}") from None
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    return setup(0, args.device)


def _cmd_study(args: argparse.Namespace) -> None:
    study = load_study(args.file)
    if args.action == "status":
        print("\n".join(study_status(study, args.runs_dir)))
        return
    if args.action == "time":
        timing = time_study(study, args.timed_iters, device=_study_device(args))
        path = study_timing_path(study, args.runs_dir)
        write_json_atomic(timing, path)
        reference = next(iter(timing["sec_per_iter"].values()))
        for arm, spi in timing["sec_per_iter"].items():
            print(f"{arm}: {spi:.3f} s per iteration ({spi / reference:.2f}x the first arm)")
        print(f"{timing['clock']}, {timing['device']}; written to {path}")
        return
    if args.action == "commands":
        runs = [(a, s) for a, s in study.runs() if (not args.arm or a in args.arm) and (not args.seed or s in args.seed)]
        for arm, seed in runs:
            print(" ".join(["python", "gan_helpers.py", "study", "run", str(args.file), "--arm", arm,
                            "--seed", str(seed), "--quiet", *_study_flags(args)]))
        print(f"# {len(runs)} runs, each in its own folder; afterwards (with every run folder under "
              f"{args.runs_dir}/{study.name}/): python gan_helpers.py study collect {args.file} "
              f"--runs-dir {args.runs_dir}", file=sys.stderr)
        return
    if args.action == "run" and args.jobs > 1:
        import subprocess
        word = [sys.executable, str(Path(__file__).resolve()), "study", "run", str(args.file), "--quiet", "--worker",
                *_study_flags(args), *(w for a in args.arm for w in ("--arm", a)),
                *(w for s in args.seed for w in ("--seed", str(s)))]
        workers = [subprocess.Popen(word) for _ in range(args.jobs)]   # they share the runs through lock files
        if any(w.wait() for w in workers):
            raise GanError(f"a worker of study {study.name} failed (its message is above); run the same command "
                           f"again to continue")
    elif args.action == "run":
        device = _study_device(args)
        features = load_feature_net(args.feature_net, args.fid_weights, device)
        only = lambda arm, seed: (not args.arm or arm in args.arm) and (not args.seed or seed in args.seed)  # noqa: E731
        for line in run_study(study, args.data_dir, features, args.runs_dir, device, only, args.stats_dir,
                              progress=not args.quiet, time_limit=args.time_limit * 60 if args.time_limit else None):
            print(line, flush=True)
    if args.worker:
        return
    if args.action == "run" and (args.arm or args.seed):   # part of a study: other runs may still be going
        print(f"collect the results when every run has finished: python gan_helpers.py study collect "
              f"{args.file} --runs-dir {args.runs_dir}")
        return
    if args.action == "run" and not any(_run_record(study_run_dir(study, a, s, args.runs_dir)) for a, s in study.runs()):
        print(f"no run of study {study.name} has finished yet: run the same command again to continue")
        return
    results = collect_study(study, args.runs_dir)
    print(study_table(results))
    pairs = study_differences(results)
    print("differences in the best score beyond both spreads over seeds: "
          + ("; ".join(f"{lo} < {hi} by {gap:.3g}" for lo, hi, gap in pairs) or "none"))
    print(f"{results['protocol']['metric']}, {results['protocol']['n_fake']} generated vs "
          f"{results['protocol']['n_real']} real; missing runs: {results['missing'] or 'none'}; written to "
          f"{Path(args.runs_dir) / study.name / 'results.json'}")


class _Parser(argparse.ArgumentParser):
    """argparse with its errors in one line (what was wrong, where to read the options), like GanError's."""

    def error(self, message: str) -> typing.NoReturn:
        self.exit(2, f"error: {self.prog}: {message} (see {self.prog} --help)\n")


def _count(minimum: int) -> Callable[[str], int]:
    """argparse type: an integer >= minimum."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be >= {minimum}, got {value}")
        return value
    return parse


def _positive_minutes(text: str) -> float:
    """argparse type: a number of minutes > 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of minutes, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
    return value


def _device(text: str) -> str:
    """argparse type: a torch device name that exists on this machine."""
    try:
        device = torch.device(text)
    except RuntimeError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a device name (cpu, cuda, cuda:1, mps)") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise argparse.ArgumentTypeError(f"{text!r}: no CUDA GPU is available here; use --device cpu")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise argparse.ArgumentTypeError(f"{text!r}: Apple MPS is not available here; use --device cpu")
    return text


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python gan_helpers.py", description="GAN study kit: MLP, DCGAN and SAGAN, "
                                     "conditional or not, on CIFAR-10 or image folders.")
    sub = parser.add_subparsers(dest="command", required=True)
    positive, non_negative = _count(1), _count(0)

    def add_common(p: argparse.ArgumentParser, features: bool = True, classifier: bool = False,
                   local_device: bool = True) -> None:
        # local_device=False: the device of commands printed for other machines (study commands), checked where
        # they run, not here
        p.add_argument("--device", type=_device if local_device else str,
                       help="cpu, cuda, cuda:1, mps (default: best available)")
        if features:
            p.add_argument("--feature-net", help="TorchScript feature network for an offline proxy metric (not FID)")
            p.add_argument("--fid-weights", help=f"local copy of pytorch-fid's {INCEPTION_WEIGHTS_FILE}")
        if classifier:
            p.add_argument("--classifier", help="TorchScript CIFAR-10 classifier for class accuracy (and, with "
                                                "--feature-net, a proxy IS); default model/eval/cifar10_classifier.pt, "
                                                "'none' for none")

    t = sub.add_parser("train", help="train a model; writes last.pt, best.pt and history.json to --out")
    t.add_argument("model", choices=tuple(PRESETS), help="preset (ref_* = the reference report's recipes)")
    t.add_argument("--iters", type=positive, help="total iterations (a resumed run continues up to this)")
    t.add_argument("--eval-every", type=positive, help="validation metric every N iterations")
    t.add_argument("--eval-samples", type=_count(2), help="generated images per validation metric")
    t.add_argument("--data-dir", default="data", help="CIFAR-10 (cifar-10-batches-py or {train,test}/<class>/) or "
                   "any image folder ({train,test}/<class>/, <class>/ or flat; see --set dataset=...)")
    t.add_argument("--val-size", type=_count(2), help="validation images held out of the training set (Config.val_size)")
    t.add_argument("--out", help="output folder (default runs/<name>)")
    t.add_argument("--stats-dir", help="cache of real-image feature statistics (default DATA_DIR/fid_stats)")
    t.add_argument("--resume", action="store_true", help="continue from OUT/last.pt")
    t.add_argument("--fork-from", metavar="STATE", help="start from another run's training state (its last.pt) "
                   "with these settings (a new name and seed; learning rates, loss weights, steps, batch size and "
                   "augmentation may differ), when OUT holds no last.pt yet")
    t.add_argument("--time-limit", type=_positive_minutes, metavar="MINUTES",
                   help="stop after this many minutes, saving last.pt (continue later with --resume)")
    t.add_argument("--set", nargs="+", action="extend", default=[], metavar="KEY=VALUE",
                   help="override Config fields (repeatable: --set a=1 --set b=2 sets both)")
    add_common(t, classifier=True)
    t.set_defaults(func=_cmd_train)

    s = sub.add_parser("sample", help="generate images from a checkpoint")
    s.add_argument("ckpt")
    s.add_argument("--n", type=positive, default=64)
    s.add_argument("--out", required=True, help="FILE.npz or a folder for PNGs")
    s.add_argument("--seed", type=non_negative, default=0)
    s.add_argument("--per-class", action="store_true", help="one PNG per class, named <index>_<class>.png")
    add_common(s, features=False)
    s.set_defaults(func=_cmd_sample)

    f = sub.add_parser("fid", help="Frechet distance between two image folders or .npz statistics")
    f.add_argument("path_a")
    f.add_argument("path_b")
    f.add_argument("--batch-size", type=positive, default=50)
    add_common(f)
    f.set_defaults(func=_cmd_fid)

    pub = sub.add_parser("publish", help="copy a run's best.pt and history to model/<name>_best.pt and _history.json")
    pub.add_argument("run_dir")
    pub.add_argument("name")
    pub.add_argument("--model-dir", default="model")
    pub.add_argument("--sample-dir", help="also write one image per class there (e.g. SAGAN)")
    pub.add_argument("--force", action="store_true",
                     help="replace a published model even when the new one scores worse or was scored "
                          "differently (the old files go to MODEL_DIR/replaced/<time>/)")
    pub.set_defaults(func=_cmd_publish)

    e = sub.add_parser("evaluate", help="8x8 grid PNG and test-set FID, KID, IS, class accuracy and diversity of "
                                        "a checkpoint (on the split it recorded)")
    e.add_argument("ckpt")
    e.add_argument("--data-dir", default="data")
    e.add_argument("--n", type=_count(2), default=10_000, help="generated images (vs the 10,000 test images)")
    e.add_argument("--grid", help="PNG path for the 8x8 grid (default <ckpt name>.grid.png)")
    e.add_argument("--json", help="also write the test-set scores to this JSON file (the report reads them)")
    add_common(e, classifier=True)
    e.set_defaults(func=_cmd_evaluate)

    st = sub.add_parser("study", help="run, list or collect the runs of a study description (studies/*.json)")
    st.add_argument("action", choices=("run", "commands", "collect", "status", "time"),
                    help="run: train every unfinished run, then write results.json; commands: print one "
                         "standalone command per run (for several processes, GPUs or machines); collect: "
                         "rebuild results.json from the run folders; status: which runs are finished, in "
                         "progress or not started; time: seconds per iteration of every arm, timed in turn in "
                         "one process, to RUNS_DIR/<study>/timing.json (collect then compares times by it)")
    st.add_argument("file", help="study description, e.g. studies/attention.json")
    st.add_argument("--data-dir", default="data", help="CIFAR-10 folder (as for train)")
    st.add_argument("--runs-dir", default="model/studies", help="run folders go to RUNS_DIR/<study>/<arm>_s<seed>/")
    st.add_argument("--stats-dir", help="cache of real-image feature statistics (default DATA_DIR/fid_stats)")
    st.add_argument("--arm", action="append", default=[], help="only this arm (repeatable)")
    st.add_argument("--seed", type=int, action="append", default=[], help="only this seed (repeatable)")
    st.add_argument("--threads", type=int, help="torch CPU threads per process (1 to run two processes on 2 cores)")
    st.add_argument("--jobs", type=int, default=1, help="run: this many worker processes sharing the runs")
    st.add_argument("--quiet", action="store_true", help="no progress bars, one line per run")
    st.add_argument("--time-limit", type=_positive_minutes, metavar="MINUTES",
                    help="run: save the state and stop after this long (the same command continues)")
    st.add_argument("--timed-iters", type=positive, default=20, help="time: timed iterations per arm and round")
    st.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)  # a --jobs worker: its parent collects
    add_common(st, local_device=False)
    st.set_defaults(func=_cmd_study)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except GanError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # a folder that cannot be created, a full disk, no permission: not a bug of ours
        print(f"error: {exc.strerror or exc}{f': {exc.filename}' if exc.filename else ''}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted: the last checkpoint is intact; continue with --resume", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
