"""The report's tables and quoted numbers are generated from the logs in model/, and the committed ones are
current (report/make_report_assets.py; the PDF itself is built with report/build.sh, which needs TeX)."""
import importlib.util
import re
from pathlib import Path

import pytest
import torch

import gan_helpers as gh

ROOT = Path(__file__).resolve().parents[1]
REPORT = ROOT / "report"


@pytest.fixture(scope="module")
def assets():
    spec = importlib.util.spec_from_file_location("make_report_assets", REPORT / "make_report_assets.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def tables(assets):
    return assets.tables()


def test_committed_tables_equal_what_the_logs_give(tables):
    for name, text in tables.items():
        committed = (REPORT / "generated" / name).read_text()
        assert committed == text, f"report/generated/{name} is stale: run python report/make_report_assets.py"


def test_report_uses_every_fragment_and_only_defined_macros(tables):
    tex = (REPORT / "report.tex").read_text()
    for name in tables:
        if name != "numbers.tex":
            assert f"\\input{{generated/{name}}}" in tex, name
    assert "\\input{generated/attention_long.tex}" in tex    # written with the figures (it needs the data)
    defined = set(re.findall(r"\\newcommand\{\\(\w+)\}",
                             tables["numbers.tex"] + (REPORT / "generated" / "attention_long.tex").read_text()))
    used = set(re.findall(r"\\([A-Z][A-Za-z]*)", tex)) - {"FloatBarrier", "Sigma", "IfFileExists"}   # LaTeX's own
    assert used <= defined, f"undefined macros in report.tex: {sorted(used - defined)}"
    assert (REPORT / "Deep Learning Report 4.pdf").stat().st_size > 100_000


def test_numbers_and_tables_quote_the_logged_values(assets, tables):
    hists = assets.histories()
    for name, label in assets.LABELS.items():
        best = min(hists[label]["eval"], key=lambda e: e["fd"])
        key = assets.macro_key(name)
        assert f"\\newcommand{{\\{key}BestFD}}{{{best['fd']:.3f}}}" in tables["numbers.tex"]
        assert f"{best['fd']:.3f}" in tables["results.tex"]


def test_long_run_phrase_quotes_its_last_evaluations(assets, tables):
    history = _history({0: 9.0, 1000: 2.5, 2000: 1.25, 3000: 1.2504})
    assert assets.last_evals(history, 3) == "2.500, 1.250 and 1.250 at iterations 1,000, 2,000 and 3,000"
    expected = assets.last_evals(assets.read_json(assets.LONG_RUN / "history.json"), 3)
    assert f"\\newcommand{{\\LongLastEvals}}{{{expected}}}" in tables["numbers.tex"]


def _history(fds: dict[int, float]) -> dict:
    evals = [{"iter": i, "fd": fd, "kid": fd / 100, "kid_std": 0.001, "n_fake": 10, "n_real": 10, "metric": "FD"}
             for i, fd in fds.items()]
    return {"iter": list(range(1, max(fds) + 1)), "eval": evals}


def test_best_upto_respects_the_budget_and_unreached_budgets(assets):
    h = _history({0: 9.0, 1000: 3.0, 2000: 4.0, 3000: 2.0})
    assert assets.best_upto(h, 2000)["fd"] == 3.0
    assert assets.best_upto(h, None)["fd"] == 2.0
    assert assets.best_upto(h, 4000) is None


def test_verdict_sentences_follow_the_numbers(assets):
    import gan_helpers as gh
    cfgs = {"DCGAN": gh.Config.dcgan(), "SAGAN": gh.Config.sagan()}
    hists = {"DCGAN": _history({0: 9.0, 1000: 4.0, 2000: 2.0}), "SAGAN": _history({0: 9.0, 1000: 3.0}),
             "Ref. DCGAN": _history({0: 9.0, 1000: 5.0}), "Ref. SAGAN": _history({0: 9.0, 1000: 2.5})}
    text = assets.verdict(hists, cfgs)
    assert text.startswith("At these budgets the SAGAN does not beat the DCGAN: its best checkpoint is 50\\%")
    assert "the DCGAN's best was 4.000, lower than the SAGAN's 3.000" not in text
    assert "the DCGAN's best was 4.000, higher than the SAGAN's 3.000" in text
    assert "our DCGAN beats the reference recipe (4.000 vs 5.000 within 1,000 iterations)" in text
    assert "our SAGAN does not beat the reference recipe (3.000 vs 2.500" in text
    hists["SAGAN"] = _history({0: 9.0, 1000: 1.5})
    assert assets.verdict(hists, cfgs).startswith("The SAGAN's best checkpoint is 25\\% lower than the DCGAN's")
    hists["SAGAN"] = _history({0: 9.0, 1000: 1.98})
    assert assets.verdict(hists, cfgs).startswith("The SAGAN's and the DCGAN's best checkpoints are level on the "
                                                  "validation metric (1\\% apart, within the 5\\% we treat as noise)")
    hists["Ref. DCGAN"] = _history({0: 9.0, 1000: 4.1})
    assert "our DCGAN is level with the reference recipe (4.000 vs 4.100" in assets.verdict(hists, cfgs)


def _results(bests: dict[str, list[float]], missing: list[str] = (), at_time: dict[str, list[float]] | None = None
             ) -> dict:
    at_time = at_time or bests
    return {"arms": {arm: {"seeds": list(range(len(v))), "best": gh.mean_std(v), "at_time": gh.mean_std(at_time[arm])}
                     for arm, v in bests.items()}, "missing": list(missing)}


def test_study_verdict_states_seeds_missing_runs_and_only_differences_beyond_the_spread(assets):
    text = assets.study_verdict(_results({"none": [3.0, 3.2, 3.4], "attn8": [2.0, 2.1, 2.2], "x_y": [3.0, 3.6]},
                                         ["x_y_s2"]))
    assert text.startswith("Seeds per arm: 2 to 3. Runs not finished yet: x\\_y\\_s2.")
    assert ("best score larger than the two arms' standard deviations added: attn8 below x\\_y by 1.2; attn8 below "
            "none by 1.1; every other pair is within the spread.") in text
    text = assets.study_verdict(_results({"a": [1.0, 2.0], "b": [1.5, 1.6]}, at_time={"a": [1.0, 1.2], "b": [3.0, 3.2]}))
    assert text.startswith("Seeds per arm: 2. No two arms differ in the best score")
    assert text.endswith("equal training time larger than the two arms' standard deviations added: a below b by 2.\n")
    assert "no difference is called" in assets.study_verdict(_results({"a": [1.0], "b": [5.0]}))


def test_study_macros_give_the_fewest_seeds_and_each_arms_means(assets):
    results = _results({"continue": [1.0, 2.0, 3.0], "lr-half": [2.0, 4.0]})
    for arm, seconds in (("continue", 0.5), ("lr-half", 2.0)):
        results["arms"][arm]["sec_per_iter"] = gh.mean_std([seconds])
    lines = assets.study_macros({"sagan_long": results})
    assert "\\newcommand{\\StudySaganLongSeeds}{2}" in lines
    assert "\\newcommand{\\StudySaganLongContinueBest}{2.000}" in lines
    assert "\\newcommand{\\StudySaganLongLrHalfBest}{3.000}" in lines
    assert "\\newcommand{\\StudySaganLongLrHalfCost}{4.0}" in lines
    assert not any("Acc}" in line for line in lines)     # no class accuracy recorded: no macro for it


def test_study_progress_names_the_studies_still_running(assets):
    done = {name: _results({"a": [1.0, 2.0]}) for name in assets.STUDIES}
    assert assets.study_progress(done).startswith("Every run of the five studies has finished.")
    running = {**done, "loss": _results({"a": [1.0]}, ["a_s1"])}
    del running["update_ratio"]
    assert assets.study_progress(running).startswith("Still running: loss, update\\_ratio;")


def test_figures_are_saved_at_print_size_and_refused_with_unreadable_text(assets, tmp_path, monkeypatch):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    monkeypatch.setattr(assets, "OUT", tmp_path)
    fig, ax = plt.subplots(figsize=(12, 4))
    ax.set_title("readable")
    assets.save_figure(fig, "ok.pdf", width=0.5)
    assert fig.get_size_inches()[0] == pytest.approx(0.5 * assets.TEXT_WIDTH_IN) and (tmp_path / "ok.pdf").is_file()
    ax.plot([0, 1], label="tiny")
    ax.legend(fontsize=5)
    with pytest.raises(gh.GanError, match=r"'tiny' \(5.0 pt\)"):
        assets.save_figure(fig, "small.pdf")
    plt.close("all")


def test_attention_figure_names_each_layer_once_and_titles_the_top_row_only():
    import matplotlib
    matplotlib.use("Agg")
    G, _ = gh.build_models(gh.Config.sagan(g_ch=8, d_ch=8, g_attn=(8, 16), d_attn=()))
    fig = gh.attention_figure(gh.generator_attention(G, n=2))
    axes = fig.axes
    assert len(axes) == 2 * 6                                        # 2 layers x 3 queries x (image, map)
    assert [a.get_title() for a in axes[:2]] == ["query pixel (8, 8)", "its attention"]
    assert all(a.get_title() == "" for a in axes[6:])
    labels = [t.get_text() for a in axes for t in a.texts]
    assert labels == ["G 8x8\nattention", "G 16x16\nattention"]
    assert min(t.get_fontsize() for a in axes for t in [a.title, *a.texts] if t.get_text()) >= 7


def test_speed_table_reads_the_committed_benchmark_report(assets):
    text = assets.SPEED.read_text()
    rows = assets.speed_rows(text)
    assert [r["model"] for r in rows] == ["dcgan", "sagan"]
    for r in rows:   # the report's columns are consistent with each other (it/s x batch = images/s)
        assert r["ours_img"] == pytest.approx(r["ours_its"] * r["batch"], abs=r["batch"] * 0.006)
        assert r["ratio"] == pytest.approx(r["ours_its"] / r["ref_its"], abs=0.02)
    options = assets.speed_options(text)
    assert set(options) == {"dcgan", "sagan"} and all(0 < v < 10 for o in options.values() for v in o.values())
    sample = ("device: cpu\nmodel    batch  ours it/s   ref it/s  ours img/s  ref img/s  ratio\n"
              "dcgan      128       2.00       1.00         256        128   2.00x\n\n"
              "dcgan: plain 2.49 it/s (1.13x ref), amp 0.50x / 0.55x, compile 1.25x / 1.40x\n")
    assert assets.speed_rows(sample) == [{"model": "dcgan", "batch": 128, "ours_its": 2.0, "ref_its": 1.0,
                                          "ours_img": 256.0, "ref_img": 128.0, "ratio": 2.0}]
    assert assets.speed_options(sample) == {"dcgan": {"amp": 0.5, "compile": 1.25}}


def test_config_differences_list_every_differing_setting(assets):
    a = gh.Config.sagan(g_ch=64, d_ch=64)
    text = assets.config_differences(a, a)
    assert text == "The shipped SAGAN and DCGAN share every model and training setting.\n"
    b = gh.Config.sagan(g_ch=64, d_ch=32, cond="acgan", diffaug="translation")
    text = assets.config_differences(a, b)
    assert text.startswith("The shipped SAGAN and DCGAN differ in 3 settings: conditioning, $D$ width, augmentation;")
    assert "class-loss weight" not in text and "augmentation" not in text.split("share")[1]
    assert "drift term" in text.split("share")[1] and "Lipschitz" not in text     # both lipschitz="none"


def test_training_hours_come_from_the_last_logged_seconds(assets):
    assert assets.training_hours({"eval": [{"seconds": 100.0}, {"seconds": 7200.0}]}) == "2.0"
    assert assets.training_hours({"eval": [{"fd": 1.0}]}) == "--"


def test_every_reference_has_a_label_and_the_rubric_table_gives_a_page_per_item():
    tex = (REPORT / "report.tex").read_text()
    labels = set(re.findall(r"\\label\{([^}]+)\}", tex))
    refs = set(re.findall(r"\\(?:page)?ref\{([^}]+)\}", tex))
    assert refs <= labels, f"references to missing labels: {sorted(refs - labels)}"
    rubric = tex[tex.index("\\label{tab:rubric}"):]
    rubric = rubric[:rubric.index("\\end{tabular}")]
    rows = [r for r in rubric.split("\\midrule")[1].split("\\\\") if r.strip() and "bottomrule" not in r]
    assert len(rows) >= 15
    for row in rows:                                # item & where & \pageref{label}: the page is LaTeX's, never typed
        item, where, page = row.split(" & ")
        assert re.fullmatch(r"\s*\\pageref\{[^}]+\}\s*", page), row
    for needed in ("tab:study-attention", "fig:curves", "fig:grids", "fig:classes", "fig:losses", "fig:attention-long"):
        assert f"\\pageref{{{needed}}}" in rubric or f"\\ref{{{needed}}}" in rubric, needed


def test_snapshots_are_chosen_evenly_from_those_that_exist(assets):
    found = {i: Path(f"iter_{i:06d}.png") for i in range(0, 10_001, 1000)}
    assert assets.chosen_snapshots(found, 5) == [0, 2000, 5000, 8000, 10000]
    assert assets.chosen_snapshots({0: Path("a"), 500: Path("b")}, 5) == [0, 500]
    macro = re.search(r"\\newcommand\{\\SnapshotIters\}\{([^}]*)\}", (REPORT / "generated" / "numbers.tex").read_text())
    shown = [int(i.replace(",", "")) for i in re.split(r", (?=\d{1,3}(?:,\d{3})*(?:, |$))", macro.group(1))]
    assert shown and all(gh.snapshot_path(assets.LONG_RUN, i).is_file() for i in shown)


def test_code_changes_must_fall_on_evaluated_iterations(assets, monkeypatch):
    hists = {"DCGAN": _history({0: 9.0, 1000: 4.0})}
    monkeypatch.setattr(assets, "CODE_CHANGES", {"dcgan": ((1000, "x"),)})
    assert "DCGAN & 1,000 & x" in assets.code_change_table(hists)
    monkeypatch.setattr(assets, "CODE_CHANGES", {"dcgan": ((1500, "x"),)})
    with pytest.raises(gh.GanError, match="not evaluated at iteration 1500"):
        assets.code_change_table(hists)


def test_attention_numbers_quote_the_query_dependence_of_each_source(assets):
    gh.setup(0, "cpu")
    G, D = gh.build_models(gh.Config.sagan(g_ch=8, d_ch=8, g_attn=(16,), d_attn=(16,)))
    with torch.no_grad():
        for _, m in [*gh.attention_layers(G), *gh.attention_layers(D)]:
            m.gamma.fill_(0.5)                      # a fresh layer is the identity; give the maps some weight
    real = gh.ImageSet(torch.randint(0, 256, (4, 3, 32, 32), dtype=torch.uint8), torch.arange(4))
    layers, tex = assets.attention_numbers(G, D, real, n=4)
    def value(name):
        return re.search(rf"\\newcommand{{\\{name}}}{{([^}}]*)}}", tex).group(1)
    maps = {k: next(iter(v.values()))[1] for k, v in layers.items()}
    assert value("LongDRealQueryDependence") == f"{gh.query_dependence(maps['real']):.3f}"
    assert value("LongDFakeQueryDependence") == f"{gh.query_dependence(maps['fake']):.3f}"
    assert value("LongGQueryDependence") == f"{gh.query_dependence(maps['generated']):.3f}"
    assert value("LongGammaD") == "0.500" and value("AttentionImages") == "4"
    fake_images = next(iter(layers["fake"].values()))[0]    # D saw G's samples, as uint8 like a saved image
    torch_images = next(iter(layers["generated"].values()))[0]
    torch.testing.assert_close(fake_images, gh.to_float(gh.to_uint8(torch_images)))


def test_every_study_in_the_report_compares_times_on_one_timed_clock(assets):
    """The Studies section says training times come from `study time` (every arm timed in one process), not from
    the times runs logged on different machines: every study it shows must have been collected that way."""
    for name in (*assets.STUDIES, *assets.RECIPES):
        path = ROOT / "model" / "studies" / name / "results.json"
        if path.is_file():
            protocol = assets.read_json(path)["protocol"]["seconds"]
            assert "all timed in one process" in protocol, f"{name}: run study time, then study collect"
