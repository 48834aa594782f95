"""Why a generator's samples lie closer together than real images (gankit.measures.nearest_neighbour_ratio below 1):
the ratio again with the samples' pixels shifted and scaled to the real images' mean and standard deviation (more
contrast alone then cannot raise it), on images average-pooled 2x2, 4x4 and 8x8 (coarse layout and colour only),
the images' contrast (mean per-image pixel standard deviation) and their power in four bands of spatial frequency
against the real images', and how often a sample's nearest other sample has its label (for real images: their
true labels), with the ratio within each class. N samples (classes in turn, the test-set score's sampling seed)
against N shuffled validation images of the generator's own split; pixels in [0, 1].

    python tools/spread_anatomy.py model/dcgan_best.pt --data-dir data --json model/spread_anatomy_dcgan.json
"""
import argparse
import sys
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import gan_helpers as gh  # noqa: E402
from gankit.data import to_uint8  # noqa: E402
from gankit.measures import EVAL_SEED, contrast_matched, median_nearest_neighbour, nearest_neighbours  # noqa: E402

POOLS = (2, 4, 8)                        # average-pooling sizes of the coarse ratios
BANDS = ((0.0, 0.125), (0.125, 0.25), (0.25, 0.375), (0.375, 0.5 + 1e-9))   # cycles per pixel (Chebyshev radius)


def band_power(x: Tensor) -> Tensor:
    """Mean power of the grey images of x (N, 3, S, S) (each minus its mean) in each of BANDS -> (len(BANDS),)."""
    grey = x.mean(1)
    power = torch.fft.fft2(grey - grey.mean((1, 2), keepdim=True)).abs().pow(2).mean(0)     # (S, S)
    f = torch.fft.fftfreq(x.shape[-1]).abs()
    radius = torch.maximum(f[:, None], f[None, :])
    return torch.stack([power[(radius >= lo) & (radius < hi)].mean() for lo, hi in BANDS])


def anatomy(fake: Tensor, y_fake: Tensor, real: Tensor, y_real: Tensor, num_classes: int) -> dict:
    """The measures of the module docstring for fake and real images (N, 3, S, S) in [0, 1] with labels (N,)."""
    (d_fake, i_fake), (d_real, i_real) = nearest_neighbours(fake), nearest_neighbours(real)
    real_median = float(d_real.median())
    out = {"ratio": float(d_fake.median()) / real_median,
           "ratio_contrast_matched": median_nearest_neighbour(contrast_matched(fake, real)) / real_median,
           "ratio_pooled": {k: median_nearest_neighbour(F.avg_pool2d(fake, k))
                            / median_nearest_neighbour(F.avg_pool2d(real, k)) for k in POOLS},
           "contrast": {"fake": float(fake.flatten(1).std(1).mean()), "real": float(real.flatten(1).std(1).mean())},
           "band_power_ratio": (band_power(fake) / band_power(real)).tolist(),
           "same_label_neighbour": {"fake": float((y_fake[i_fake] == y_fake).float().mean()),
                                    "real": float((y_real[i_real] == y_real).float().mean())}}
    if num_classes:
        within = {}
        for c in range(num_classes):
            a, b = fake[y_fake == c], real[y_real == c]
            k = min(len(a), len(b))
            if k >= 2:
                within[c] = median_nearest_neighbour(a[:k]) / median_nearest_neighbour(b[:k])
        out["ratio_within_class"] = within
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("generator", help="a generator checkpoint (model/<name>_best.pt, a run's best.pt)")
    p.add_argument("--data-dir", default="data")
    p.add_argument("--n", type=int, default=5000, help="generated and validation images (default 5,000)")
    p.add_argument("--json", help="also write the results here")
    args = p.parse_args()
    gh.setup(0, "cpu")
    G = gh.load_generator(args.generator)
    (val,) = gh.load_dataset(G.config, args.data_dir, ("val",))
    if len(val) < args.n:
        raise SystemExit(f"the validation split has {len(val)} images, fewer than --n {args.n}; pass --n {len(val)}")
    shuffled = torch.randperm(len(val), generator=torch.Generator().manual_seed(0))[:args.n]
    k = G.config.cond_classes
    y_fake = torch.arange(args.n) % k if k else torch.zeros(args.n, dtype=torch.int64)
    fake = to_uint8(gh.sample(G, args.n, labels=y_fake if k else None, seed=EVAL_SEED)).float() / 255
    result = anatomy(fake, y_fake, val.x[shuffled].float() / 255, val.y[shuffled], k)
    print(f"nearest-neighbour ratio {result['ratio']:.3f}; contrast matched {result['ratio_contrast_matched']:.3f}; "
          "on pooled images "
          + ", ".join(f"{s}x{s} {r:.3f}" for s, r in result["ratio_pooled"].items()))
    contrast = result["contrast"]
    print(f"contrast (mean per-image std) {contrast['fake']:.4f} generated vs {contrast['real']:.4f} real")
    print("power in frequency bands, generated / real (low to high): "
          + ", ".join(f"{r:.3f}" for r in result["band_power_ratio"]))
    same = result["same_label_neighbour"]
    print(f"nearest other image has the same label: {same['fake']:.3f} of samples, {same['real']:.3f} of real images")
    if "ratio_within_class" in result:
        print("ratio within each class: " + ", ".join(f"{c}: {r:.3f}" for c, r in result["ratio_within_class"].items()))
    if args.json:
        gh.write_json_atomic({"command": "python tools/spread_anatomy.py " + " ".join(sys.argv[1:]), "n": args.n,
                              "sampling_seed": EVAL_SEED, "generator": args.generator, **result}, Path(args.json))
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
