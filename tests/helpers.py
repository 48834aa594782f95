"""Helpers several test files share (imported as `from helpers import ...`: pytest puts tests/ on the path)."""
import copy
import shutil
from pathlib import Path

import numpy as np
import torch

import gan_helpers as gh
import gankit
from gan_helpers import Config

K, Z = 3, 8                       # classes and latent size of the tiny models
PRESETS = {"dcgan": Config.dcgan, "resnet": Config.sagan}


def tiny(name: str = "sagan", **overrides) -> gh.Config:
    """The preset `name` ("sagan" or "dcgan") at test size: width 16, batch 8, 4 iterations, evaluated every 2."""
    base = dict(g_ch=16, d_ch=16, batch_size=8, iters=4, eval_every=2, eval_samples=40, checkpoint_every=2,
                ema_start=1)
    preset = gh.Config.dcgan if name == "dcgan" else gh.Config.sagan
    return preset(**{**base, **overrides})


def tiny_cfg(arch="dcgan", cond="projection", img_size=32, **overrides) -> Config:
    """A tiny, unconstrained-by-attention config of `arch`: BCE, no spectral norm unless overridden."""
    base = dict(arch=arch, cond=cond, img_size=img_size, num_classes=K, z_dim=Z, g_ch=4, d_ch=4, g_attn=(),
                d_attn=(), batch_size=6, spectral_norm="none", loss="bce", drift=0.0, ema_decay=0.0)
    return Config(**{**base, **overrides})


def small_cfg(arch="resnet", **overrides):
    """The arch's preset (dcgan: BCE, no SN; resnet: SAGAN) at test-sized widths."""
    return PRESETS[arch](**{"z_dim": Z, "g_ch": 16, "d_ch": 16, "batch_size": 8, **overrides})


def one_step(cfg, G, D, real_batch):
    opt_g, opt_d = gh.make_optimizers(cfg, G, D)
    return gh.train_step(cfg, G, D, None, opt_g, opt_d, real_batch, 0)


def labels(n, k):
    return torch.full((n,), k, dtype=torch.int64)


def numpy_is(logits: np.ndarray, splits: int) -> tuple[float, float]:
    """The original TF code's inception_score() (improved-gan), in NumPy on softmax predictions."""
    preds = np.exp(logits - logits.max(1, keepdims=True))
    preds /= preds.sum(1, keepdims=True)
    scores = []
    for i in range(splits):
        part = preds[i * len(preds) // splits:(i + 1) * len(preds) // splits]
        kl = part * (np.log(part) - np.log(part.mean(0, keepdims=True)))
        scores.append(np.exp(kl.sum(1).mean()))
    return float(np.mean(scores)), float(np.std(scores))


def write_image_tree(root, images: gh.ImageSet) -> None:
    """images as root/{train,test}/<class>/<i>.png, the whole set in each part (an image-folder dataset)."""
    for split in ("train", "test"):
        for c, name in enumerate(images.classes):
            sel = images.y == c
            gh.save_pngs(gh.to_float(images.x[sel]), root / split / name, [str(i) for i in range(int(sel.sum()))])


def write_folder(root: Path, n: int, size: int, classes=("cat", "dog"), seed: int = 0) -> None:
    """n synthetic images as root/<class>/NNN.png (no train/test split), `size` pixels."""
    imgs = gh.synthetic_images(n, num_classes=len(classes), seed=seed, size=size)
    for c, name in enumerate(classes):
        picked = imgs.x[imgs.y == c]
        gh.save_pngs(gh.to_float(picked), root / name, [f"{i:03d}" for i in range(len(picked))])


def two_class_folder_and_features(tmp: Path) -> tuple[Path, Path]:
    """48 synthetic 32x32 images as tmp/folder/{cat,dog}/NNN.png and a random TorchScript feature network at
    tmp/features.pt: what `train --data-dir ... --feature-net ...` needs offline."""
    data, net = tmp / "folder", tmp / "features.pt"
    write_folder(data, 48, 32)
    with gh.warnings_ignored():
        torch.jit.script(gh.RandomFeatures()).save(str(net))
    return data, net


def step_and_its_draws(cond: str, **overrides):
    """One train_step of a tiny DCGAN (acgan_weight 0.7 where D has a class head) on six fixed real images, and
    what a hand computation needs: G and D before the step (G0, D0), D after it, the real batch and labels, the
    step's own draws (fake labels, then z, replayed from the same seed) and the step's logged losses."""
    cfg = tiny_cfg("dcgan", cond, acgan_weight=0.7 if gankit.registry.CONDITIONINGS[cond].d_classifier else 1.0,
                   **overrides)
    gh.setup(0)
    G, D = gh.build_models(cfg)
    G0, D0 = copy.deepcopy(G), copy.deepcopy(D)
    real, y_real = gh.to_float(gh.synthetic_images(6, num_classes=K).x), torch.tensor([0, 1, 2, 2, 1, 0])
    gh.setup(5)
    out = one_step(cfg, G, D, lambda: (real, y_real))
    gh.setup(5)                                              # the step's own draws: fake labels, then z
    y_fake = torch.randint(K, (6,))
    z = torch.randn(6, Z)
    return G0, D0, D, real, y_real, y_fake, z, out


def copy_kit(dest: Path) -> None:
    """gan_helpers.py and the gankit package into the folder `dest` (a repository copy of tests that must not
    write into the real one)."""
    root = Path(__file__).resolve().parents[1]
    dest.mkdir(parents=True, exist_ok=True)
    shutil.copy(root / "gan_helpers.py", dest)
    shutil.copytree(root / "gankit", dest / "gankit", ignore=shutil.ignore_patterns("__pycache__"))
