"""Config: every choice of a run, one field each, with its presets and validate() (contradictory settings
refused in one line naming the fix). Checkpoints store it, so a checkpoint alone rebuilds its generator."""
from __future__ import annotations

import ast
import dataclasses
import typing
from dataclasses import dataclass
from typing import Any, Callable
import torch

from .core import GanError, IMG_SIZES
from .registry import ARCHS, CONDITIONINGS, DATASETS, LOSSES, attention_resolutions, augment_policy
from .device import PRECISIONS

__all__ = ['Config', 'SPECTRAL_NORM', 'ENCODERS', 'LATENT_ARCHS', 'PRESETS', 'migrate_config']


@dataclass
class Config:
    """Everything that defines a run. Checkpoints store it, so a checkpoint alone rebuilds its generator."""
    # --- the run
    name: str = "sagan"              # run name; best generator goes to model/<name>_best.pt when published
    seed: int = 0                    # seeds python, numpy and torch (one place: setup())
    # --- data: what load_dataset() reads; these fields are the split, stored in every checkpoint
    dataset: str = "auto"            # "cifar10" (batches, image tree or download), "folder" (any image folder),
                                     # "auto" (a folder if --data-dir holds images, else CIFAR-10); see DATASETS
    img_size: int = 32               # image side in pixels (see IMG_SIZES); other sizes are centre-cropped and
                                     # resized once at load time; every architecture derives its stages from it
    classes: tuple[str, ...] = ()    # class names to keep, relabelled 0..k-1 in this order; () = all classes
    val_size: int = 5000             # validation images held out of the training images (CIFAR-10: 5000)
    split_seed: int = 0              # seed of the train/validation(/test) split, independent of `seed`
    hflip: bool = True               # random horizontal flips of real images
    # --- networks: what build_models() builds
    arch: str = "resnet"             # "mlp" (Goodfellow 2014), "dcgan" (Radford 2016), "resnet" (SNGAN/BigGAN); ARCHS
    z_dim: int = 128                 # latent size (DCGAN reference: 100; SNGAN/BigGAN: 128)
    num_classes: int = 10            # classes of the data (the CLI takes it from the dataset), read when
                                     # cond != "none"; 0 also means unconditional (as before `cond` existed)
    cond: str = "projection"         # class conditioning (see CONDITIONINGS): "none", "concat" (CGAN, Mirza 2014),
                                     # "acgan" (Odena 2017), "projection" (CBN in G, projection D, Miyato 2018),
                                     # "projection-ac" (projection plus an ACGAN class head on D)
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
    d_pool: str = "sum"              # arch="resnet": how D pools its last (N, C, 8, 8) features before the logit and
                                     # the projection: "sum" over the 64 positions (SNGAN, BigGAN) or "mean" (the
                                     # same features, 64x smaller outputs: spectral norm's per-layer bound then
                                     # bounds the critic's scale without a factor of 64)
    spectral_norm: str = "gd"        # spectral norm on every conv/linear of: "none", "d" (D only), "gd" (G and D,
                                     # SAGAN, Zhang 2019; the paper's ablation compares the three)
    # --- objective and constraint: what D and G minimise (gankit/losses.py, gankit/step.py)
    loss: str = "wgan"               # "wgan", "hinge" or "bce" (see LOSSES)
    acgan_weight: float = 1.0        # weight of the class cross-entropy in the D and G losses of a D with a class
                                     # head (acgan, projection-ac; Odena: 1)
    lipschitz: str = "none"          # extra Wasserstein critic constraint: "none", "clip" (weight clipping),
                                     # "gp" (gradient penalty); loss="wgan" needs one of them or SN on D
    clip_value: float = 0.011        # weight clipping bound for lipschitz="clip" (reference report: 0.011)
    gp_weight: float = 10.0          # gradient penalty weight for lipschitz="gp" (Gulrajani 2017: 10)
    drift: float = 1e-3              # eps_drift * E[D(x)^2] keeps Wasserstein critic scores from drifting
                                     # (Karras et al. 2018, ProGAN: 1e-3); 0 = off
    diffaug: str = "none"            # differentiable augmentation of every D input in training (Zhao 2020):
                                     # "none" or names from AUGMENTS joined by commas, e.g. "translation,cutout"
    cr_weight: float = 0.0           # balanced consistency regularisation (bCR, Zhao et al. 2021): D pays
                                     # cr_weight x the squared change of its logits when its real and generated
                                     # inputs are flipped and shifted a little (consistency_shift); 0 = off
                                     # (the paper: 10)
    ms_weight: float = 0.0           # mode seeking (MSGAN, Mao et al. 2019): G's batch is drawn in two halves with
                                     # the same labels, and G pays ms_weight / (mean |x1 - x2| / mean |z1 - z2|
                                     # + 1e-5) over the pairs (mode_seeking_loss); 0 = off (the paper: 1)
    # --- optimisation
    optimizer: str = "adam"          # "adam" or "rmsprop" (the reference report's SAGAN used RMSprop)
    g_lr: float = 1e-4               # TTUR: G learning rate (SAGAN: 1e-4)
    d_lr: float = 4e-4               # TTUR: D learning rate (SAGAN: 4e-4)
    betas: tuple[float, float] = (0.0, 0.9)  # Adam betas (SAGAN: (0, 0.9); DCGAN: (0.5, 0.999))
    n_critic: int = 1                # D steps per round (WGAN: 5)
    n_gen: int = 1                   # G steps per round (after the n_critic D steps)
    batch_size: int = 64             # images per D step and per G step (SAGAN: 64 on CIFAR-sized setups)
    ema_decay: float = 0.9999        # EMA of G's weights for sampling (Karras 2018, BigGAN); 0 = off
    ema_start: int = 1000            # iterations before the EMA starts averaging (it copies G until then)
    # --- schedule
    iters: int = 100_000             # rounds (n_critic D steps + n_gen G steps) in total
    checkpoint_every: int = 1000     # full training state to last.pt every this many iterations
    diverged_above: float = 1e6      # |loss| or |mean D logit| above this stops training as diverged, like a
                                     # NaN (the shipped runs stay below 2e3; a run past 1e6 does not recover)
    # --- evaluation: the validation score that selects best.pt
    eval_every: int = 1000           # validation FID every this many iterations (assignment: <= 1000)
    eval_samples: int = 5000         # generated images per validation FID (vs the val_size validation images)
    # --- the other GANs of the same models (docs/more_gans.md)
    info_cat: int = 0                # InfoGAN (Chen et al. 2016): values of a categorical code drawn beside z
                                     # (one-hot, joined to G's input) and predicted by a Q head on D; 0 = none
                                     # (the paper's MNIST model: 10)
    info_cont: int = 0               # InfoGAN: continuous codes ~ Uniform(-1, 1) drawn beside z (paper: 2)
    info_weight: float = 1.0         # InfoGAN: weight of the mutual-information term in the D and G losses
                                     # (0: the codes enter G but nothing asks G to keep them readable)
                                     # (paper: 1 for categorical codes)
    encoder: str = "none"            # "bigan": an encoder E (image -> z) trained with G against a joint D(x, z)
                                     # (BiGAN, Donahue et al. 2017; ALI, Dumoulin et al. 2017); "none"
    # --- speed: how G and D run in training, not what they compute
    amp: str = "auto"                # mixed precision of G and D in training (see PRECISIONS): "auto" = bf16 on a
                                     # CUDA GPU that has it, else fp16 with gradient scaling; float32 on CPU/MPS
    compile: str = "off"             # "cudagraph": the whole training step recorded once as a CUDA graph and replayed
                                     # (gankit/capture.py; eager, saying why, where it cannot be); or a torch.compile
                                     # backend for G and D ("inductor", "aot_eager", ...); "off" = eager. Off by
                                     # default until timed on each device (tests/benchmarks/train_speed.py)

    @property
    def cond_classes(self) -> int:
        """Classes the models are conditioned on: num_classes, or 0 when cond="none" (0: unconditional)."""
        return self.num_classes if self.cond != "none" else 0

    @property
    def code_dim(self) -> int:
        """Width of InfoGAN's codes joined to z: info_cat one-hot values, then info_cont continuous codes."""
        return self.info_cat + self.info_cont

    @property
    def latent_dim(self) -> int:
        """Width of the latents G takes: z (z_dim), then the InfoGAN codes (see gankit/latent.py)."""
        return self.z_dim + self.code_dim

    @staticmethod
    def dcgan(**overrides: Any) -> "Config":
        """The baseline: the reference report's DCGAN (BCE, Adam 2e-4, beta1 0.5, batch 128), made
        class-conditional with projection plus ACGAN's class head: at equal iterations its samples carry their
        class twice as often as with projection alone, at a lower FD (studies/dcgan_recipe.json, 3 seeds).
        No EMA: at iteration 10,000 an EMA of G (0.999) scored worse than G itself for this DCGAN, even with
        standing BatchNorm statistics (model/rescore_dcgan_10000.json); tools/rescore_ema.py compares the two
        later in a run."""
        base = dict(name="dcgan", arch="dcgan", z_dim=100, cond="projection-ac", g_ch=64, d_ch=32, g_attn=(),
                    d_attn=(), spectral_norm="none", loss="bce", drift=0.0, g_lr=2e-4, d_lr=2e-4,
                    betas=(0.5, 0.999), batch_size=128, ema_decay=0.0)
        return _preset(base, overrides)

    @staticmethod
    def sagan(**overrides: Any) -> "Config":
        """Class-conditional ResNet SAGAN: SN on G and D, Wasserstein loss with a drift term, TTUR,
        self-attention at 16x16 in G and D."""
        return _preset({}, overrides)

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
        return _preset(base, overrides)

    @staticmethod
    def from_dict(d: dict[str, Any]) -> "Config":
        """Inverse of dataclasses.asdict (tuples come back from JSON/pickle as lists), for configs of any version
        of the kit (checkpoints, run.json, study timings: see migrate_config); unknown keys are errors."""
        names = {f.name for f in dataclasses.fields(Config)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise GanError(f"unknown config field(s) {unknown}; valid fields: {sorted(names)}")
        return Config(**migrate_config({k: tuple(v) if isinstance(v, list) else v for k, v in d.items()}))

    def with_overrides(self, pairs: list[str]) -> "Config":
        """Apply `key=value` strings (values parsed as Python literals, else kept as strings; a tuple field
        takes one value or a comma-separated list: classes=cat,dog); a key given twice with different values
        is an error rather than the last one silently winning. Settings the new values make ineffective go back
        to their defaults unless given too (see _switch_dependents): loss=hinge on a SAGAN drops its drift."""
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
        given = dataclasses.replace(self, **updates).check_types()
        return Config(**_switch_dependents(dataclasses.asdict(given), set(updates)))

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
        choices = {"dataset": ("auto", *DATASETS), "img_size": IMG_SIZES, "arch": tuple(ARCHS), "cond": tuple(CONDITIONINGS),
                   "spectral_norm": SPECTRAL_NORM, "loss": tuple(LOSSES), "lipschitz": ("none", "clip", "gp"),
                   "optimizer": ("adam", "rmsprop"), "amp": PRECISIONS, "encoder": ENCODERS, "d_pool": ("sum", "mean")}
        for key, allowed in choices.items():
            if getattr(self, key) not in allowed:
                raise GanError(f"config {key}={getattr(self, key)!r} is not one of {allowed}")
        for key in ("z_dim", "g_ch", "d_ch", "n_critic", "n_gen", "batch_size", "iters", "eval_every",
                    "checkpoint_every", "val_size"):
            if getattr(self, key) < 1:
                raise GanError(f"config {key} must be >= 1, got {getattr(self, key)}")
        if self.eval_samples < 2:  # a covariance and an unbiased KID need at least two images
            raise GanError(f"config eval_samples must be >= 2, got {self.eval_samples}")
        if self.compile not in ("off", "cudagraph") and self.compile not in torch.compiler.list_backends(exclude_tags=()):
            raise GanError(f"config compile={self.compile!r} is not 'off', 'cudagraph' or a torch.compile backend: "
                           f"{torch.compiler.list_backends()}")
        if self.compile not in ("off", "cudagraph") and self.lipschitz == "gp":   # AOTAutograd: no double backward
            raise GanError(f"config compile={self.compile!r} cannot train lipschitz='gp': torch.compile does not "
                           f"differentiate the gradient penalty twice; set compile='off' or 'cudagraph'")
        augment_policy(self.diffaug)
        if not 0 <= self.ema_decay < 1:
            raise GanError(f"config ema_decay must be in [0, 1), got {self.ema_decay}")
        if self.loss == "wgan" and self.lipschitz == "none" and self.spectral_norm == "none":
            raise GanError("loss='wgan' leaves the critic unconstrained: set lipschitz='gp' or 'clip', "
                           "or spectral_norm='d' or 'gd' (or choose loss='hinge' or 'bce')")
        if self.cond != "none" and self.num_classes == 0:   # negative: refused below with the other counts
            raise GanError(f"cond={self.cond!r} needs labelled data (num_classes >= 1, got {self.num_classes}); "
                           f"set cond='none' for an unconditional model")
        for key, (neutral, why) in _inert_fields(self).items():
            if getattr(self, key) != neutral:
                raise GanError(f"config {key}={getattr(self, key)!r} has no effect: {why}; "
                               f"set {key}={neutral!r}")
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
        for key in ("num_classes", "ema_start", "seed", "drift", "gp_weight", "cr_weight", "ms_weight",
                    "info_cont"):
            if getattr(self, key) < 0:
                raise GanError(f"config {key} must be >= 0, got {getattr(self, key)}")
        if self.ms_weight and self.batch_size < 2:
            raise GanError(f"ms_weight={self.ms_weight} compares pairs of G's batch: set batch_size >= 2 or "
                           f"ms_weight=0")
        self._validate_latent_models()
        if not all(0 <= b < 1 for b in self.betas):
            raise GanError(f"config betas must both be in [0, 1), got {self.betas}")
        return self

    def _validate_latent_models(self) -> None:
        """InfoGAN codes and BiGAN's encoder: where they exist and what they exclude."""
        if self.info_cat == 1 or self.info_cat < 0:
            raise GanError(f"config info_cat={self.info_cat}: a categorical code needs >= 2 values (or 0 for none)")
        if self.code_dim and self.arch not in LATENT_ARCHS:
            raise GanError(f"InfoGAN codes (info_cat, info_cont) need arch in {LATENT_ARCHS}, not {self.arch!r}: "
                           f"set arch='dcgan' or info_cat=0 info_cont=0")
        if self.info_weight < 0:
            raise GanError(f"info_weight must be >= 0 (got {self.info_weight}); 0 feeds the codes to G without the "
                           f"mutual-information term (InfoGAN's baseline)")
        if self.encoder == "none":
            return
        fix = "or encoder='none'"
        if self.arch not in LATENT_ARCHS:
            raise GanError(f"encoder={self.encoder!r} needs arch in {LATENT_ARCHS}, not {self.arch!r}: set arch='dcgan' {fix}")
        if self.cond != "none":
            raise GanError(f"encoder={self.encoder!r} is unconditional: set cond='none' {fix}")
        if self.code_dim:
            raise GanError(f"encoder={self.encoder!r} and InfoGAN codes are two studies: set info_cat=0 info_cont=0 {fix}")
        if self.lipschitz == "gp":
            raise GanError(f"encoder={self.encoder!r}: the gradient penalty is taken w.r.t. images only, not (x, z) "
                           f"pairs: set lipschitz='none' or 'clip' (or spectral_norm='d') {fix}")


SPECTRAL_NORM = ("none", "d", "gd")          # Config.spectral_norm: which of G and D get spectral norm
ENCODERS = ("none", "bigan")                 # Config.encoder: none, or BiGAN/ALI's encoder E and joint D(x, z)
LATENT_ARCHS = ("dcgan", "resnet")           # architectures that take InfoGAN codes and BiGAN's encoder


def _inert_fields(cfg: Config) -> dict[str, tuple[Any, str]]:
    """Fields that have no effect in cfg's combination of settings: field -> (the only value validate() accepts
    for it then, why it has no effect). Presets and --set put such fields back to that value (_switch_dependents);
    validate() refuses any other."""
    cond = CONDITIONINGS.get(cfg.cond)
    rules = {"drift": (0.0, cfg.loss != "wgan", f"the drift term steadies a Wasserstein critic, not loss={cfg.loss!r}"),
             "betas": (DEFAULTS["betas"], cfg.optimizer != "adam", f"betas are Adam's, not optimizer={cfg.optimizer!r}'s"),
             "clip_value": (DEFAULTS["clip_value"], cfg.lipschitz != "clip",
                            f"weights are clipped only with lipschitz='clip', not {cfg.lipschitz!r}"),
             "gp_weight": (DEFAULTS["gp_weight"], cfg.lipschitz != "gp",
                           f"the gradient penalty is paid only with lipschitz='gp', not {cfg.lipschitz!r}"),
             "acgan_weight": (DEFAULTS["acgan_weight"], cond is not None and not cond.d_classifier,
                              f"cond={cfg.cond!r} gives D no class head (cond='acgan' or 'projection-ac' do)"),
             "d_pool": (DEFAULTS["d_pool"], cfg.arch != "resnet",
                        f"only the resnet D pools its features, not arch={cfg.arch!r}"),
             "info_weight": (DEFAULTS["info_weight"], not cfg.code_dim,
                             "there are no InfoGAN codes (set info_cat or info_cont)")}
    return {key: (neutral, why) for key, (neutral, inert, why) in rules.items() if inert}


def _switch_dependents(values: dict[str, Any], given: set[str]) -> dict[str, Any]:
    """Config field values with every field that has no effect among them (_inert_fields) put back to its
    neutral value, unless it is in `given` (then validate() says why it has no effect): Config.sagan(loss="hinge")
    has no drift, Config.dcgan(optimizer="rmsprop") no Adam betas."""
    inert = _inert_fields(Config(**values))
    return {**values, **{key: neutral for key, (neutral, _) in inert.items() if key not in given}}


def _preset(base: dict[str, Any], overrides: dict[str, Any]) -> Config:
    """A preset's Config: its base settings, the caller's overrides, and the settings they make ineffective put
    back to their neutral values (_switch_dependents)."""
    return Config(**_switch_dependents({**DEFAULTS, **base, **overrides}, set(overrides)))


def migrate_config(values: dict[str, Any]) -> dict[str, Any]:
    """Config field values as written by any version of the kit -> today's (the one place that reads old formats):
    - spectral_norm was a bool (on the command line, "True"/"False"): True -> "gd", False -> "none";
    - lipschitz="sn" meant "the constraint is spectral norm", which is now spectral_norm's job alone: -> "none";
    - before `cond`, num_classes=0 meant unconditional and any other value projection;
    - before validate() refused settings without effect, configs could carry them (a BCE run's drift, an RMSprop
      run's betas): they go to their neutral values. Drift was then added to non-Wasserstein losses too; the
      runs stored in model/ that had it use bce or hinge with drift 1e-3, where it is a negligible term."""
    old_spellings = {("spectral_norm", True): "gd", ("spectral_norm", False): "none", ("spectral_norm", "True"): "gd",
                     ("spectral_norm", "False"): "none", ("lipschitz", "sn"): "none"}
    values = dict(values)
    for (key, old), new in old_spellings.items():
        if key in values and type(values[key]) is type(old) and values[key] == old:
            values[key] = new
    if "cond" not in values:
        values["cond"] = "projection" if values.get("num_classes", DEFAULTS["num_classes"]) else "none"
    return _switch_dependents({**DEFAULTS, **values}, set())


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


DEFAULTS: dict[str, Any] = dataclasses.asdict(Config())   # every field's default, by name

PRESETS: dict[str, Callable[..., Config]] = {"dcgan": Config.dcgan, "sagan": Config.sagan,
                                             "ref_dcgan": Config.reference_dcgan, "ref_sagan": Config.reference_sagan}
