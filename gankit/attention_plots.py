"""Attention maps: capture them from any model, readable layer names, figures and the explorer's picture."""
from __future__ import annotations

import math
from typing import Any
import torch
import torch.nn as nn
import torch.nn.functional as F
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
