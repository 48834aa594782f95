"""Attention maps: capture them from any model, readable layer names, figures and the explorer's picture."""
from __future__ import annotations

import math
from typing import Any
import torch
import torch.nn as nn
from torch import Tensor

from .core import GanError
from .device import device_of, eval_mode
from .data import ImageSet, to_float, to_uint8
from .attention import SelfAttention
from .sampling import latents, sample

__all__ = ['attention_layers', 'attention_maps', 'plot_attention', 'readable_layer_names', 'generator_attention', 'discriminator_attention', 'query_dependence', 'by_image', 'attention_figure', 'attention_png']


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


CMAP = "inferno"           # attention maps: black (no weight) to pale yellow (the most), opaque
LABEL_PT = 8               # titles, labels and colour-bar ticks: >= 7 pt when a default-size figure prints 6.3 in wide
PANEL_IN = 1.1             # attention_figure's panel side: 4 queries + the image fit 6.3 in, each panel >= 2.5 cm


def _query_heat(image: Tensor, attn: Tensor, query: tuple[float, float]) -> tuple[Tensor, tuple[int, int], float]:
    """The attention (side, side) of the map cell holding `query` (row, col in image pixels) over all key
    cells, that cell (row, col) and the map's cell size in image pixels. attn (HW, HW) from one layer."""
    side = int(math.isqrt(attn.shape[0]))
    scale = image.shape[-1] / side
    qr, qc = int(query[0] // scale), int(query[1] // scale)             # query in attention-map cells
    return attn[qr * side + qc].view(side, side), (qr, qc), scale


def _mark(ax: Any, cell: tuple[int, int], scale: float, number: int | None = None) -> None:
    """Outline the query's map cell on `ax` (image pixel coordinates) in white edged with black, readable on any
    image and any colour of the map, with the query's number beside it when given."""
    import matplotlib.patheffects as pe
    from matplotlib.patches import Rectangle
    edged = [pe.withStroke(linewidth=3.5, foreground="black")]
    size = max(scale, 3.0)                                               # a 1-pixel cell would vanish
    corner = ((cell[1] + 0.5) * scale - 0.5 - size / 2, (cell[0] + 0.5) * scale - 0.5 - size / 2)
    ax.add_patch(Rectangle(corner, size, size, fill=False, edgecolor="white", linewidth=1.5, path_effects=edged,
                           clip_on=False))                              # a cell at the border stays whole
    if number is not None:                                               # beside the cell, towards the centre
        middle = sum(ax.get_xlim()) / 2                                  # the image is square
        left, top = corner[0] + size / 2 < middle, corner[1] + size / 2 < middle
        ax.text(corner[0] + size + 0.5 if left else corner[0] - 0.5, corner[1] + size + 0.5 if top else corner[1] - 0.5,
                str(number), color="white", fontsize=LABEL_PT, fontweight="bold", ha="left" if left else "right",
                va="top" if top else "bottom", path_effects=edged)


def _show_heat(ax: Any, heat: Tensor, size: int, vmax: float) -> Any:
    """heat (side, side) opaque on `ax` over the image's pixel coordinates (size x size), scale 0 to vmax."""
    return ax.imshow(heat.numpy(), cmap=CMAP, vmin=0.0, vmax=vmax, interpolation="nearest",
                     extent=(-0.5, size - 0.5, size - 0.5, -0.5))


def _colorbar(fig: Any, shown: Any, **where: Any) -> Any:
    """A colour bar for `shown` labelled "attention weight", with 8 pt text and three ticks."""
    from matplotlib.ticker import MaxNLocator
    bar = fig.colorbar(shown, label="attention weight", **where)
    bar.locator = MaxNLocator(3)
    bar.update_ticks()
    bar.ax.tick_params(labelsize=LABEL_PT)
    bar.ax.yaxis.label.set_size(LABEL_PT)
    return bar


def plot_attention(image: Tensor, attn: Tensor, query: tuple[float, float], axes: Any = None,
                   title: str | None = None, colorbar: bool = True, heat_title: str | None = None) -> Any:
    """Image (3, S, S) in [-1, 1] beside the attention of one query over all key positions, drawn opaque (scale
    from 0 to this query's largest weight, with a colour bar labelled "attention weight" when `colorbar`); the
    query (row, col in image pixels) is outlined on both panels. attn (HW, HW) from one layer; `title` replaces
    the image panel's title, `heat_title` the attention panel's (default: the query's cell on the map).
    Returns the two axes."""
    import matplotlib.pyplot as plt
    heat, cell, scale = _query_heat(image, attn, query)
    own = axes is None
    if own:
        _, axes = plt.subplots(1, 2, figsize=(6.3, 3.1))
    axes[0].imshow(to_uint8(image).permute(1, 2, 0).numpy())
    shown = _show_heat(axes[1], heat, image.shape[-1], float(heat.max()))
    for ax in axes:
        _mark(ax, cell, scale)
        ax.axis("off")
    side = heat.shape[-1]
    axes[0].set_title("query" if title is None else title, fontsize=LABEL_PT)
    axes[1].set_title(f"attention of query cell {cell}, {side}x{side} map" if heat_title is None else heat_title,
                      fontsize=LABEL_PT)
    if colorbar:
        _colorbar(axes[1].figure, shown, ax=axes[1], fraction=0.046, pad=0.04)
    if own:
        axes[0].figure.tight_layout()
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
    device = device_of(G)
    maps = attention_maps(G, z.to(device), None if y is None else y.to(device))
    images = sample(G, n, seed=seed)
    return {name: (images, m) for name, m in zip(readable_layer_names("G", maps), maps.values())}


def discriminator_attention(D: nn.Module, real: ImageSet, n: int = 8) -> dict[str, tuple[Tensor, Tensor]]:
    """Per D attention layer, by readable name: (the first n real images (n, 3, S, S), maps (n, HW, HW))."""
    images = to_float(real.x[:n].cpu())
    device = device_of(D)
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
    """Static figure, one row per attention layer (its name at the left): image `index` with the query points
    (row, col in image pixels) outlined and numbered, then each query's attention drawn opaque, then the row's
    colour bar ("attention weight"). The panels of a row share one scale, from 0 to the row's largest weight;
    rows have scales of their own (a 16x16 map spreads its weight over 4 times the cells of an 8x8 one). Default
    queries: at a quarter and three quarters of the side (32x32: (8, 8), (8, 24), (24, 16)). Up to 4 queries
    fit 6.3 in with panels of 2.5 cm or more. `layers` from generator_attention(), discriminator_attention()
    or by_image(). Returns the figure."""
    import matplotlib.pyplot as plt
    if not layers:
        raise GanError("this model has no self-attention layers to show (see g_attn / d_attn)")
    side = next(iter(layers.values()))[0].shape[-1]
    queries = queries or tuple((int(r * side), int(c * side)) for r, c in ((0.25, 0.25), (0.25, 0.75), (0.75, 0.5)))
    cols = len(queries) + 1                                              # the image, then a map per query
    fig = plt.figure(figsize=(0.3 + PANEL_IN * cols + 0.55, PANEL_IN * len(layers) + 0.35))   # + labels, colour bar
    grid = fig.add_gridspec(len(layers), cols + 1, width_ratios=[1] * cols + [0.07])
    for row, (name, (images, attn)) in enumerate(layers.items()):
        image = images[index]
        heats = [_query_heat(image, attn[index], q) for q in queries]
        vmax = max(float(heat.max()) for heat, _, _ in heats)
        axes = [fig.add_subplot(grid[row, c]) for c in range(cols)]
        axes[0].imshow(to_uint8(image).permute(1, 2, 0).numpy())
        for k, (ax, (heat, cell, scale)) in enumerate(zip(axes[1:], heats), start=1):
            shown = _show_heat(ax, heat, image.shape[-1], vmax)
            _mark(axes[0], cell, scale, number=k)
            _mark(ax, cell, scale)
            if row == 0:
                ax.set_title(f"query {k} {queries[k - 1]}", fontsize=LABEL_PT)
        for ax in axes:
            ax.set_xticks([])
            ax.set_yticks([])
        axes[0].set_ylabel(name.replace(" attention", "\nattention"), fontsize=LABEL_PT)
        if row == 0:
            axes[0].set_title("image", fontsize=LABEL_PT)
        # one colour bar for the row: its maps all share `shown`'s scale
        _colorbar(fig, shown, cax=fig.add_subplot(grid[row, cols], label="<colorbar>"))
    fig.tight_layout(pad=0.3, w_pad=0.5, h_pad=0.3)
    return fig


def attention_png(image: Tensor, attn: Tensor, cell: tuple[int, int], title: str | None = None) -> bytes:
    """The explorer's picture as PNG bytes: plot_attention with a colour bar for the query at map cell
    `cell` (row, col). Drawn on a matplotlib Figure of its own, so no notebook backend shows it twice."""
    import io
    from matplotlib.figure import Figure
    scale = image.shape[-1] / math.isqrt(attn.shape[0])
    fig = Figure(figsize=(6.3, 3.1), dpi=140)                          # about the 900 x 440 pixels it always had
    plot_attention(image, attn, ((cell[0] + 0.5) * scale, (cell[1] + 0.5) * scale), fig.subplots(1, 2), title=title)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()
