"""Plots and the comparison table."""
import pytest

import gan_helpers as gh


def test_comparison_table_respects_the_budget():
    entry = lambda it, fd: {"iter": it, "fd": fd, "kid": 0.5, "kid_std": 0.01, "n_fake": 10, "n_real": 20,
                            "metric": "FID"}
    history = {"eval": [entry(0, 9.0), entry(100, 4.0), entry(200, 1.0)]}
    table = gh.comparison_table({"a": history}, upto=150).splitlines()
    assert table[2] == "| a | FID 4 | 100 | 0.5 ± 0.01 | 10 vs 20 |"
    assert "| a | FID 1 | 200 |" in gh.comparison_table({"a": history})


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


def test_interpolation_figure_has_a_row_per_interpolation(conditional_G):
    import matplotlib
    matplotlib.use("Agg")
    fig = gh.interpolation_figure(conditional_G, within=(0, 1), between=((2, 3),), steps=4)
    assert [ax.get_title() for ax in fig.axes] == ["airplane: latent 0 -> 1", "automobile: latent 0 -> 1",
                                                    "latent 0: bird -> cat"]
    with pytest.raises(gh.GanError, match="class indices"):
        gh.interpolate_classes(conditional_G, (0, 12))


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
    assert gh.class_names(conditional_G) == gh.CIFAR10_CLASSES
