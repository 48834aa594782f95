"""Measures of generated images (registered in METRICS): Frechet distance, KID, Inception Score, class accuracy,
diversity, nearest-neighbour ratio, precision / recall / density / coverage; the one-line summary and the score
table."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Iterator
import numpy as np
import torch
import torch.nn as nn
from torch import Tensor

from .core import GanError
from .registry import METRICS, Metric
from .tables import format_table
from .data import ImageSet, to_uint8
from .sampling import latents, sample
from .features import FeatureNet, NetOutputs, Stats

__all__ = ['DUPLICATE_FRACTION', 'EVAL_SEED', 'IS_SPLITS', 'frechet_distance', 'kernel_inception_distance', 'inception_score', 'class_accuracy', 'diversity', 'nearest_neighbours', 'median_nearest_neighbour', 'contrast_matched', 'nearest_neighbour_ratio', 'PR_K', 'knn_radii', 'precision_recall', 'score', 'ScoreContext', 'measure', 'format_score', 'sample_and_score', 'format_diversity', 'score_table', 'evaluate_generator']


# two samples of a class are near-duplicates when closer in feature space than this fraction of the
# mean distance between two real images of the class (see diversity())
DUPLICATE_FRACTION = 0.25


KID_CHUNK = 10                     # KID subsets whose (m, m) kernel matrices are held at once (10 x 8 MB each)


IS_SPLITS = 10                     # the Inception Score's splits (Salimans et al. 2016; torch-fidelity: 10)


PR_K = 3                           # k of the k-nearest-neighbour balls of precision and recall (Kynkaanniemi et
                                   # al. 2019: 3); density and coverage use the same balls (Naeem et al. 2020 use 5)
EVAL_SEED = 12345                  # the sampling seed of every evaluation (train()'s validation scores, the test set)
PR_CHUNK = 1000                    # rows of a distance matrix held at once ((1000, 10,000) in float64: 80 MB)


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
                              seed: int = 0, device: torch.device | str = "cpu") -> tuple[float, float]:
    """KID (Binkowski 2018): unbiased MMD^2 with kernel (x.y / d + 1)^3, mean and std over random subsets,
    computed in float64 on `device` (the feature network's: on a GPU the kernel matrices take milliseconds), a
    few subsets at a time. When both sets are no larger than `subset_size`, every subset is the whole of both:
    one value, and the std is NaN (no spread to measure) rather than a rounding-error 1e-16."""
    rng = np.random.default_rng(seed)
    m = min(subset_size, len(f1), len(f2))
    if m == len(f1) == len(f2):
        subsets = 1
    d = f1.shape[1]
    picks = [(rng.choice(len(f1), m, replace=False), rng.choice(len(f2), m, replace=False)) for _ in range(subsets)]
    a, b = (torch.as_tensor(np.asarray(f), dtype=torch.float64, device=device) for f in (f1, f2))
    values = []
    for start in range(0, subsets, KID_CHUNK):
        x = a[torch.as_tensor(np.stack([i for i, _ in picks[start:start + KID_CHUNK]]), device=device)]  # (s, m, d)
        y = b[torch.as_tensor(np.stack([j for _, j in picks[start:start + KID_CHUNK]]), device=device)]
        kxx, kyy, kxy = ((p @ q.transpose(1, 2) / d + 1) ** 3 for p, q in ((x, x), (y, y), (x, y)))  # (s, m, m)
        within = sum(k.sum((1, 2)) - k.diagonal(dim1=1, dim2=2).sum(1) for k in (kxx, kyy))
        values.append(within / (m * (m - 1)) - 2 * kxy.mean((1, 2)))
    values = torch.cat(values).cpu().numpy()
    return float(values.mean()), float(values.std()) if len(values) > 1 else math.nan


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


def _unit(images: Tensor) -> Tensor:
    """uint8 images as floats in [0, 1]; float images as they are (in float32)."""
    return images.float() / 255.0 if images.dtype == torch.uint8 else images.float()


def nearest_neighbours(images: Tensor, chunk: int = 500) -> tuple[Tensor, Tensor]:
    """For each of images (N, C, H, W) (uint8, read as values in [0, 1], or float as they are), the Euclidean
    distance to the nearest other image of the set and that image's index: two (N,) tensors."""
    x = _unit(images).flatten(1)
    distances, indices = [], []
    for i in range(0, len(x), chunk):
        d = torch.cdist(x[i:i + chunk], x)                              # (chunk, N)
        d[torch.arange(len(d)), torch.arange(i, i + len(d))] = float("inf")   # not itself
        nearest = d.min(1)
        distances.append(nearest.values)
        indices.append(nearest.indices)
    return torch.cat(distances), torch.cat(indices)


def median_nearest_neighbour(images: Tensor, chunk: int = 500) -> float:
    """Median over images (N, 3, H, W) of the pixel-space Euclidean distance (values in [0, 1]) to the
    nearest other image of the set: small when a generator repeats itself."""
    return float(nearest_neighbours(images, chunk)[0].median())


def contrast_matched(fake: Tensor, real: Tensor) -> Tensor:
    """fake images (uint8, or floats in [0, 1]) as floats shifted and scaled so that their pixels' mean and standard
    deviation over the set equal those of `real`'s (the same kinds)."""
    x, y = _unit(fake), _unit(real)
    return (x - x.mean()) / x.std() * y.std() + y.mean()


def nearest_neighbour_ratio(fake: Tensor, real: Tensor, match_contrast: bool = False) -> float:
    """median_nearest_neighbour of generated images over that of as many real ones (uint8, or floats in [0, 1]) (1:
    as spread out as real images; below 1: samples closer to each other than real images are). `match_contrast`: the
    generated images are first shifted and scaled so that their pixels' mean and standard deviation over the set
    equal the real images' (contrast_matched; then more contrast alone cannot raise the ratio: pixel distances grow
    with it)."""
    n = min(len(fake), len(real))
    x = contrast_matched(fake[:n], real[:n]) if match_contrast else fake[:n]
    return median_nearest_neighbour(x) / median_nearest_neighbour(real[:n])


def _distance_chunks(x: Tensor, y: Tensor, chunk: int) -> Iterator[tuple[slice, Tensor]]:
    """(rows, Euclidean distances (c, M)) for consecutive chunks of c <= `chunk` rows of x (N, D) against all of
    y (M, D)."""
    for start in range(0, len(x), chunk):
        rows = slice(start, start + chunk)
        yield rows, torch.cdist(x[rows], y)


def knn_radii(x: Tensor, k: int = PR_K, chunk: int = PR_CHUNK) -> Tensor:
    """Distance from each row of x (N, D) to its k-th nearest other row, (N,): the radii of the balls whose union
    estimates the manifold of x. A row's distance to itself (0) is its smallest, so this is the (k+1)-th smallest."""
    return torch.cat([d.kthvalue(k + 1, dim=1).values for _, d in _distance_chunks(x, x, chunk)])


def precision_recall(real: np.ndarray, fake: np.ndarray, k: int = PR_K, device: torch.device | str = "cpu",
                     chunk: int = PR_CHUNK) -> dict[str, float]:
    """Precision and recall (Kynkaanniemi et al. 2019) and density and coverage (Naeem et al. 2020) of generated
    features `fake` (N, D) against real features `real` (M, D), with balls of radius knn_radii(k) round each
    point (a point on a ball's edge is inside it, as in the paper's code; prdc counts it outside):
      precision: fraction of generated points inside some real ball (realism; 1 = every sample looks real),
      recall:    fraction of real points inside some generated ball (how much of the data G covers),
      density:   real balls holding a generated point, averaged over generated points and divided by k
                 (1 for a generator that samples the data's distribution; above 1 where samples crowd),
      coverage:  fraction of real balls holding at least one generated point (recall robust to outliers).
    Distances in float64 on `device`, `chunk` rows at a time (memory O(chunk * max(N, M))); they are exact to
    about 1e-7 of a feature unit (torch.cdist's |x|^2 + |y|^2 - 2 x.y), so only a point that close to a ball's
    edge could be counted differently by an exact computation."""
    if min(len(real), len(fake)) <= k:
        raise GanError(f"precision and recall with k = {k} need more than {k} real and generated images, got "
                       f"{len(real)} real and {len(fake)} generated: score more images (n / --n)")
    r, f = (torch.as_tensor(np.ascontiguousarray(a), dtype=torch.float64, device=device) for a in (real, fake))
    real_radii, fake_radii = knn_radii(r, k, chunk), knn_radii(f, k, chunk)              # (M,), (N,)
    balls_holding = torch.empty(len(f), dtype=torch.int64, device=device)                # (N,) real balls per sample
    recalled = torch.zeros(len(r), dtype=torch.bool, device=device)                      # (M,) in a generated ball
    nearest = torch.full((len(r),), math.inf, dtype=torch.float64, device=device)        # (M,) nearest sample
    for rows, d in _distance_chunks(f, r, chunk):                                        # d (c, M)
        balls_holding[rows] = (d <= real_radii).sum(1)
        recalled |= (d <= fake_radii[rows, None]).any(0)
        nearest = torch.minimum(nearest, d.min(0).values)
    return {"precision": (balls_holding > 0).double().mean().item(), "recall": recalled.double().mean().item(),
            "density": balls_holding.double().mean().item() / k,
            "coverage": (nearest <= real_radii).double().mean().item(), "k": k}


def score(fake: Stats, real: Stats, label: str, device: torch.device | str = "cpu") -> dict[str, Any]:
    """Frechet distance and KID (on `device`) between generated and real statistics, with the sample counts."""
    kid, kid_std = kernel_inception_distance(fake.features, real.features, device=device)
    return {"fd": frechet_distance(fake.mu, fake.sigma, real.mu, real.sigma), "kid": kid, "kid_std": kid_std,
            "n_fake": fake.n, "n_real": real.n, "metric": label}


@dataclass
class ScoreContext:
    """What every measure of METRICS sees when a generator is scored."""
    images: Tensor                 # generated images, uint8 (n, 3, S, S)
    labels: Tensor | None          # their class labels (n,), None for an unconditional G
    out: NetOutputs                # the feature network's outputs on them
    real: Stats                    # statistics of the real images scored against (validation or test split)
    net: FeatureNet
    num_classes: int               # classes G is conditioned on (0: none)
    test: ImageSet | None = None   # the real test images, for the test-set-only measures (None in validation)
    train_features: np.ndarray | None = None   # features (n, D) of as many training images as samples: the
                                               # real-vs-real precision and recall (test-set scores only)

    @property
    def device(self) -> torch.device:
        """The feature network's device, where the measures on features run."""
        return next(iter(self.net.module.parameters()), torch.empty(0)).device


def _fd_kid(ctx: ScoreContext) -> dict[str, Any]:
    return score(Stats.of(ctx.out.features), ctx.real, ctx.net.label, ctx.device)


def _fd_kid_text(s: dict[str, Any]) -> str:
    kid_name = "KID" if s["metric"] == "FID" else "KID (proxy)"
    spread = f" ± {s['kid_std']:.2g}" if math.isfinite(s["kid_std"]) else " (one subset, no spread)"
    return (f"{s['metric']} {s['fd']:.4g}, {kid_name} {s['kid']:.4g}{spread} "
            f"({s['n_fake']} generated vs {s['n_real']} real)")


def _inception_score(ctx: ScoreContext) -> dict[str, Any]:
    """IS when the net gives logits and there are at least IS_SPLITS samples (one per split)."""
    if ctx.out.is_logits is None or len(ctx.out.is_logits) < IS_SPLITS:
        return {}
    mean, std = inception_score(ctx.out.is_logits)
    return {"is": mean, "is_std": std, "is_metric": ctx.net.is_label}


def _class_accuracy(ctx: ScoreContext) -> dict[str, Any]:
    """Class accuracy when the net has a classifier for the model's classes and the samples have labels (the kit's
    CIFAR-10 classifier says nothing about a folder of 2 classes or a relabelled CIFAR-10 subset); in a test-set
    score also the classifier's accuracy on the test images themselves ("real_class_acc")."""
    logits, labels = ctx.out.class_logits, ctx.labels
    if logits is None or labels is None or logits.shape[1] != ctx.num_classes:
        return {}
    acc = class_accuracy(logits, labels.numpy(), logits.shape[1])
    result = dict(class_acc=acc["overall"], class_acc_per_class=acc["per_class"], class_metric=ctx.net.class_label)
    if ctx.test is not None:
        real = class_accuracy(ctx.net.class_logits(ctx.test.x), ctx.test.y, len(ctx.test.classes))
        result["real_class_acc"] = real["overall"]
    return result


def _class_accuracy_text(s: dict[str, Any]) -> str:
    real = f" (real test images {s['real_class_acc']:.3f})" if "real_class_acc" in s else ""
    return f"{s['class_metric']} {s['class_acc']:.3f}{real}"


def _diversity(ctx: ScoreContext) -> dict[str, Any]:
    """Test-set scores only: diversity() of the samples next to the test images'."""
    if ctx.test is None:
        return {}
    return {"diversity": diversity(ctx.out.features, None if ctx.labels is None else ctx.labels.numpy(),
                                   ctx.real.features, ctx.test.y.numpy())}


def _nearest_neighbours(ctx: ScoreContext) -> dict[str, Any]:
    """Test-set scores only: nearest_neighbour_ratio() against as many test images (shuffled: the test set is
    sorted by class)."""
    if ctx.test is None:
        return {}
    shuffled = torch.randperm(len(ctx.test), generator=torch.Generator().manual_seed(0))
    return {"nn_ratio": nearest_neighbour_ratio(ctx.images, ctx.test.x[shuffled[:len(ctx.images)]])}


def _precision_recall(ctx: ScoreContext) -> dict[str, Any]:
    """Test-set scores only (validation scores stay cheap): precision_recall() of the samples against the test
    images ("prdc") and, given training-image features, of those against the test images ("real_prdc": what a
    generator sampling the data's distribution would score with as many images)."""
    if ctx.test is None:
        return {}
    space = "Inception features" if ctx.net.is_inception else "proxy features"
    result = {"prdc": {**precision_recall(ctx.real.features, ctx.out.features, device=ctx.device), "features": space}}
    if ctx.train_features is not None:
        result["real_prdc"] = precision_recall(ctx.real.features, ctx.train_features, device=ctx.device)
    return result


def _prdc_values(p: dict[str, float]) -> str:
    return ", ".join(f"{key} {p[key]:.3f}" for key in ("precision", "recall", "density", "coverage"))


def _prdc_text(s: dict[str, Any]) -> str:
    real = f"; training images: {_prdc_values(s['real_prdc'])}" if "real_prdc" in s else ""
    return f"{_prdc_values(s['prdc'])} (k = {s['prdc']['k']}, {s['prdc']['features']}{real})"


def _when(key: str, text: Callable[[dict[str, Any]], str]) -> Callable[[dict[str, Any]], str | None]:
    return lambda s: text(s) if key in s else None


# In the order scores list them; format_score() joins the texts, score_table() the columns
METRICS.add("fd_kid", Metric(_fd_kid, _fd_kid_text, column=(lambda first: first["metric"], lambda r: f"{r['fd']:.4g}")))
METRICS.add("kid", Metric(lambda ctx: {}, lambda s: None,   # computed with the FD (one pass over the features)
                          column=(lambda first: "KID", lambda r: f"{r['kid']:.4g} ± {r['kid_std']:.2g}")))
METRICS.add("is", Metric(_inception_score, _when("is", lambda s: f"{s['is_metric']} {s['is']:.4g} ± {s['is_std']:.2g}"),
                         column=(lambda first: first.get("is_metric", "IS"),
                                 lambda r: f"{r['is']:.3f} ± {r['is_std']:.2g}" if "is" in r else "-")))
METRICS.add("class_acc", Metric(_class_accuracy, _when("class_acc", _class_accuracy_text), column=(
    lambda first: first.get("class_metric", "class accuracy"),
    lambda r: f"{r['class_acc']:.3f} (real {r.get('real_class_acc', float('nan')):.3f})" if "class_acc" in r else "-")))
METRICS.add("diversity", Metric(_diversity, lambda s: None, column=(   # its own line: format_diversity()
    lambda first: "near-duplicate pairs",
    lambda r: f"{r['diversity']['dup_fake']:.4f} (real {r['diversity']['dup_real']:.4f})" if r.get("diversity") else "-")))
METRICS.add("nn_ratio", Metric(_nearest_neighbours, lambda s: None, column=(
    lambda first: "nearest-neighbour ratio", lambda r: f"{r['nn_ratio']:.3f}" if "nn_ratio" in r else "-")))
METRICS.add("prdc", Metric(_precision_recall, _when("prdc", _prdc_text), column=(
    lambda first: f"precision / recall ({first['prdc']['features']})" if "prdc" in first else "precision / recall",
    lambda r: f"{r['prdc']['precision']:.3f} / {r['prdc']['recall']:.3f}" if "prdc" in r else "-")))


def measure(ctx: ScoreContext) -> dict[str, Any]:
    """Every measure of METRICS that applies to ctx, in their order."""
    return {key: value for metric in METRICS.values() for key, value in metric.compute(ctx).items()}


def format_score(s: dict[str, Any]) -> str:
    """One line naming each metric and the sample counts, e.g. 'FID 23.41, KID 0.02 ± 0.001 (10000
    generated vs 10000 real), IS 6.1 ± 0.1, class accuracy (proxy: ...) 0.366 (real test images 0.859)'."""
    return ", ".join(t for t in (metric.text(s) for metric in METRICS.values()) if t is not None)


def sample_and_score(G: nn.Module, real: Stats, net: FeatureNet, n: int, seed: int, test: ImageSet | None = None,
                     train_features: np.ndarray | None = None) -> dict[str, Any]:
    """measure() of n images sampled from G with `seed` against `real`; with the test images `test`, the
    test-set-only measures too (and, given features (n, D) of training images, their real-vs-real values)."""
    _, labels = latents(G, n, seed=seed)
    images = to_uint8(sample(G, n, seed=seed))
    return measure(ScoreContext(images, labels, net.outputs(images), real, net, G.config.cond_classes, test,
                                train_features))


def format_diversity(s: dict[str, Any]) -> str:
    """One line from test_set_score's diversity and nearest-neighbour entries."""
    d = s["diversity"]
    return (f"near-duplicate pairs {d['dup_fake']:.4f} (real test images {d['dup_real']:.4f}), mean pairwise "
            f"feature distance {d['dist_fake']:.4g} (real {d['dist_real']:.4g}), per class; median "
            f"nearest-neighbour distance in pixels {s['nn_ratio']:.3f} x real test images'")


def score_table(results: dict[str, dict[str, Any]], fmt: str = "markdown") -> str:
    """Table of test_set_score results by model name, one column per METRICS entry. Markdown ends with a line
    giving the sample counts; LaTeX (fmt="latex") leaves them to the caption."""
    first = next(iter(results.values()))
    head = ["model", *(metric.column[0](first) for metric in METRICS.values())]
    rows = [[name, *(metric.column[1](r) for metric in METRICS.values())] for name, r in results.items()]
    if fmt == "latex":
        return format_table(head, rows, "latex")
    return (format_table(head, rows, fmt)
            + f"\n\n{first['n_fake']} generated vs {first['n_real']} real test images per model.")


def evaluate_generator(G: nn.Module, real: Stats, net: FeatureNet, n: int, seed: int = EVAL_SEED) -> dict[str, Any]:
    """Score `n` images sampled from G (a fixed seed, so every evaluation sees the same z and labels):
    Frechet distance and KID, and from the same forward pass IS and class accuracy where available."""
    return sample_and_score(G, real, net, n, seed)
