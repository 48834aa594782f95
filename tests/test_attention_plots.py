"""Attention-map helpers and figures: query dependence, regrouping one layer's maps by image, and figures
whose maps, query marks and colour bars can be read in print."""
import pytest
import torch

import gan_helpers as gh
import gankit
from test_plots import TEXT_WIDTH_IN, smallest_print_pt


def maps(n: int, side: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """n random images (n, 3, 32, 32) in [-1, 1] and attention maps (n, side^2, side^2) whose rows sum to 1."""
    g = torch.Generator().manual_seed(seed)
    images = torch.rand(n, 3, 32, 32, generator=g) * 2 - 1
    return images, torch.softmax(4 * torch.randn(n, side ** 2, side ** 2, generator=g), -1)


def colorbars(fig) -> list:
    return [ax for ax in fig.axes if ax.get_label() == "<colorbar>"]


def marks_cover(ax, point: tuple[float, float]) -> bool:
    """Whether a query mark (a rectangle patch) on `ax` covers `point` (row, col in image pixels)."""
    return any(p.get_bbox().contains(point[1], point[0]) for p in ax.patches)


def test_query_dependence_is_0_for_identical_rows_and_1_minus_1_over_n_for_private_one_hot_rows():
    n = 16
    same = torch.softmax(torch.randn(2, 1, n), -1).expand(2, n, n)
    assert gh.query_dependence(same) == pytest.approx(0.0, abs=1e-12)
    assert gh.query_dependence(torch.eye(n).expand(3, n, n)) == pytest.approx(1 - 1 / n)
    half = torch.stack([torch.eye(4)[[0, 0, 0, 0]], torch.eye(4)[[0, 0, 1, 1]]])   # an image of each kind
    # second image: rows are one-hot on 0 or 1, mean row (0.5, 0.5, 0, 0): every row is 0.5 away
    assert gh.query_dependence(half) == pytest.approx(0.25)


def test_by_image_regroups_one_layer_into_rows_of_images():
    images, attn = torch.randn(5, 3, 8, 8), torch.rand(5, 4, 4)
    rows = gh.by_image((images, attn), ["a", "b"], [3, 1])
    assert list(rows) == ["a", "b"]
    assert torch.equal(rows["a"][0], images[3:4]) and torch.equal(rows["b"][1], attn[1:2])


def test_attention_figure_draws_each_query_map_opaque_on_a_shared_row_scale_with_a_labelled_colour_bar():
    import matplotlib
    matplotlib.use("Agg")
    layers = {"G 8x8 attention": maps(2, 8), "G 16x16 attention": maps(2, 16, seed=1)}
    queries = ((4, 4), (4, 28), (28, 4), (16, 16))
    fig = gh.attention_figure(layers, queries, index=1)
    bars = colorbars(fig)
    assert [bar.get_ylabel() for bar in bars] == ["attention weight"] * 2              # one per row
    panels = [ax for ax in fig.axes if ax not in bars]
    assert len(panels) == 2 * (1 + len(queries))                            # per row: the image once, a map per query
    for row, (_, attn) in enumerate(layers.values()):
        image, *heats = panels[row * 5:(row + 1) * 5]
        side = int(attn.shape[-1] ** 0.5)
        scale = 32 // side                                                              # image pixels per map cell
        rows = [attn[1, (q[0] // scale) * side + q[1] // scale].view(side, side) for q in queries]
        for ax, q, expected in zip(heats, queries, rows):
            shown = ax.get_images()[0]
            torch.testing.assert_close(torch.as_tensor(shown.get_array()), expected)
            assert shown.get_alpha() in (None, 1.0)                                    # opaque: nothing washes it out
            assert marks_cover(ax, q) and marks_cover(image, q)
        row_max = max(float(r.max()) for r in rows)                                     # one scale per row
        assert [ax.get_images()[0].get_clim() for ax in heats] == [(0.0, pytest.approx(row_max))] * len(queries)
    assert [t.get_text() for t in panels[0].texts] == ["1", "2", "3", "4"]               # the queries, numbered
    assert [ax.get_ylabel() for ax in panels[::5]] == ["G 8x8\nattention", "G 16x16\nattention"]
    assert smallest_print_pt(fig) >= 7 and min(t.get_fontsize() for ax in panels for t in [ax.title, *ax.texts]) >= 8
    fig.canvas.draw()
    widths_cm = [ax.get_window_extent().width / fig.dpi * TEXT_WIDTH_IN / fig.get_size_inches()[0] * 2.54
                 for ax in panels]
    assert min(widths_cm) >= 2.5                                                        # at print width, 4 queries


def test_plot_attention_and_the_explorer_picture_have_a_colour_bar_and_mark_the_query_on_both_panels():
    import matplotlib
    matplotlib.use("Agg")
    images, attn = maps(1, 8)
    image, heat = gankit.attention_plots.plot_attention(images[0], attn[0], (10.0, 21.0))
    fig = image.figure
    assert [bar.get_ylabel() for bar in colorbars(fig)] == ["attention weight"]
    torch.testing.assert_close(torch.as_tensor(heat.get_images()[0].get_array()), attn[0, 2 * 8 + 5].view(8, 8))
    assert marks_cover(image, (10.0, 21.0)) and marks_cover(heat, (10.0, 21.0))
    assert smallest_print_pt(fig) >= 7
    assert gankit.attention_plots.attention_png(images[0], attn[0], (2, 5), title="G 8x8, sample 0").startswith(b"\x89PNG")
