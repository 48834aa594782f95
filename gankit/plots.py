"""Figures: sample grids, class rows, interpolations, snapshots over training, loss and metric curves."""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Callable
import numpy as np
import torch
import torch.nn as nn
from torch import Tensor

from .core import GanError, SELECTION_KEY
from .tables import format_table
from .sampling import interpolate_classes, interpolate_latents, reconstruct, sample, traversal
from .images import class_names, image_grid
from .training import best_eval

__all__ = ['show_grid', 'class_rows', 'show_class_rows', 'interpolation_figure', 'traversal_figure', 'reconstruction_figure', 'snapshots', 'snapshot_strip', 'legend_below', 'plot_losses', 'plot_scores', 'log_y', 'metric_label', 'plot_metric', 'comparison_table', 'live_metric_plot']


def show_grid(images: Tensor, nrow: int = 8, title: str = "", ax: Any = None) -> Any:
    """Draw `image_grid(images, nrow)` on `ax` (a new figure when None); returns the axes."""
    import matplotlib.pyplot as plt
    if ax is None:
        _, ax = plt.subplots(figsize=(nrow, math.ceil(len(images) / nrow)))
    ax.imshow(image_grid(images, nrow), interpolation="nearest")
    ax.set_title(title)
    ax.axis("off")
    return ax


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


def traversal_figure(G: nn.Module, cat_values: list[int] | None = None, cont_index: int | None = 0, steps: int = 8,
                     seed: int = 0, title: str = "") -> Any:
    """InfoGAN's traversal() as one grid: a row per value of the categorical code (labelled), a column per step
    of continuous code `cont_index` from -1 to 1 (or per seed with cont_index=None). Returns the axes."""
    cfg = G.config
    cat_values = list(range(cfg.info_cat)) if cat_values is None else list(cat_values)
    cont_index = cont_index if cfg.info_cont else None
    images = traversal(G, cat_values, cont_index, steps, seed)
    ax = show_grid(images, steps, title or (f"columns: continuous code {cont_index} from -1 to 1" if cont_index
                                            is not None else f"columns: seeds {seed}..{seed + steps - 1}"))
    ax.axis("on")
    size, pad = images.shape[-1], 2                                     # image_grid's padding
    ax.set_yticks([pad + r * (size + pad) + size / 2 for r in range(len(cat_values))],
                  [f"code {c}" for c in cat_values])
    ax.set_xticks([])
    ax.tick_params(length=0)
    return ax


def reconstruction_figure(G: nn.Module, images: Tensor, title: str = "images (odd rows) and G(E(x)) (even rows)") -> Any:
    """BiGAN: images (N, 3, S, S) in [-1, 1] and their reconstructions G(E(x)) in alternating rows of 8."""
    rec, k = reconstruct(G, images), min(8, len(images))
    rows = [part for i in range(0, len(images) - len(images) % k, k) for part in (images[i:i + k], rec[i:i + k])]
    return show_grid(torch.cat(rows), k, title)


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


def _smooth(values: list[float], window: int) -> np.ndarray:
    """Trailing moving average over `window` values, the same length as `values` (the first points
    average what there is), so even a run shorter than the window draws its whole curve."""
    v = np.asarray(values, dtype=np.float64)
    sums = np.cumsum(np.concatenate([[0.0], v]))
    ends = np.arange(1, len(v) + 1)
    counts = np.minimum(ends, max(1, window))                           # value i averages v[i - count + 1 : i + 1]
    return (sums[ends] - sums[ends - counts]) / counts


LEGEND_PT = 8   # legend text: still >= 7 pt when a default-size figure (<= 7.2 in wide) prints 6.3 in wide


def legend_below(ax: Any, ncol: int = 1, fontsize: float = LEGEND_PT) -> Any:
    """(Re)draw ax's legend centred under its x label, outside the data area, so it covers no curve or band.
    It hangs a fixed number of points below the axes (the height of the tick labels and the x label), so it
    stays clear of them when the figure is resized; tight_layout() makes room for it. Returns the legend."""
    from matplotlib.transforms import ScaledTranslation
    tick = ax.xaxis.get_major_ticks()[0]
    label_pt = tick.get_tick_padding() + 1.2 * (tick.label1.get_size() + ax.xaxis.label.get_size()) + ax.xaxis.labelpad
    below = ScaledTranslation(0, -(label_pt + 4) / 72, ax.figure.dpi_scale_trans)
    return ax.legend(loc="upper center", bbox_to_anchor=(0.5, 0), bbox_transform=ax.transAxes + below, ncol=ncol,
                     fontsize=fontsize, frameon=False)


def plot_losses(history: dict[str, list], window: int = 100, title: str = "") -> Any:
    """Two panels: D and G losses, and mean D logits on real (D(x)) and generated (D(G(z))) images,
    smoothed with a trailing moving average over `window` iterations. Where the evaluations logged
    validation_losses(), their points are drawn on top: D's loss and mean logit on held-out validation
    images (squares) and on as many training images (circles), so a gap between the two shows D
    memorising its training set. Legends under the panels. Returns the figure."""
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, 2, figsize=(7.2, 4.4))
    it = np.asarray(history["iter"])
    evals = [e for e in history["eval"] if "d_loss_val" in e]
    panels = ((axes[0], {"d_loss": "D", "g_loss": "G"}, "loss",
               {"d_loss_train": ("D, training images", "o"), "d_loss_val": ("D, validation images", "s")}),
              (axes[1], {"d_real": "D(x)", "d_fake": "D(G(z))"}, "mean D logit",
               {"d_real_train": ("D(x), training images", "o"), "d_real_val": ("D(x), validation images", "s"),
                "d_fake_eval": ("D(G(z)), samples of the scored G", "^")}))
    for ax, names, ylabel, points in panels:
        for key, name in names.items():
            ax.plot(it, _smooth(history[key], window), label=name, marker="." if len(it) < 50 else None)
        for key, (name, marker) in points.items():
            if evals:
                ax.plot([e["iter"] for e in evals], [e[key] for e in evals], marker=marker, linestyle=":",
                        markerfacecolor="none", label=f"{name} (eval)")
        ax.set_xlabel("iteration")
        ax.set_ylabel(ylabel)
        legend_below(ax)
    fig.suptitle(title or f"training curves (moving average over {window} iterations)", fontsize=10, wrap=True)
    fig.tight_layout()
    return fig


def plot_scores(histories: dict[str, dict[str, list]]) -> Any:
    """IS and class accuracy of the generated samples at every evaluation, for each named run (panels
    only for what was logged; the metric names say whether they are proxies), legends under the panels.
    Returns the figure."""
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, 2, figsize=(7.2, 3.4))
    for ax, key, what in ((axes[0], "is", "is_metric"), (axes[1], "class_acc", "class_metric")):
        names = set()
        for name, history in histories.items():
            evals = [e for e in history["eval"] if key in e]
            if evals:
                ax.plot([e["iter"] for e in evals], [e[key] for e in evals], marker=".", label=name)
                names.add(evals[-1][what])
        ax.set_xlabel("iteration")
        ax.set_ylabel(" / ".join(sorted(_short_name(n) for n in names)) or f"{key}: not logged")
        if names:
            legend_below(ax, ncol=2)
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


def _short_name(metric: str) -> str:
    """A metric's name without the proxy network's name: "FD (proxy: cifar10_features features)" -> "FD (proxy)"."""
    name = metric.split(" (")[0]
    return f"{name} (proxy)" if "proxy" in metric else name


def _count(n: int) -> str:
    """A sample count, short: 5000 -> "5k", 1500 -> "1.5k", 40 -> "40", 1234 -> "1,234"."""
    return f"{n / 1000:g}k" if n >= 1000 and n % 100 == 0 else f"{n:,}"


def metric_label(metric: str, n_fake: int, n_real: int) -> str:
    """A one-line axis label for a validation metric: its short name and the sample counts (generated vs real),
    e.g. "FD (proxy), 2k vs 5k" or "FID, 10k vs 10k"; the figure's caption names the proxy network."""
    return f"{_short_name(metric)}, {_count(n_fake)} vs {_count(n_real)}"


def plot_metric(histories: dict[str, dict[str, list]], ax: Any = None) -> Any:
    """Validation Frechet distance vs iteration for each named run, its best point marked and its value in
    the run's legend label ("name (best ...)"); the legend under the axes (on a given `ax`, call the figure's
    tight_layout() after drawing to make room for it). Returns the axes."""
    import matplotlib.pyplot as plt
    own = ax is None
    if own:
        _, ax = plt.subplots(figsize=(6.3, 4))
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
    legend_below(ax, ncol=2)
    if own:
        ax.figure.tight_layout()
    return ax


def comparison_table(histories: dict[str, dict[str, list]], upto: int | None = None) -> str:
    """Markdown table of each run's best validation metric among evaluations at iterations <= `upto`
    (all when None), so runs are compared at the same training budget."""
    rows = []
    for name, history in histories.items():
        evals = [e for e in history["eval"] if upto is None or e["iter"] <= upto]
        best = min(evals, key=lambda e: e[SELECTION_KEY])
        rows.append([name, f"{best['metric']} {best['fd']:.4g}", str(best["iter"]),
                     f"{best['kid']:.4g} ± {best['kid_std']:.2g}", f"{best['n_fake']} vs {best['n_real']}"])
    return format_table(["run", "best validation metric", "at iteration", "KID", "samples (generated vs real)"], rows)


def live_metric_plot(name: str = "run") -> Callable[[dict[str, list]], None]:
    """An `on_eval` callback for train(): redraws the validation curve in place in a notebook."""
    import matplotlib.pyplot as plt
    from IPython.display import display
    handle = display({"text/plain": ""}, raw=True, display_id=True)

    def update(history: dict[str, list]) -> None:
        fig, ax = plt.subplots(figsize=(6.3, 4))
        plot_metric({name: history}, ax=ax)
        fig.tight_layout()
        handle.update(fig)
        plt.close(fig)
    return update
