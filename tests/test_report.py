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
from gankit.checkpoints import read_history

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


def holm_adjust(p: list[float]) -> list[float]:
    """Holm's step-down adjusted p-values, written out independently of the kit's."""
    order = np.argsort(p)
    adjusted, running = [0.0] * len(p), 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (len(p) - rank) * p[i]))
        adjusted[i] = running
    return adjusted


def test_headline_budgets_are_the_run_histories_and_scipy_welch_tests_with_holm(assets, macros, tables):
    runs = {arm: [read_history(assets.HEADLINE_GPU / "headline" / f"{arm}_s{seed}")
                  for seed in (0, 1, 2)] for arm in ("sagan", "dcgan")}

    def at(arm: str, it: int) -> list[float]:
        return [next(e["fd"] for e in h["eval"] if e["iter"] == it) for h in runs[arm]]
    d_end = max(h["eval"][-1]["seconds"] for h in runs["dcgan"])
    s_time = [next(e for e in h["eval"] if e["seconds"] >= d_end) for h in runs["sagan"]]
    assert len({e["iter"] for e in s_time}) == 1
    budgets = {"Iterations": (at("sagan", 3500), at("dcgan", 3500)),
               "Images": (at("sagan", 3000), at("dcgan", 1500)),        # batch 64 vs 128: 192,000 images each
               "Time": ([e["fd"] for e in s_time], [h["eval"][-1]["fd"] for h in runs["dcgan"]])}
    p = {k: welch_p(*v) for k, v in budgets.items()}
    for (key, (s, d)), q in zip(budgets.items(), holm_adjust(list(p.values()))):
        assert macros[f"Head{key}SaganFD"] == f"{np.mean(s):.3f} $\\pm$ {np.std(s, ddof=1):.3f}"
        assert macros[f"Head{key}DcganFD"] == f"{np.mean(d):.3f} $\\pm$ {np.std(d, ddof=1):.3f}"
        assert macros[f"Head{key}P"] == assets.p_value(p[key]) and macros[f"Head{key}Holm"] == assets.p_value(q)
        assert f"& {assets.p_value(p[key])} & {assets.p_value(q)} \\\\" in tables["headline.tex"]
    assert macros["HeadImagesSaganImages"] == macros["HeadImagesDcganImages"] == "192,000"
    assert s_time[0]["seconds"] >= d_end        # the SAGAN is read at its state at or after the equal time


def test_submitted_models_numbers_are_their_histories_and_test_files(assets, macros, tables):
    for label, name in assets.SUBMITTED.items():
        history = read_history(ROOT / "model" / f"{name}_history.json.gz")
        test = json.loads((ROOT / "model" / f"{name}_test.json").read_text())
        best = min(history["eval"], key=lambda e: e["fd"])
        key = label.capitalize()
        assert macros[f"{key}BestFD"] == f"{best['fd']:.3f}" and macros[f"{key}BestAt"] == f"{best['iter']:,}"
        assert macros[f"{key}TestFD"] == f"{test['fd']:.3f}" and f"{test['fd']:.3f}" in tables["test.tex"]
        assert f"{test['class_acc']:.3f}" in tables["test.tex"] and f"{test['nn_ratio']:.3f}" in tables["test.tex"]
        for measure in ("precision", "recall", "density", "coverage"):
            assert macros[f"{key}{measure.capitalize()}"] == f"{test['prdc'][measure]:.3f}"
            assert f"{test['prdc'][measure]:.3f}" in tables["test.tex"]
            assert macros[f"Real{measure.capitalize()}"] == f"{test['real_prdc'][measure]:.3f}"
        assert macros[f"{key}TestKid"] == f"{test['kid']:.4f}"
        assert macros[f"{key}FeatureDist"] == f"{test['diversity']['dist_fake']:.2f}"
        assert macros[f"{key}Iters"] == f"{history['iter'][-1]:,}" and macros[f"{key}FinalFD"] == f"{history['eval'][-1]['fd']:.3f}"
    trained = [f"{read_history(ROOT / 'model' / f'{name}_history.json.gz')['iter'][-1]:,} "
               f"({gh.load_checkpoint(ROOT / 'model' / f'{name}_best.pt')['iteration']:,})" for name in assets.SUBMITTED.values()]
    assert "iterations trained (kept) & " + " & ".join(trained) + " \\\\" in tables["hyperparameters.tex"]
    test = json.loads((ROOT / "model" / "sagan_test.json").read_text())
    assert macros["ClassifierAcc"] == f"{100 * test['real_class_acc']:.1f}"   # 0.8588 -> 85.9
    assert test["prdc"]["k"] == 3 and macros["PrdcK"] == "3"


def test_evidence_and_critic_numbers_are_their_files(assets, macros):
    noise = json.loads((ROOT / "model" / "eval_noise_dcgan.json").read_text())
    assert macros["NoiseMean"] == f"{np.mean(noise['fd']):.3f}" and macros["NoiseStd"] == f"{np.std(noise['fd'], ddof=1):.3f}"
    rerun = json.loads(assets.CPU_SAGAN_TEST.read_text())
    assert macros["CpuSaganTestFD"] == f"{rerun['fd']:.3f}" and macros["CpuSaganTestKid"] == f"{rerun['kid']:.4f}"
    former = json.loads(assets.HEADLINE_DCGAN_TEST.read_text())                 # the DCGAN the shipped one replaced
    assert macros["HeadDcganTestFD"] == f"{former['fd']:.3f}" and former["fd"] > json.loads(
        (ROOT / "model" / "dcgan_test.json").read_text())["fd"]
    dcgan_evals = {e["iter"]: e["fd"] for e in read_history(ROOT / "model" / "dcgan_history.json.gz")["eval"]}
    assert macros["DcganAtSaganBestIt"] == macros["SaganBestAt"]    # the DCGAN run read where the SAGAN was kept
    assert macros["DcganAtSaganBestFD"] == f"{dcgan_evals[int(macros['SaganBestAt'].replace(',', ''))]:.3f}"
    assert float(macros["DcganAtSaganBestFD"]) > float(macros["SaganBestFD"])   # "behind the SAGAN's" in the text
    rerun_history = read_history(assets.CPU_SAGAN)
    assert macros["CpuSaganBest"] == f"{min(e['fd'] for e in rerun_history['eval']):.3f}"
    assert any("d_loss_val" in e for e in read_history(ROOT / "model" / "sagan_history.json.gz")["eval"])
    assert any("d_loss_val" in e for e in read_history(ROOT / "model" / "dcgan_history.json.gz")["eval"])
    for name in ("sagan", "dcgan"):
        ref = json.loads((ROOT / "model" / f"ref_{name}_test.json").read_text())
        assert macros[f"Ref{name.capitalize()}TestFD"] == f"{ref['fd']:.3f}"
    long = read_history(assets.LONG_RUN)
    assert macros["LongFinalFD"] == f"{long['eval'][-1]['fd']:.3f}"
    gap = np.asarray(long["d_real"]) - np.asarray(long["d_fake"])
    assert macros["LongGapFirst"] == f"{gap[:1000].mean():.0f}" and macros["LongGapLast"] == f"{gap[-1000:].mean():.0f}"
    history = rerun_history          # the critic section's example: the recipe with the preset's drift weight
    real, fake = np.asarray(history["d_real"]), np.asarray(history["d_fake"])
    assert macros["CriticStdReal"] == f"{real.std():.0f}" and macros["CriticStdFake"] == f"{fake.std():.0f}"
    assert macros["CriticGapMedian"] == f"{np.median(real - fake):.0f}"
    both = np.concatenate([real, fake])
    assert (macros["CriticLow"], macros["CriticHigh"]) == (f"{np.percentile(both, 1):.0f}", f"{np.percentile(both, 99):.0f}")
    assert macros["CriticLag"] == f"{np.corrcoef(real[:-1], real[1:])[0, 1]:.2f}"
    shipped = read_history(ROOT / "model" / "sagan_history.json.gz")
    real, fake = (np.asarray(shipped[k]) for k in ("d_real", "d_fake"))
    assert macros["ShippedStdReal"] == f"{real.std():.0f}" and macros["ShippedStdFake"] == f"{fake.std():.0f}"
    assert macros["ShippedLag"] == f"{np.corrcoef(real[:-1], real[1:])[0, 1]:.2f}"
    assert macros["ShippedGapMedian"] == f"{np.median(real - fake):.0f}"
    rerun_drift = json.loads((assets.CPU_SAGAN / "run.json").read_text())["config"]["drift"]
    shipped_drift = gh.load_checkpoint(ROOT / "model" / "sagan_best.pt")["config"]["drift"]
    assert (macros["CriticDrift"], macros["ShippedDrift"]) == (f"{rerun_drift:g}", f"{shipped_drift:g}")


def test_study_tables_test_each_arm_against_the_baseline_with_scipys_welch_p_and_holm(assets, tables, macros):
    for name in assets.STUDIES:
        results = json.loads((ROOT / "model" / "studies" / name / "results.json").read_text())
        arms, base = results["arms"], results["baseline"]
        rows = {line.split(" & ")[0].split(" (")[0].rstrip("*"): line
                for line in tables[f"study_{name}.tex"].splitlines() if " & " in line}
        others = [arm for arm in arms if arm != base]
        p = [welch_p(arms[arm]["best"]["values"], arms[base]["best"]["values"]) for arm in others]
        for arm, raw, q in zip(others, p, holm_adjust(p)):
            row = rows[assets.tex_name(arm)]
            verdict = "significant" if q < 0.05 else "suggestive" if raw < 0.05 else "--"
            assert row.endswith(f"& {assets.p_value(raw)} & {assets.p_value(q)} & {verdict} \\\\"), row
            k = f"Study{assets.letters_key(name)}{assets.letters_key(arm)}"
            assert macros[f"{k}P"] == assets.p_value(raw) and macros[f"{k}Holm"] == assets.p_value(q)
            cost = arms[arm]["sec_per_iter"]["mean"] / arms[base]["sec_per_iter"]["mean"]
            assert f"{cost:.1f}$\\times$" in row
        assert rows[assets.tex_name(base)].endswith("-- & -- & -- & -- \\\\")


def test_the_pdf_speaks_of_precision_recall_and_holm():
    pymupdf = pytest.importorskip("pymupdf")
    text = "".join(page.get_text() for page in pymupdf.open(REPORT / "Deep Learning Report 4.pdf")).lower()
    for word in ("precision", "recall", "holm"):
        assert word in text, word


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


def test_critic_study_numbers_are_its_results_file(assets, macros, tables):
    """The critic study's table and text quote model/studies/critic/results.json: per arm the mean best and final
    score, the critic scale over each run's last CRITIC_WINDOW iterations, and each other arm's Holm-corrected test."""
    results = json.loads(assets.CRITIC_STUDY.read_text())
    assert set(results["arms"]) == {"sum", "mean", "drift"} and results["baseline"] == "sum"
    for arm, a in results["arms"].items():
        k = "CriticStudy" + assets.letters_key(arm)
        assert macros[f"{k}Best"] == f"{a['best']['mean']:.2f}" and macros[f"{k}Final"] == f"{a['final']['mean']:.2f}"
        assert macros[f"{k}Level"] == f"{np.mean([r['critic_level_std'] for r in a['runs']]):.0f}"
        assert macros[f"{k}Gap"] == f"{np.mean([r['critic_gap'] for r in a['runs']]):.0f}"
        assert f"{a['critic_ratio']['mean']:.2f} $\\pm$ {a['critic_ratio']['std']:.2f}" in tables["critic_study.tex"]
    best = {arm: [r["best"] for r in a["runs"]] for arm, a in results["arms"].items()}
    p = {arm: welch_p(best[arm], best["sum"]) for arm in ("mean", "drift")}
    low, high = sorted(p, key=p.get)                                              # Holm over the two tests
    holm = {low: min(1.0, 2 * p[low])}
    holm[high] = max(holm[low], min(1.0, p[high]))
    for arm in p:
        k = "CriticStudy" + assets.letters_key(arm)
        assert macros[f"{k}P"] == assets.p_value(p[arm]) and macros[f"{k}Holm"] == assets.p_value(holm[arm])
    assert macros["CriticStudyWindow"] == f"{assets.gankit.study_results.CRITIC_WINDOW:,}"


def test_settings_rows_show_each_resume_that_changed_them(assets):
    cfg = gh.Config.dcgan(g_lr=5e-5, d_lr=5e-5)      # a checkpoint's config holds the rates it last ran with
    resumed = {"segments": [{"from_iter": 0}, {"from_iter": 64000, "changed": {"g_lr": [2e-4, 5e-5],
                                                                               "d_lr": [2e-4, 5e-5]}}]}
    assert assets.learning_rates(resumed, cfg) == "0.0002 / 0.0002, 5e-05 / 5e-05 from it.\\ 64,000"
    assert assets.learning_rates({"segments": []}, gh.Config.dcgan()) == "0.0002 / 0.0002"
    augmented = {"segments": [{"from_iter": 0}, {"from_iter": 75000, "changed": {"diffaug": ["none", "translation,cutout"]}}]}
    show = lambda p: "--" if p == "none" else p   # noqa: E731
    assert assets.over_run(augmented, gh.Config.dcgan(diffaug="translation,cutout"), ("diffaug",), show) == \
        "--, translation,cutout from it.\\ 75,000"


def test_the_dcgan_runs_setting_changes_quoted_in_the_text_are_its_logs(macros):
    history = read_history(ROOT / "model" / "dcgan_history.json.gz")
    changed = lambda field: [s["from_iter"] for s in history["segments"] if field in s.get("changed", {})]  # noqa: E731
    assert macros["DcganLrFrom"] == f"{changed('g_lr')[-1]:,}" and macros["DcganAugFrom"] == f"{changed('diffaug')[-1]:,}"
    then = next(e for e in history["eval"] if e["iter"] == changed("diffaug")[-1])
    assert macros["DcganDLossTrainBeforeAug"] == f"{then['d_loss_train']:.2f}"
    assert macros["DcganDLossValBeforeAug"] == f"{then['d_loss_val']:.2f}"
    assert then["d_loss_train"] < then["d_loss_val"]       # "began to learn the training images themselves"
