"""Plots and the comparison table."""
import pytest

import gan_helpers as gh
import gankit

TEXT_WIDTH_IN = 6.3        # the report's text width: figures print at this width


def smallest_print_pt(fig) -> float:
    """The smallest visible text of `fig` in points once the whole figure is scaled to TEXT_WIDTH_IN."""
    import matplotlib.text
    sizes = [t.get_fontsize() for t in fig.findobj(matplotlib.text.Text) if t.get_visible() and t.get_text().strip()]
    return min(sizes) * TEXT_WIDTH_IN / fig.get_size_inches()[0]


def assert_legends_outside(fig) -> None:
    """Every legend of `fig` is whole inside the figure, off its axes' data area and off the x label; 8 pt or more."""
    fig.canvas.draw()
    legends = [(ax, ax.get_legend()) for ax in fig.axes if ax.get_legend() is not None]
    assert legends
    for ax, legend in legends:
        box = legend.get_window_extent()
        assert not box.overlaps(ax.get_window_extent())
        assert not box.overlaps(ax.xaxis.label.get_window_extent())
        assert fig.bbox.x0 <= box.x0 and box.x1 <= fig.bbox.x1 and fig.bbox.y0 <= box.y0 and box.y1 <= fig.bbox.y1
        assert min(t.get_fontsize() for t in legend.get_texts()) >= 8
    assert smallest_print_pt(fig) >= 7


def test_comparison_table_respects_the_budget():
    entry = lambda it, fd: {"iter": it, "fd": fd, "kid": 0.5, "kid_std": 0.01, "n_fake": 10, "n_real": 20,
                            "metric": "FID"}
    history = {"eval": [entry(0, 9.0), entry(100, 4.0), entry(200, 1.0)]}
    table = gankit.plots.comparison_table({"a": history}, upto=150).splitlines()
    assert table[2] == "| a | FID 4 | 100 | 0.5 ± 0.01 | 10 vs 20 |"
    assert "| a | FID 1 | 200 |" in gankit.plots.comparison_table({"a": history})


def test_scores_plot_and_a_run_shorter_than_the_window_draws_its_curves(short_run):
    import matplotlib
    matplotlib.use("Agg")
    _, _, history, _, _ = short_run
    fig = gh.plot_losses(history, window=100)
    lines = {line.get_label(): len(line.get_xdata()) for line in fig.axes[0].lines}
    assert lines["D"] == lines["G"] == 4                          # every iteration, though 4 < 100
    assert lines["D, validation images (eval)"] == 3
    fig = gh.plot_scores({"run": history})
    assert [len(ax.lines[0].get_xdata()) for ax in fig.axes] == [3, 3]


def test_curve_legends_sit_outside_the_data_and_print_legibly(short_run):
    import matplotlib
    matplotlib.use("Agg")
    _, _, history, _, _ = short_run
    assert_legends_outside(gh.plot_losses(history, window=2))
    assert_legends_outside(gh.plot_scores({"run": history, "another run": history}))
    ax = gh.plot_metric({"run": history, "a run with a longer name": history})
    best = gh.best_eval(history)
    assert ax.get_legend().get_texts()[0].get_text() == f"run (best {best['fd']:.3f} @ {best['iter']:,})"
    assert_legends_outside(ax.figure)
    assert ax.yaxis.label.get_window_extent().height < ax.get_window_extent().height   # the label fits its axis


def test_live_metric_plot_draws_its_legend_outside_the_data(short_run, monkeypatch):
    import matplotlib
    import IPython.display
    matplotlib.use("Agg")
    shown = []

    class Handle:
        def update(self, fig):
            shown.append(fig)
    monkeypatch.setattr(IPython.display, "display", lambda *args, **kwargs: Handle())
    gh.live_metric_plot("run")(short_run[2])
    assert_legends_outside(shown[0])


def test_metric_label_is_one_short_line_naming_the_metric_and_the_sample_counts():
    assert gankit.plots.metric_label("FD (proxy: cifar10_features features)", 5000, 5000) == "FD (proxy), 5k vs 5k"
    assert gankit.plots.metric_label("FID", 10000, 10000) == "FID, 10k vs 10k"
    assert gankit.plots.metric_label("FD (proxy)", 1500, 50000) == "FD (proxy), 1.5k vs 50k"
    assert gankit.plots.metric_label("FD", 40, 1234) == "FD, 40 vs 1,234"


def test_interpolation_figure_has_a_row_per_interpolation(conditional_G):
    import matplotlib
    matplotlib.use("Agg")
    fig = gh.interpolation_figure(conditional_G, within=(0, 1), between=((2, 3),), steps=4)
    assert [ax.get_title() for ax in fig.axes] == ["airplane: latent 0 -> 1", "automobile: latent 0 -> 1",
                                                    "latent 0: bird -> cat"]
    with pytest.raises(gh.GanError, match="class indices"):
        gankit.sampling.interpolate_classes(conditional_G, (0, 12))


def test_class_rows_are_labelled_with_their_class_at_each_row_centre(conditional_G):
    import matplotlib
    matplotlib.use("Agg")
    ax = gh.show_class_rows(conditional_G, [3, 0, 8], per_class=4, title="G")
    image = ax.get_images()[0].get_array()
    assert image.shape[:2] == (2 + 3 * 34, 2 + 4 * 34)           # 32-pixel images, 2-pixel padding
    assert [t.get_text() for t in ax.get_yticklabels()] == ["cat", "airplane", "ship"]
    assert list(ax.get_yticks()) == [18.0, 52.0, 86.0] and list(ax.get_xticks()) == []
    ax = gh.show_class_rows(conditional_G, [1], per_class=2, names=tuple("abcdefghij"))
    assert [t.get_text() for t in ax.get_yticklabels()] == ["b"]
    assert gankit.images.class_names(conditional_G) == gh.CIFAR10_CLASSES
