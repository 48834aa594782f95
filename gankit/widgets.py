"""ipywidgets (7.7 and 8): the snapshot slider and the attention-map explorer."""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any
import torch.nn as nn

from .core import GanError
from .data import ImageSet
from .plots import snapshots
from .attention_plots import attention_png, discriminator_attention, generator_attention

__all__ = ['snapshot_slider', 'attention_explorer']


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
