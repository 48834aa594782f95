"""The report's tables and quoted numbers are generated from the logs in model/, and the committed ones are
current (report/make_report_assets.py; the PDF itself is built with report/build.sh, which needs TeX). Every
number is checked against its source file here, the statistics against scipy."""
import importlib.util
import json
import re
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

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


@pytest.fixture(scope="module")
def macros(tables) -> dict[str, str]:
    text = tables["numbers.tex"] + (REPORT / "generated" / "attention.tex").read_text()
    return dict(re.findall(r"\\newcommand\{\\(\w+)\}\{(.*)\}", text))


def test_committed_tables_equal_what_the_logs_give(tables):
    for name, text in tables.items():
        committed = (REPORT / "generated" / name).read_text()
        assert committed == text, f"report/generated/{name} is stale: run python report/make_report_assets.py"


def test_report_uses_every_fragment_and_only_defined_macros(tables, macros):
    tex = (REPORT / "report.tex").read_text()
    for name in tables:
        if name != "numbers.tex":
            assert f"\\input{{generated/{name}}}" in tex, name
    assert "\\input{generated/attention.tex}" in tex    # written with the figures (it needs the data)
    used = set(re.findall(r"\\([A-Z][A-Za-z]*)", tex)) - {"Sigma"}   # LaTeX's own
    assert used <= set(macros), f"undefined macros in report.tex: {sorted(used - set(macros))}"
    graphics = re.findall(r"\\includegraphics(?:\[[^]]*\])?\{([^}]+)\}", tex)
    assert graphics and all((REPORT / "generated" / g).is_file() for g in graphics)
    assert (REPORT / "Deep Learning Report 4.pdf").stat().st_size > 100_000


def welch_p(a: list[float], b: list[float]) -> float:
    return float(stats.ttest_ind(a, b, equal_var=False).pvalue)


def test_headline_numbers_are_the_results_files_and_scipy_welch_tests(assets, macros, tables):
    at = json.loads((assets.HEADLINE_GPU / "headline" / f"results_at{assets.HEADLINE_AT}.json").read_text())
    s, d = at["arms"]["sagan"], at["arms"]["dcgan"]
    assert len(s["seeds"]) == len(d["seeds"]) == 3 and at["protocol"]["at"] == assets.HEADLINE_AT
    for key in ("best", "final", "last"):
        for arm, name in ((s, "Sagan"), (d, "Dcgan")):
            values = arm[key]["values"]
            assert macros[f"Head{name}{key.capitalize()}"] == (f"{np.mean(values):.3f} $\\pm$ "
                                                               f"{np.std(values, ddof=1):.3f}")
        p = welch_p(s[key]["values"], d[key]["values"])
        assert macros[f"HeadP{key.capitalize()}"] == assets.p_value(p)
        assert assets.p_value(p) in tables["headline.tex"]
    for run in s["runs"] + d["runs"]:      # each run's numbers are its history's, up to the comparison's iteration
        history = json.loads((assets.HEADLINE_GPU / "headline" / f"{'sagan' if run in s['runs'] else 'dcgan'}"
                              f"_s{run['seed']}" / "history.json").read_text())
        evals = [e["fd"] for e in history["eval"] if e["iter"] <= assets.HEADLINE_AT]
        assert (run["best"], run["final"]) == (min(evals), evals[-1])
        assert run["last"] == pytest.approx(np.mean(evals[-3:]))


def test_submitted_models_numbers_are_their_histories_and_test_files(assets, macros, tables):
    for label, name in assets.SUBMITTED.items():
        history = json.loads((ROOT / "model" / f"{name}_history.json").read_text())
        test = json.loads((ROOT / "model" / f"{name}_test.json").read_text())
        best = min(history["eval"], key=lambda e: e["fd"])
        key = label.capitalize()
        assert macros[f"{key}BestFD"] == f"{best['fd']:.3f}" and macros[f"{key}BestAt"] == f"{best['iter']:,}"
        assert macros[f"{key}TestFD"] == f"{test['fd']:.3f}" and f"{test['fd']:.3f}" in tables["test.tex"]
        assert f"{test['class_acc']:.3f}" in tables["test.tex"] and f"{test['nn_ratio']:.3f}" in tables["test.tex"]
        assert any("d_loss_val" in e for e in history["eval"]), f"{name}: no validation losses for the loss figure"
    test = json.loads((ROOT / "model" / "sagan_test.json").read_text())
    assert macros["ClassifierAcc"] == f"{100 * test['real_class_acc']:.1f}"   # 0.8588 -> 85.9


def test_study_tables_give_each_arms_gap_to_the_lowest_with_scipys_welch_p(assets, tables, macros):
    for name, baseline in assets.STUDIES.items():
        results = json.loads((ROOT / "model" / "studies" / name / "results.json").read_text())
        arms = results["arms"]
        lead = min(arms, key=lambda a: arms[a]["best"]["mean"])
        rows = {line.split(" & ")[0]: line for line in tables[f"study_{name}.tex"].splitlines() if " & " in line}
        for arm, a in arms.items():
            row = rows[assets.tex_name(arm) + (" (baseline)" if arm == baseline else "")]
            if arm == lead:
                assert row.endswith("lowest \\\\")
                continue
            p = welch_p(a["best"]["values"], arms[lead]["best"]["values"])
            assert row.endswith(f"$p$ {assets.p_value(p)} \\\\"), row
            assert macros[f"Study{assets.letters_key(name)}{assets.letters_key(arm)}P"] == assets.p_value(p)
            cost = a["sec_per_iter"]["mean"] / arms[baseline]["sec_per_iter"]["mean"]
            assert f"{cost:.1f}$\\times$" in row


def test_p_values_and_intervals_are_written_as_the_text_needs(assets):
    assert [assets.p_value(p) for p in (0.0004, 0.0036, 0.0522, 0.59)] == ["$<$0.001", "0.0036", "0.052", "0.59"]
    assert assets.interval({"diff": -0.067, "low": -0.47, "high": 0.34}) == "$-0.067$ [$-0.470$, $+0.340$]"


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


def test_speed_table_quotes_both_benchmark_files(assets, tables):
    gpu = json.loads(assets.SPEED_GPU.read_text())
    for row in (r for r in gpu["rows"] if r["loop"] == "ours" and r["compile"] == "off"):
        assert f"{row['img_s']:,.0f}" in tables["speed.tex"]
    cpu = assets.SPEED_CPU.read_text()
    dcgan = next(line.split() for line in cpu.splitlines() if line.startswith("dcgan "))
    assert f"{float(dcgan[4]):,.0f}" in tables["speed.tex"]


def test_every_reference_resolves_and_the_rubric_gives_a_page_per_item():
    tex = (REPORT / "report.tex").read_text()
    labels = set(re.findall(r"\\label\{([^}]+)\}", tex))
    refs = set(re.findall(r"\\(?:page)?ref\{([^}]+)\}", tex))
    assert refs <= labels, f"references to missing labels: {sorted(refs - labels)}"
    rubric = tex[tex.index("\\label{tab:rubric}"):]
    rubric = rubric[:rubric.index("\\end{tabular}")]
    rows = [r for r in rubric.split("\\midrule")[1].split("\\\\") if r.strip() and "bottomrule" not in r]
    assert len(rows) >= 12
    for row in rows:                                # item & where & \pageref{label}: the page is LaTeX's, never typed
        assert re.fullmatch(r"\s*\\pageref\{[^}]+\}\s*", row.split(" & ")[-1]), row
    for needed in ("tab:study-attention", "fig:headline", "fig:grids", "fig:losses", "fig:attention-maps"):
        assert f"\\pageref{{{needed}}}" in rubric, needed


def test_the_report_speaks_of_the_models_not_of_how_they_were_made():
    spec = importlib.util.spec_from_file_location("check_report_pdf", ROOT / "tools" / "check_report_pdf.py")
    check = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(check)
    text = (REPORT / "report.tex").read_text().lower()
    for word in check.PROCESS_WORDS:
        assert word not in text, word


def test_infogan_and_bigan_numbers_are_the_measures_file(assets, macros):
    measures = json.loads((assets.MORE_GANS / "measures.json").read_text())
    for arm, key, name in (("infogan", "cluster_acc", "InfoClusterAcc"), ("codes-no-mi", "cluster_acc", "NoMiClusterAcc"),
                           ("bigan", "encoder", "BiganEncoder"), ("bigan", "random_encoder", "BiganRandom"),
                           ("bigan", "pixels", "BiganPixels")):
        values = [r["measures"][key] for r in measures["runs"].values() if r["arm"] == arm]
        expected = f"{np.mean(values):.3f}" + (f" $\\pm$ {np.std(values, ddof=1):.3f}" if len(values) > 1 else "")
        assert macros[name] == expected, name
    info = [r["measures"]["cluster_acc"] for r in measures["runs"].values() if r["arm"] == "infogan"]
    no_mi = [r["measures"]["cluster_acc"] for r in measures["runs"].values() if r["arm"] == "codes-no-mi"]
    if min(len(info), len(no_mi)) > 1:
        assert f"Welch $p$ {assets.p_value(welch_p(info, no_mi))}" in macros["InfoWelch"]
    else:
        assert "no Welch test" in macros["InfoWelch"]
