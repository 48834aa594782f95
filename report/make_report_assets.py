"""Regenerate every figure, table and quoted number of the report from the logs and checkpoints in model/.

Nothing here is typed by hand: tables (.tex fragments) and the numbers quoted in the text (numbers.tex, one
\\newcommand each) are computed from model/<name>_history.json.gz and model/<name>_test.json of the submitted
generators, the headline study's runs (model/studies/h200/headline/, model/studies/headline/), the studies'
results files (model/studies/<study>/results.json), the speed benchmarks (model/benchmarks/) and the configs in
model/*_best.pt; figures are drawn from the same files and generators.

usage (from the repository root):  python report/make_report_assets.py [--tables-only]
tests/test_report.py checks that the committed tables equal what this script computes from model/.
"""
from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
import gan_helpers as gh  # noqa: E402
import gankit.study_results  # noqa: E402
from gankit.checkpoints import read_history  # noqa: E402
from gankit.publishing import published_history  # noqa: E402
from gankit.training import ema_began, setting_schedule  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

MODEL = ROOT / "model"
OUT = ROOT / "report" / "generated"
SUBMITTED = {"SAGAN": "sagan", "DCGAN": "dcgan"}   # label -> model/<name>_best.pt, _history.json.gz, _test.json
HEADLINE = gh.load_study(ROOT / "studies" / "headline.json")
HEADLINE_GPU = MODEL / "studies" / "h200"          # the headline study's runs on the H200 (tools/device_check.py)
HEADLINE_AT = 3500                                 # the last evaluation every one of those runs reached
CPU_SAGAN = MODEL / "studies" / "headline" / "sagan_s0"   # the same SAGAN recipe and seed 0 on the CPU, to 6,000
CPU_SAGAN_TEST = ROOT / "report" / "evidence" / "headline_sagan_s0_test.json"   # its best generator's test scores
HEADLINE_DCGAN_TEST = ROOT / "report" / "evidence" / "headline_dcgan_s0_test.json"   # the formerly shipped DCGAN
STUDIES = {"attention": "attn8", "loss": "wgan-sn", "stabilisers": "sn-gd-ttur", "conditioning": "projection",
           "update_ratio": "nc1"}                  # studies/<name>.json -> its arm with the shared recipe (marked)
REPORT_CLASSES = (0, 1, 3, 7, 8)                   # airplane, automobile, cat, horse, ship
ATTENTION_CLASSES = (1, 7, 8)                      # test images of these classes (first of each) in D's maps
MORE_GANS = MODEL / "studies" / "more_gans"         # InfoGAN and BiGAN runs and their measures (tools/measure_more_gans.py)
SPEED_CPU = MODEL / "benchmarks" / "train_speed_cpu_1thread.txt"   # tests/benchmarks/train_speed.py's output
SPEED_GPU = MODEL / "benchmarks" / "train_speed_cuda.json"         # tools/device_check.py's speed phase
SPREAD = {label: MODEL / f"spread_anatomy_{name}.json" for label, name in SUBMITTED.items()}   # tools/spread_anatomy.py
EVAL_NOISE = MODEL / "eval_noise_dcgan.json"       # the shipped DCGAN scored again with fresh samples (tools/eval_noise.py)
LONG_RUN = MODEL / "runs" / "sagan"                # a longer, unshipped run of the SAGAN recipe (its history)
CRITIC_STUDY = MODEL / "studies" / "critic" / "results.json"   # D's pooling and drift weight (studies/critic.json)
PREVIOUS = ROOT / "report" / "evidence" / "previous_report.json"   # the previous report's FIDs and their protocol
TEXT_WIDTH_IN = (21.0 - 2 * 2.1) / 2.54            # report.tex: a4paper, margin=2.1cm
MIN_PT = 7                                         # no text in a figure prints smaller than this


def macro(name: str, value: str) -> str:
    """A LaTeX macro \\name defined as value: how the text quotes a generated number."""
    return f"\\newcommand{{\\{name}}}{{{value}}}"


def read_json(path: Path) -> dict:
    if not path.is_file():
        raise gh.GanError(f"{path} is missing: run the commands in docs/reproduce.md first")
    return json.loads(path.read_text())


def read_published(name: str) -> dict:
    """The training history of published model `name` (model/<name>_history.json.gz)."""
    path = published_history(MODEL, name)
    if not path.is_file():
        raise gh.GanError(f"{path} is missing: run the commands in docs/reproduce.md first")
    return read_history(path)


def tabular(header: list[str], rows: list[list[str]], align: str, footer: list[list[str]] = ()) -> str:
    """A booktabs tabular; `footer` rows follow the body after a rule of their own."""
    lines = [f"\\begin{{tabular}}{{{align}}}", "\\toprule", " & ".join(header) + r" \\", "\\midrule"]
    lines += [" & ".join(r) + r" \\" for r in rows]
    lines += ["\\midrule"] * bool(footer) + [" & ".join(r) + r" \\" for r in footer]
    return "\n".join(lines + ["\\bottomrule", "\\end{tabular}", ""])


def pm(s: dict, digits: int = 3) -> str:
    """mean $\\pm$ std of a gh.mean_std record."""
    return f"{s['mean']:.{digits}f}" + ("" if s["std"] is None else f" $\\pm$ {s['std']:.{digits}f}")


def p_value(p: float) -> str:
    return "$<$0.001" if p < 0.001 else f"{p:.2g}"


def signed(x: float, digits: int) -> str:
    return f"${x:+.{digits}f}$"


def interval(test: dict) -> str:
    """"$-0.067$ [$-0.47$, $+0.34$]": a Welch test's difference and its 95 % interval."""
    return f"{signed(test['diff'], 3)} [{signed(test['low'], 3)}, {signed(test['high'], 3)}]"


def welch_text(test: dict) -> str:
    """The difference, its 95 % interval and the p-value of a Welch test, for the text and the study tables."""
    return f"{interval(test)}, $p$ {p_value(test['p'])}"


DIGIT_WORDS = ("Zero", "One", "Two", "Three", "Four", "Five", "Six", "Seven", "Eight", "Nine")


def letters_key(name: str) -> str:
    """A study or arm name -> letters only, as LaTeX macro names need: attn32 -> AttnThreeTwo."""
    words = re.split(r"[^A-Za-z0-9]+", name)
    return "".join(re.sub(r"\d", lambda m: DIGIT_WORDS[int(m.group())], w[:1].upper() + w[1:]) for w in words)


def tex_name(arm: str) -> str:
    return arm.replace("_", r"\_")


# ------------------------------------------------------------------------------------------- headline study

def headline() -> tuple[dict, dict]:
    """The headline study on the H200: (results up to HEADLINE_AT, every run; results of the finished runs,
    i.e. the DCGAN's to its full budget), as `study collect` wrote them."""
    at = read_json(HEADLINE_GPU / HEADLINE.name / f"results_at{HEADLINE_AT}.json")
    full = read_json(HEADLINE_GPU / HEADLINE.name / "results.json")
    return at, full


def headline_runs() -> dict[str, list[dict]]:
    """Arm -> per seed {"seed", "batch", "evals": [(iteration, training seconds, validation FD), ...]} of the
    headline study's H200 runs (their histories and run.json)."""
    out = {}
    for arm in ("sagan", "dcgan"):
        runs = []
        for seed in HEADLINE.seeds:
            folder = HEADLINE_GPU / HEADLINE.name / f"{arm}_s{seed}"
            history, record = read_history(folder), read_json(folder / "run.json")
            runs.append({"seed": seed, "batch": record["config"]["batch_size"],
                         "evals": [(e["iter"], e["seconds"], e["fd"]) for e in history["eval"]]})
        out[arm] = runs
    return out


def budget_points(runs: dict[str, list[dict]]) -> dict[str, dict]:
    """The SAGAN and the DCGAN compared at three equal budgets, each run read at one of its own evaluations:
    "iterations": both at HEADLINE_AT; "images": the last DCGAN evaluation k whose images (k x its batch) the
    SAGAN reaches at an evaluation of its own (k x the batch ratio), every seed; "time": the DCGAN at the end of
    its budget and the SAGAN at its first evaluation at or after the latest DCGAN run's end, so the SAGAN trained
    at least as long. Per comparison and arm: iteration, images, seconds (min, max over seeds), values; the Welch
    test SAGAN - DCGAN and Holm's adjustment over the three."""
    from gankit.study_results import holm
    ratio = runs["dcgan"][0]["batch"] // runs["sagan"][0]["batch"]
    s_iters = [{i for i, _, _ in r["evals"]} for r in runs["sagan"]]
    d_iters = [{i for i, _, _ in r["evals"]} for r in runs["dcgan"]]
    k = max(i for i in set.intersection(*d_iters) if i > 0 and all(i * ratio in its for its in s_iters))
    d_end = max(r["evals"][-1][1] for r in runs["dcgan"])

    def at_iter(arm: str, it: int) -> list[tuple]:
        return [next(e for e in r["evals"] if e[0] == it) for r in runs[arm]]

    def at_time(arm: str, seconds: float) -> list[tuple]:
        return [next(e for e in r["evals"] if e[1] >= seconds) for r in runs[arm]]
    picks = {"iterations": (at_iter("sagan", HEADLINE_AT), at_iter("dcgan", HEADLINE_AT)),
             "images": (at_iter("sagan", k * ratio), at_iter("dcgan", k)),
             "time": (at_time("sagan", d_end), [r["evals"][-1] for r in runs["dcgan"]])}
    out = {}
    for name, (s, d) in picks.items():
        side = {}
        for arm, evals in (("sagan", s), ("dcgan", d)):
            iters = {e[0] for e in evals}
            if len(iters) != 1:
                raise gh.GanError(f"headline {name}: the {arm} runs were read at different iterations {iters}")
            it = iters.pop()
            side[arm] = {"iter": it, "images": it * runs[arm][0]["batch"], "values": [e[2] for e in evals],
                         "seconds": (min(e[1] for e in evals), max(e[1] for e in evals))}
        out[name] = {**side, "test": gh.welch(side["sagan"]["values"], side["dcgan"]["values"])}
    for name, q in zip(out, holm([c["test"]["p"] for c in out.values()])):
        out[name]["test"]["p_holm"] = q
    return out


def seconds_range(lo_hi: tuple[float, float]) -> str:
    lo, hi = (round(x) for x in lo_hi)
    return f"{lo}" if lo == hi else f"{lo}--{hi}"


def headline_table(points: dict[str, dict]) -> str:
    """Per budget: where each arm is read (iteration, images seen, training seconds), its validation FD there
    (mean $\\pm$ std over seeds), SAGAN minus DCGAN with Welch's 95\\% interval, p and Holm's p."""
    rows = []
    for name, c in points.items():
        cells = [f"equal {name}"]
        for arm in ("sagan", "dcgan"):
            a = c[arm]
            cells += [f"{a['iter']:,}", f"{a['images'] // 1000:,}k", seconds_range(a["seconds"]),
                      pm(gh.mean_std(a["values"]))]
        cells += [interval(c["test"]), p_value(c["test"]["p"]), p_value(c["test"]["p_holm"])]
        rows.append(cells)
    header = ["budget", "it.", "images", "s", "SAGAN FD", "it.", "images", "s", "DCGAN FD",
              "SAGAN $-$ DCGAN [95\\% CI]", "$p$", "Holm $p$"]
    return tabular(header, rows, "l@{\\hspace{6pt}}rrrc@{\\hspace{8pt}}rrrc@{\\hspace{8pt}}ccc")


def headline_macros(at: dict, full: dict, points: dict[str, dict]) -> list[str]:
    s, d, d_full = at["arms"]["sagan"], at["arms"]["dcgan"], full["arms"]["dcgan"]
    lines = [macro("HeadAt", f"{HEADLINE_AT:,}"), macro("HeadIters", f"{HEADLINE.iters:,}"),
             macro("HeadSeeds", str(len(HEADLINE.seeds))), macro("HeadEvalEvery", f"{HEADLINE.eval_every:,}"),
             macro("HeadFake", f"{HEADLINE.eval_samples:,}"),
             macro("HeadSaganStopped", ", ".join(f"{json.loads(f.read_text())['stopped']:,}" for f in sorted(
                 (HEADLINE_GPU / HEADLINE.name).glob("sagan_s*/run.json")))),
             macro("HeadSaganMs", f"{s['sec_per_iter']['mean'] * 1000:.0f}"),
             macro("HeadDcganMs", f"{d['sec_per_iter']['mean'] * 1000:.0f}"),
             macro("HeadDcganFullBestSeed", str(min(d_full["runs"], key=lambda r: r["best"])["seed"])),
             macro("HeadDcganFullBestFD", f"{min(d_full['best']['values']):.3f}"),
             macro("HeadDcganTestFD", f"{read_json(HEADLINE_DCGAN_TEST)['fd']:.3f}")]
    for name, c in points.items():
        key = name.capitalize()
        for arm in ("sagan", "dcgan"):
            a, k = c[arm], f"Head{key}{arm.capitalize()}"
            lines += [macro(f"{k}FD", pm(gh.mean_std(a["values"]))), macro(f"{k}It", f"{a['iter']:,}"),
                      macro(f"{k}Images", f"{a['images']:,}"), macro(f"{k}Seconds", seconds_range(a["seconds"]))]
        lines += [macro(f"Head{key}Diff", welch_text(c["test"])), macro(f"Head{key}P", p_value(c["test"]["p"])),
                  macro(f"Head{key}Holm", p_value(c["test"]["p_holm"]))]
    cpu = read_history(CPU_SAGAN)
    best = min(cpu["eval"], key=lambda e: e["fd"])
    cpu_at = {e["iter"]: e["fd"] for e in cpu["eval"]}
    runs = headline_runs()
    half = cpu["iter"][-1] * runs["sagan"][0]["batch"] // runs["dcgan"][0]["batch"]   # the DCGAN's iteration with
    d_half = [next(e[2] for e in r["evals"] if e[0] == half) for r in runs["dcgan"]]   # as many images seen
    lines += [macro("CpuSaganIters", f"{cpu['iter'][-1]:,}"), macro("CpuSaganBest", f"{best['fd']:.3f}"),
              macro("CpuSaganBestAt", f"{best['iter']:,}"), macro("CpuSaganFinal", f"{cpu_at[cpu['iter'][-1]]:.3f}"),
              macro("CpuSaganAtHeadAt", f"{cpu_at[HEADLINE_AT]:.3f}"),
              macro("CpuHalfIters", f"{half:,}"), macro("CpuHalfDcgan", pm(gh.mean_std(d_half)))]
    return lines


# ------------------------------------------------------------------------------------- submitted generators

def submitted() -> dict[str, tuple[dict, dict, gh.Config]]:
    """Label -> (history, test-set scores, config) of each submitted generator."""
    out = {}
    for label, name in SUBMITTED.items():
        ckpt = gh.load_checkpoint(MODEL / f"{name}_best.pt")
        out[label] = (read_published(name), read_json(MODEL / f"{name}_test.json"),
                      gh.Config.from_dict(ckpt["config"]))
    return out


def test_table(models: dict[str, tuple[dict, dict, gh.Config]]) -> str:
    """Every test-set measure of the submitted generators, one column each, and the real images' own value where
    the measure has one (the same test images for every column; precision to coverage: training images against
    the test images, what a generator sampling the data would score)."""
    tests = {label: t for label, (_, t, _) in models.items()}
    real = next(iter(tests.values()))
    if any(t["real_class_acc"] != real["real_class_acc"] or t["data"] != real["data"] or
           t["real_prdc"] != real["real_prdc"] for t in tests.values()):
        raise gh.GanError("the submitted generators were scored on different test images: evaluate them again")
    prdc = [[f"{key} (k = {real['prdc']['k']})" if key == "precision" else key,
             *(f"{t['prdc'][key]:.3f}" for t in tests.values()), f"{real['real_prdc'][key]:.3f}"]
            for key in ("precision", "recall", "density", "coverage")]
    rows = [["FD (proxy), lower is better", *(f"{t['fd']:.3f}" for t in tests.values()), "0"],
            ["KID (proxy), lower is better", *(f"{t['kid']:.4f} $\\pm$ {t['kid_std']:.4f}" for t in tests.values()),
             "0"],
            ["IS (proxy), higher is better", *(f"{t['is']:.2f} $\\pm$ {t['is_std']:.2f}" for t in tests.values()),
             "--"],
            ["class accuracy (proxy)", *(f"{t['class_acc']:.3f}" for t in tests.values()),
             f"{real['real_class_acc']:.3f}"],
            *prdc,
            ["feature distance within a class", *(f"{t['diversity']['dist_fake']:.2f}" for t in tests.values()),
             f"{real['diversity']['dist_real']:.2f}"],
            ["pixel nearest-neighbour ratio", *(f"{t['nn_ratio']:.3f}" for t in tests.values()), "1"]]
    return tabular(["measure", *tests, "real images"], rows, "l" + "c" * (len(tests) + 1))


def submitted_macros(models: dict[str, tuple[dict, dict, gh.Config]]) -> list[str]:
    lines, kept = [], {}
    for label, (history, test, cfg) in models.items():
        best = kept[label] = min(history["eval"], key=lambda e: e["fd"])
        lines += [macro(f"{label.capitalize()}Iters", f"{history['iter'][-1]:,}"),
                  macro(f"{label.capitalize()}BestFD", f"{best['fd']:.3f}"),
                  macro(f"{label.capitalize()}BestAt", f"{best['iter']:,}"),
                  macro(f"{label.capitalize()}FinalFD", f"{history['eval'][-1]['fd']:.3f}"),
                  macro(f"{label.capitalize()}TestFD", f"{test['fd']:.3f}"),
                  macro(f"{label.capitalize()}TestAcc", f"{test['class_acc']:.3f}"),
                  macro(f"{label.capitalize()}TestKid", f"{test['kid']:.4f}"),
                  macro(f"{label.capitalize()}NnRatio", f"{test['nn_ratio']:.3f}"),
                  macro(f"{label.capitalize()}FeatureDist", f"{test['diversity']['dist_fake']:.2f}"),
                  *(macro(f"{label.capitalize()}{key.capitalize()}", f"{test['prdc'][key]:.3f}")
                    for key in ("precision", "recall", "density", "coverage")),
                  macro(f"{label.capitalize()}GParams", f"{gh.count_parameters(gh.build_models(cfg)[0]):,}")]
    d_at = max((e for e in models["DCGAN"][0]["eval"] if e["iter"] <= kept["SAGAN"]["iter"]),   # the DCGAN run where
               key=lambda e: e["iter"])                                                        # the SAGAN was kept
    dcgan = models["DCGAN"][0]
    lr_from, aug_from = last_change(dcgan, "g_lr"), last_change(dcgan, "diffaug")   # the run's last setting changes
    before_aug = next(e for e in dcgan["eval"] if e["iter"] == aug_from)
    lines += [macro("DcganAtSaganBestIt", f"{d_at['iter']:,}"), macro("DcganAtSaganBestFD", f"{d_at['fd']:.3f}"),
              macro("DcganEmaFrom", f"{ema_began(dcgan, models['DCGAN'][2]):,}"),
              macro("DcganLrFrom", f"{lr_from:,}"), macro("DcganAugFrom", f"{aug_from:,}"),
              macro("DcganDLossTrainBeforeAug", f"{before_aug['d_loss_train']:.2f}"),   # D's losses on training and
              macro("DcganDLossValBeforeAug", f"{before_aug['d_loss_val']:.2f}")]     # validation images then
    spread = {label: read_json(path) for label, path in SPREAD.items()}   # why the samples sit close together
    for label, s in spread.items():
        lines.append(macro(f"{label.capitalize()}SameLabelNn", f"{100 * s['same_label_neighbour']['fake']:.0f}"))
    bands = [r for s in spread.values() for r in s["band_power_ratio"]]    # generated / real power, both models
    lines += [macro("RealSameLabelNn", f"{100 * spread['SAGAN']['same_label_neighbour']['real']:.0f}"),
              macro("SpectrumWithin", f"{100 * max(abs(r - 1) for r in bands):.0f}")]
    test = next(iter(models.values()))[1]
    lines += [macro("TestN", f"{test['n_fake']:,}"), macro("TestReal", f"{test['n_real']:,}"),
              macro("ClassifierAcc", f"{100 * test['real_class_acc']:.1f}"),
              macro("RealFeatureDist", f"{test['diversity']['dist_real']:.2f}"),
              macro("PrdcK", str(test["prdc"]["k"])),
              *(macro(f"Real{key.capitalize()}", f"{test['real_prdc'][key]:.3f}")
                for key in ("precision", "recall", "density", "coverage"))]
    return lines


# ------------------------------------------------------------------------- evidence beside the shipped models

def evidence_macros() -> list[str]:
    """Numbers that qualify the shipped models' scores: the DCGAN checkpoint scored again (EVAL_NOISE), the
    headline study's run of the shipped SAGAN's recipe and seed scored on the test set (CPU_SAGAN_TEST), the longer
    unshipped SAGAN run (LONG_RUN), the previous report's recipes re-run with this protocol (model/ref_*) and the
    previous report's own FID (PREVIOUS)."""
    noise = read_json(EVAL_NOISE)
    rerun = read_json(CPU_SAGAN_TEST)
    long = read_history(LONG_RUN)
    l_evals = {e["iter"]: e["fd"] for e in long["eval"]}
    l_last = long["iter"][-1]
    l_best = min(long["eval"], key=lambda e: e["fd"])
    previous = read_json(PREVIOUS)
    refs = {name: (read_json(MODEL / f"ref_{name}_test.json"), read_published(f"ref_{name}"))
            for name in ("sagan", "dcgan")}
    lines = [macro("NoiseMean", f"{noise['mean']:.3f}"), macro("NoiseStd", f"{noise['std']:.3f}"),
             macro("NoiseRepeats", str(len(noise["fd"]))), macro("NoiseFake", f"{noise['n_fake']:,}"),
             macro("NoiseRange", f"{min(noise['fd']):.3f} to {max(noise['fd']):.3f}"),
             macro("CpuSaganTestFD", f"{rerun['fd']:.3f}"), macro("CpuSaganTestKid", f"{rerun['kid']:.4f}"),
             macro("LongIters", f"{l_last:,}"), macro("LongBestFD", f"{l_best['fd']:.3f}"),
             macro("LongBestAt", f"{l_best['iter']:,}"), macro("LongFinalFD", f"{l_evals[l_last]:.3f}"),
             macro("LongPlateauFrom", f"{l_last - 2000:,}"), macro("LongPlateauFD", f"{l_evals[l_last - 2000]:.3f}"),
             macro("LongEmaChange", f"{next(g['from_iter'] for g in long['segments'] if 'changed' in g):,}"),
             macro("PrevFidDcgan", f"{previous['fid']['dcgan']:.1f}"), macro("PrevFidSagan", f"{previous['fid']['sagan']:.1f}"),
             macro("PrevFake", f"{previous['n_fake']:,}"), macro("PrevReal", f"{previous['n_real']:,}"),
             macro("PrevDims", f"{previous['feature_dims']:,}")]
    for name, (test, history) in refs.items():
        best = min(history["eval"], key=lambda e: e["fd"])
        k = "Ref" + name.capitalize()
        lines += [macro(f"{k}TestFD", f"{test['fd']:.3f}"), macro(f"{k}Iters", f"{history['iter'][-1]:,}"),
                  macro(f"{k}BestFD", f"{best['fd']:.3f}")]
    return lines


# ------------------------------------------------------------------------------------------------ critic scale

def critic_stats(history: dict) -> dict:
    """A SAGAN run's critic outputs per iteration (the batch means d_real = mean D(x), d_fake = mean
    D(G(z)) of each training batch): their spread over iterations, the range that holds 98% of them (1st to 99th
    percentile of real and generated together), the lag-1 correlation of d_real, and the real-fake gap."""
    real, fake = np.asarray(history["d_real"]), np.asarray(history["d_fake"])
    both, gap = np.concatenate([real, fake]), real - fake
    return {"std_real": real.std(), "std_fake": fake.std(), "low": np.percentile(both, 1),
            "high": np.percentile(both, 99), "lag1": np.corrcoef(real[:-1], real[1:])[0, 1],
            "corr": np.corrcoef(real, fake)[0, 1], "gap_median": np.median(gap),
            "gap_low": np.percentile(gap, 1), "gap_high": np.percentile(gap, 99)}


def long_gap(history: dict, window: int = 1000) -> list[tuple[int, float]]:
    """(last iteration of the window, mean real-fake gap over it) for consecutive windows of the longer run."""
    it, gap = np.asarray(history["iter"]), np.asarray(history["d_real"]) - np.asarray(history["d_fake"])
    return [(int(it[i + window - 1]), float(gap[i:i + window].mean())) for i in range(0, len(it) - window + 1, window)]


def critic_macros(shipped: dict) -> list[str]:
    """The critic statistics of the SAGAN recipe with the preset's drift weight, from the headline study's CPU run
    of seed 0 (Critic..., and that drift weight, CriticDrift), the same for the shipped SAGAN (`shipped`, its
    history; Shipped..., its own drift weight ShippedDrift), and the longer run's gap at its first and last window
    (LongGap...)."""
    c, r = critic_stats(read_history(CPU_SAGAN)), critic_stats(shipped)
    long = read_history(LONG_RUN)
    gaps = dict(long_gap(long))
    last = max(gaps)
    return [macro("CriticStdReal", f"{c['std_real']:.0f}"), macro("CriticStdFake", f"{c['std_fake']:.0f}"),
            macro("CriticLow", f"{c['low']:.0f}"), macro("CriticHigh", f"{c['high']:.0f}"),
            macro("CriticLag", f"{c['lag1']:.2f}"), macro("CriticCorr", f"{c['corr']:.2f}"),
            macro("CriticGapMedian", f"{c['gap_median']:.0f}"),
            macro("CriticGapRange", f"{c['gap_low']:.0f} to {c['gap_high']:.0f}"),
            macro("ShippedStdReal", f"{r['std_real']:.0f}"), macro("ShippedStdFake", f"{r['std_fake']:.0f}"),
            macro("ShippedLag", f"{r['lag1']:.2f}"), macro("ShippedGapMedian", f"{r['gap_median']:.0f}"),
            macro("CriticDrift", f"{read_json(CPU_SAGAN / 'run.json')['config']['drift']:g}"),
            macro("ShippedDrift", f"{gh.load_checkpoint(MODEL / 'sagan_best.pt')['config']['drift']:g}"),
            macro("LongGapFirst", f"{gaps[min(gaps)]:.0f}"), macro("LongGapFirstTo", f"{min(gaps):,}"),
            macro("LongGapLast", f"{gaps[last]:.0f}"), macro("LongGapLastTo", f"{last:,}"),
            macro("LongGapLastFrom", f"{last - 999:,}")]


def critic_study_table(results: dict) -> str:
    """Per arm of the critic study (D's pooling, the drift weight): best and final validation score, and over each
    run's last CRITIC_WINDOW iterations D's level swing, its real-fake gap and their ratio (mean $\\pm$ std over
    seeds); the arm's test against the baseline (Welch, Holm's p over the study's tests)."""
    rows = []
    for arm, a in results["arms"].items():
        t = results["tests"].get(arm)
        rows.append([tex_name(arm) + (" (baseline)" if arm == results["baseline"] else ""), pm(a["best"], 2),
                     pm(a["final"], 2), pm(a["critic_level_std"], 1), pm(a["critic_gap"], 1),
                     pm(a["critic_ratio"], 2), "--" if t is None else p_value(t["p_holm"])])
    return tabular(["arm", "best", "final", "level std", "gap", "ratio", "Holm $p$"], rows,
                   "l@{\\hspace{8pt}}cc@{\\hspace{8pt}}ccc@{\\hspace{8pt}}c")


def critic_study_macros(results: dict) -> list[str]:
    """The critic study's protocol (CriticStudy...: seeds, iterations, window) and per arm its mean best and final
    score and mean level swing, gap and ratio; each other arm's test against the sum baseline."""
    lines = [macro("CriticStudySeeds", str(min(len(a["seeds"]) for a in results["arms"].values()))),
             macro("CriticStudyIters", f"{results['protocol']['iters']:,}"),
             macro("CriticStudyWindow", f"{gankit.study_results.CRITIC_WINDOW:,}")]
    for arm, a in results["arms"].items():
        k = "CriticStudy" + letters_key(arm)
        lines += [macro(f"{k}Best", f"{a['best']['mean']:.2f}"), macro(f"{k}Final", f"{a['final']['mean']:.2f}"),
                  macro(f"{k}Level", f"{a['critic_level_std']['mean']:.0f}"),
                  macro(f"{k}Gap", f"{a['critic_gap']['mean']:.0f}"), macro(f"{k}Ratio", f"{a['critic_ratio']['mean']:.2f}")]
        if arm in results["tests"]:
            t = results["tests"][arm]
            lines += [macro(f"{k}Diff", interval(t)), macro(f"{k}P", p_value(t["p"])), macro(f"{k}Holm", p_value(t["p_holm"]))]
    return lines


def over_run(history: dict, cfg: gh.Config, fields: tuple[str, ...], show: Callable[..., str]) -> str:
    """Settings `fields` over a run as one cell: show(values) from iteration 0, then again at each resume that changed
    one of them (setting_schedule), e.g. "0.0002 / 0.0002, 5e-05 / 5e-05 from it. 64,000" for learning rates."""
    schedules = [setting_schedule(history, field, getattr(cfg, field)) for field in fields]
    at = lambda schedule, it: [v for start, v in schedule if start <= it][-1]   # noqa: E731
    starts = sorted({start for schedule in schedules for start, _ in schedule})
    return ", ".join(show(*(at(s, it) for s in schedules)) + (f" from it.\\ {it:,}" if it else "") for it in starts)


def last_change(history: dict, field: str) -> int:
    """The iteration of the last resume that changed config field `field` (GanError if none did)."""
    starts = [start for start, _ in setting_schedule(history, field, None)[1:]]
    if not starts:
        raise gh.GanError(f"no resume of the run changed {field}: the report's text says one did")
    return starts[-1]


def learning_rates(history: dict, cfg: gh.Config) -> str:
    """G's and D's learning rates over a run (over_run)."""
    return over_run(history, cfg, ("g_lr", "d_lr"), lambda g, d: f"{g:g} / {d:g}")


def hyperparameter_table(models: dict[str, tuple[dict, dict, gh.Config]]) -> str:
    """The submitted runs' settings from the config in each checkpoint; the iterations trained and the iteration
    of the kept generator from its history (a config's `iters` is the budget asked for, which a run may stop short of)."""
    cfgs = {label: cfg for label, (_, _, cfg) in models.items()}
    attn = lambda res: ", ".join(f"{r}$\\times${r}" for r in res) or "--"   # noqa: E731
    rows = {
        "backbone": lambda c: c.arch,
        "conditioning": lambda c: f"{c.cond} ({c.cond_classes} classes)",
        "$z$ size": lambda c: str(c.z_dim),
        "width $G$ / $D$": lambda c: f"{c.g_ch} / {c.d_ch}",
        "attention in $G$ / $D$": lambda c: f"{attn(c.g_attn)} / {attn(c.d_attn)}",
        "BatchNorm in $D$": lambda c: "yes" if c.arch == "dcgan" and c.d_batchnorm else "no",
        "spectral norm": lambda c: {"none": "no", "d": "$D$ only", "gd": "$G$ and $D$"}[c.spectral_norm],
        "loss": lambda c: c.loss + (f", drift {c.drift:g}" if c.drift else ""),
        "optimizer": lambda c: c.optimizer + (f" $\\beta=({c.betas[0]:g}, {c.betas[1]:g})$" if c.optimizer == "adam" else ""),
        "$D$ steps per $G$ step": lambda c: str(c.n_critic),
        "batch": lambda c: str(c.batch_size),
    }
    body = [[name] + [fn(c) for c in cfgs.values()] for name, fn in rows.items()]
    body.insert(list(rows).index("$D$ steps per $G$ step"),
                ["learning rate $G$ / $D$", *(learning_rates(h, c) for h, _, c in models.values())])
    body.append(["DiffAugment of $D$'s inputs", *(over_run(h, c, ("diffaug",), lambda p: "--" if p == "none" else
                                                           p.replace(",", ", ")) for h, _, c in models.values())])
    body.append(["EMA of $G$", *(f"{c.ema_decay:g} from it.\\ {ema_began(h, c):,}" if c.ema_decay else "--"
                                 for h, _, c in models.values())])
    body.append(["iterations trained (kept)", *(f"{h['iter'][-1]:,} ({min(h['eval'], key=lambda e: e['fd'])['iter']:,})"
                                                 for h, _, _ in models.values())])
    return tabular(["setting"] + list(cfgs), body, "l" + "c" * len(cfgs))


def architecture_tables(cfgs: dict[str, gh.Config]) -> dict[str, str]:
    """architecture_<name>_<G|D>.tex: the submitted models' G and D stage by stage (gh.layer_table)."""
    out = {}
    for label, cfg in cfgs.items():
        for who, model in zip("GD", gh.build_models(cfg)):
            out[f"architecture_{SUBMITTED[label]}_{who}.tex"] = gh.format_layer_table(gh.layer_table(model),
                                                                                       "latex") + "\n"
    return out


# --------------------------------------------------------------------------------------------------- studies

def studies() -> dict[str, dict]:
    return {name: read_json(MODEL / "studies" / name / "results.json") for name in STUDIES}


def verdict_text(test: dict) -> str:
    """A study test's verdict as the tables print it: "suggestive" below ALPHA before Holm's correction only."""
    return {"significant": "significant", "suggestive": "suggestive", "not significant": "--"}[test["verdict"]]


def study_table(name: str, results: dict) -> str:
    """Per arm: seeds, best and final score (mean $\\pm$ std), class accuracy of the best checkpoints' samples,
    cost per iteration relative to the study's baseline (its first arm; all arms timed in one process), and the
    study's own test of the arm against that baseline (results["tests"]: Welch's difference of the mean best
    with its 95\\% interval, p, Holm's p over the study's tests, verdict)."""
    arms, tests, base = results["arms"], results["tests"], results["baseline"]
    rows = []
    for arm, a in arms.items():
        t = tests.get(arm)
        label = tex_name(arm) + (" (baseline)" if arm == base else "") + ("*" if arm == STUDIES[name] else "")
        rows.append([label, pm(a["best"], 2), pm(a["final"], 2),
                     f"{a['class_acc']['mean']:.3f}" if a.get("class_acc") else "--",
                     f"{a['sec_per_iter']['mean'] / arms[base]['sec_per_iter']['mean']:.1f}$\\times$",
                     *(["--"] * 4 if t is None else [interval(t), p_value(t["p"]), p_value(t["p_holm"]), verdict_text(t)])])
    return tabular(["arm", "best", "final", "class acc.", "cost / it", "$-$ baseline [95\\% CI]", "$p$",
                    "Holm $p$", "verdict"], rows, "l@{\\hspace{8pt}}cc@{\\hspace{8pt}}c@{\\hspace{8pt}}r@{\\hspace{8pt}}c@{\\hspace{8pt}}ccc")


def study_macros(all_results: dict[str, dict]) -> list[str]:
    """Per study: <Study>Seeds, <Study>Iters, <Study>Baseline; per arm: mean best (...Best), cost per iteration
    relative to the baseline (...Cost), class accuracy (...Acc) and, for arms tested against the baseline, the
    raw and Holm-adjusted p (...P, ...Holm)."""
    lines, lowest_holm = [], []
    for name, results in all_results.items():
        arms, key = results["arms"], "Study" + letters_key(name)
        lines += [macro(f"{key}Seeds", str(min(len(a["seeds"]) for a in arms.values()))),
                  macro(f"{key}Iters", f"{results['protocol']['iters']:,}"),
                  macro(f"{key}Baseline", tex_name(results["baseline"]))]
        base = arms[results["baseline"]]["sec_per_iter"]["mean"]
        for arm, a in arms.items():
            k = key + letters_key(arm)
            lines += [macro(f"{k}Best", f"{a['best']['mean']:.2f}"),
                      macro(f"{k}Cost", f"{a['sec_per_iter']['mean'] / base:.1f}")]
            if arm in results["tests"]:
                t = results["tests"][arm]
                lines += [macro(f"{k}P", p_value(t["p"])), macro(f"{k}Holm", p_value(t["p_holm"]))]
                lowest_holm.append(t["p_holm"])
            if a.get("class_acc"):
                lines.append(macro(f"{k}Acc", f"{a['class_acc']['mean']:.3f}"))
    verdicts = [t["verdict"] for r in all_results.values() for t in r["tests"].values()]
    p = next(iter(all_results.values()))["protocol"]
    width = {json.loads((ROOT / "studies" / f"{name}.json").read_text())["width"] for name in all_results}
    if len(width) != 1:
        raise gh.GanError(f"the studies of STUDIES train at different widths {sorted(width)}: the report gives one")
    lines += [macro("StudyWidth", str(width.pop())), macro("StudyFake", f"{p['n_fake']:,}"), macro("StudyReal", f"{p['n_real']:,}"),
              macro("StudyEvalEvery", f"{p['eval_every']:,}"), macro("StudyTests", str(len(verdicts))),
              macro("StudySignificant", str(verdicts.count("significant"))),
              macro("StudySuggestive", str(verdicts.count("suggestive"))),
              macro("StudyLowestHolm", p_value(min(lowest_holm)))]
    return lines


# ------------------------------------------------------------------------------------------ InfoGAN and BiGAN

def more_gans_macros() -> list[str]:
    """InfoGAN's cluster accuracy with and without the mutual-information term, the chance level its matching
    gives shuffled codes, and BiGAN's linear probe (trained encoder, the encoder as initialised, pixels), each
    as mean $\\pm$ std over the measured seeds and their count (model/studies/more_gans/measures.json)."""
    measures = read_json(MORE_GANS / "measures.json")
    summary, runs = measures["summary"], measures["runs"]

    def value(arm: str, key: str, digits: int = 3) -> str:
        s = summary[arm][key]
        return f"{s['mean']:.{digits}f}" + ("" if s["std"] is None else f" $\\pm$ {s['std']:.{digits}f}")
    probe = next(r["measures"] for r in runs.values() if r["kind"] == "probe")
    study = gh.load_study(ROOT / "studies" / "more_gans.json")
    lines = [macro("InfoClusterAcc", value("infogan", "cluster_acc")), macro("InfoSeeds", str(summary["infogan"]["cluster_acc"]["n"])),
             macro("NoMiClusterAcc", value("codes-no-mi", "cluster_acc")),
             macro("NoMiSeeds", str(summary["codes-no-mi"]["cluster_acc"]["n"])),
             macro("ShuffledAcc", value("infogan", "shuffled_acc")),
             macro("BiganEncoder", value("bigan", "encoder")), macro("BiganRandom", value("bigan", "random_encoder")),
             macro("BiganPixels", value("bigan", "pixels")), macro("BiganSeeds", str(summary["bigan"]["encoder"]["n"])),
             macro("ProbeTrain", f"{probe['n_train']:,}"), macro("ProbeTest", f"{probe['n_test']:,}"),
             macro("MoreGansIters", f"{study.iters:,}"),
             macro("MoreGansMinutes", f"{max(r['train_cpu_seconds'] for r in runs.values()) / 60:.0f}")]
    pair = {"infogan cluster_acc", "codes-no-mi cluster_acc"}   # tools/measure_more_gans.py names "<arm> <measure>"
    info = next((w for w in measures["welch"] if {w["a"], w["b"]} == pair), None)
    lines.append(macro("InfoWelch", "no Welch test with fewer than two seeds each" if info is None else
                       f"the difference {interval(info)} is not separable from zero at this count (Welch $p$ "
                       f"{p_value(info['p'])})" if info["p"] >= 0.05 else
                       f"the difference {interval(info)} has Welch $p$ {p_value(info['p'])}"))
    return lines


# ----------------------------------------------------------------------------------------------------- speed

def speed_table() -> str:
    """Our training step against a reference loop (a DataLoader over a TensorDataset), images per second, on one
    CPU thread (tests/benchmarks/train_speed.py) and on the H200 (tools/device_check.py, float32 and bf16)."""
    rows = []
    lines = SPEED_CPU.read_text().splitlines()
    head = next(i for i, line in enumerate(lines) if line.split()[:2] == ["model", "batch"])
    for line in lines[head + 1:]:
        cells = line.split()
        if len(cells) != 7 or not cells[1].isdigit():
            break
        rows.append([cells[0].upper(), "CPU, 1 thread", "off", cells[1], f"{float(cells[4]):,.0f}",
                     f"{float(cells[5]):,.0f}", f"{float(cells[4]) / float(cells[5]):.2f}$\\times$"])
    gpu = read_json(SPEED_GPU)
    ref = {r["model"]: r for r in gpu["rows"] if r["loop"] == "reference"}
    for r in (r for r in gpu["rows"] if r["loop"] == "ours" and r["compile"] == "off"):
        rows.append([r["model"].upper(), "H200", "bf16" if r["amp"] != "off" else "off", str(r["batch"]),
                     f"{r['img_s']:,.0f}", f"{ref[r['model']]['img_s']:,.0f}",
                     f"{r['img_s'] / ref[r['model']]['img_s']:.2f}$\\times$"])
    return tabular(["model", "device", "mixed prec.", "batch", "ours, img/s", "reference, img/s", "ratio"], rows,
                   "llcrrrr")


# ---------------------------------------------------------------------------------------------------- numbers

def numbers(at: dict, full: dict, models: dict, all_results: dict, critic_study: dict) -> str:
    lines = (headline_macros(at, full, budget_points(headline_runs())) + submitted_macros(models) + evidence_macros()
             + critic_macros(models["SAGAN"][0]) + critic_study_macros(critic_study)
             + study_macros(all_results) + more_gans_macros())
    return "\n".join(lines) + "\n"


def tables() -> dict[str, str]:
    """File name -> content of every generated .tex fragment (the attention numbers come with the figures)."""
    at, full = headline()
    models, all_results, critic_study = submitted(), studies(), read_json(CRITIC_STUDY)
    cfgs = {label: cfg for label, (_, _, cfg) in models.items()}
    return {**architecture_tables(cfgs),
            **{f"study_{name}.tex": study_table(name, r) for name, r in all_results.items()},
            "headline.tex": headline_table(budget_points(headline_runs())), "test.tex": test_table(models),
            "hyperparameters.tex": hyperparameter_table(models), "speed.tex": speed_table(),
            "critic_study.tex": critic_study_table(critic_study),
            "numbers.tex": numbers(at, full, models, all_results, critic_study)}


# ---------------------------------------------------------------------------------------------------- figures

def save_figure(fig, name: str, width: float = 1.0) -> None:
    """Save `fig` as OUT/name at the size it prints: `width` of the text width (report.tex includes it at its
    natural size), the height scaled with it; refuse when any text would print under MIN_PT points."""
    import matplotlib.text
    w, h = fig.get_size_inches()
    fig.set_size_inches(width * TEXT_WIDTH_IN, h * width * TEXT_WIDTH_IN / w)
    fig.tight_layout()
    small = sorted({f"{t.get_text()!r} ({t.get_fontsize():.1f} pt)" for t in fig.findobj(matplotlib.text.Text)
                    if t.get_visible() and t.get_text().strip() and t.get_fontsize() < MIN_PT})
    if small:
        raise gh.GanError(f"{name}: text under {MIN_PT} pt at print size: {', '.join(small[:5])}")
    fig.savefig(OUT / name, bbox_inches="tight")


def save_upscaled(picture, path: Path, factor: int = 4) -> None:
    """uint8 (rows, cols, 3) -> PNG enlarged with nearest neighbours, so PDF viewers do not blur pixels."""
    from PIL import Image
    img = Image.fromarray(picture)
    img.resize((img.width * factor, img.height * factor), Image.NEAREST).save(path)


def headline_figure(at: dict, full: dict):
    """Validation FD of the headline runs against images seen (left) and training seconds (right): per arm the mean
    over seeds with a band of one standard deviation (the DCGAN to its full budget, the SAGAN to where all its
    runs got), and on the left the CPU run of the SAGAN recipe (seed 0) to its full budget."""
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, 2, figsize=(6.3, 2.3), sharey=True)
    runs = headline_runs()
    for arm, label, colour in (("sagan", "SAGAN", "C0"), ("dcgan", "DCGAN", "C1")):
        common = min(len(r["evals"]) for r in runs[arm])
        its = np.asarray([e[0] for e in runs[arm][0]["evals"][:common]])
        fd = np.asarray([[e[2] for e in r["evals"][:common]] for r in runs[arm]])
        secs = np.asarray([[e[1] for e in r["evals"][:common]] for r in runs[arm]]).mean(0)
        mean, std = fd.mean(0), fd.std(0, ddof=1)
        for ax, x in ((axes[0], its * runs[arm][0]["batch"] / 1000), (axes[1], secs)):
            ax.plot(x[1:], mean[1:], color=colour, label=f"{label}, H200, {len(runs[arm])} seeds")
            ax.fill_between(x[1:], (mean - std)[1:], (mean + std)[1:], color=colour, alpha=0.25, linewidth=0)
    cpu = read_history(CPU_SAGAN)["eval"][1:]
    axes[0].plot([e["iter"] * runs["sagan"][0]["batch"] / 1000 for e in cpu], [e["fd"] for e in cpu], color="C0",
                 linestyle="--", label="SAGAN, CPU, seed 0")
    axes[0].set_xlabel("images seen (thousands)")
    axes[1].set_xlabel("training time on the shared H200 (s)")
    axes[0].set_ylabel("validation FD (proxy)")
    for ax in axes:
        ax.set_yscale("log")
        ax.set_yticks([1.5, 2, 3, 4, 6], ["1.5", "2", "3", "4", "6"])
        ax.set_yticks([], minor=True)
        ax.grid(True, alpha=0.3)
        ax.tick_params(labelsize=8)
        ax.xaxis.label.set_size(8)
        ax.yaxis.label.set_size(8)
    axes[0].legend(fontsize=7, frameon=False, loc="upper right")
    return fig


def loss_runs(models: dict[str, tuple[dict, dict, gh.Config]]) -> dict[str, dict]:
    """Row label -> history for the loss figure: the shipped runs, whose evaluations log D's losses on validation
    and training images."""
    return {"SAGAN": models["SAGAN"][0], "DCGAN": models["DCGAN"][0]}


def losses_figure(runs: dict[str, dict], window: int = 100):
    """One row per run (label -> history): its D and G losses, and its mean D outputs on real and generated images
    (moving averages over `window` iterations), with D's loss and mean output on validation and training images
    at every evaluation (markers); one legend per column, under the bottom row, outside the data."""
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(len(runs), 2, figsize=(6.3, 3.7))

    def smooth(v):
        v = np.asarray(v, dtype=float)
        c = np.cumsum(np.insert(v, 0, 0.0))
        return np.concatenate([c[1:window] / np.arange(1, window), (c[window:] - c[:-window]) / window])
    for row, (label, history) in zip(axes, runs.items()):
        it, evals = np.asarray(history["iter"]), [e for e in history["eval"] if "d_loss_val" in e]
        ei = [e["iter"] for e in evals]
        row[0].plot(it, smooth(history["d_loss"]), color="C0", label="D")
        row[0].plot(it, smooth(history["g_loss"]), color="C1", label="G")
        row[0].plot(ei, [e["d_loss_train"] for e in evals], "o", color="C2", mfc="none", ms=4, label="D, training images")
        row[0].plot(ei, [e["d_loss_val"] for e in evals], "s", color="C3", mfc="none", ms=4, label="D, validation images")
        row[1].plot(it, smooth(history["d_real"]), color="C0", label="D(x)")
        row[1].plot(it, smooth(history["d_fake"]), color="C1", label="D(G(z))")
        row[1].plot(ei, [e["d_real_train"] for e in evals], "o", color="C2", mfc="none", ms=4, label="D(x), training")
        row[1].plot(ei, [e["d_real_val"] for e in evals], "s", color="C3", mfc="none", ms=4, label="D(x), validation")
        row[0].set_ylabel(f"{label}: loss", fontsize=8)
        row[1].set_ylabel(f"{label}: mean D output", fontsize=8)
        for ax in row:
            ax.tick_params(labelsize=7)
            ax.grid(True, alpha=0.3)
    for ax in axes[-1]:
        ax.set_xlabel("iteration", fontsize=8)
        ax.legend(fontsize=7, frameon=False, ncol=2, loc="upper center", bbox_to_anchor=(0.5, -0.32),
                  handlelength=1.2, columnspacing=0.8)
    return fig


def critic_figure(history: dict):
    """Left: a SAGAN run's (`history`: the headline study's CPU run of the recipe, seed 0, the preset's drift weight)
    batch means of D(x) and the real-fake gap at every iteration of its last 1,000. Right: the longer run's gap (mean
    over windows of 1,000 iterations) and its validation FD."""
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, 2, figsize=(6.3, 2.3))
    it, real, fake = (np.asarray(history[k]) for k in ("iter", "d_real", "d_fake"))
    last = it > it[-1] - 1000
    axes[0].plot(it[last], real[last], color="C0", linewidth=0.5, label="batch mean of D(x)")
    axes[0].plot(it[last], (real - fake)[last], color="C3", linewidth=0.5, label="D(x) $-$ D(G(z))")
    axes[0].set_xlabel("iteration (SAGAN recipe, seed 0)", fontsize=8)
    axes[0].set_ylabel("critic output", fontsize=8)
    axes[0].legend(fontsize=7, frameon=False, loc="lower left", ncol=2)
    long = read_history(LONG_RUN)
    gaps = long_gap(long)
    axes[1].plot([g[0] for g in gaps], [g[1] for g in gaps], "o-", color="C3", ms=3, label="mean D(x) $-$ D(G(z))")
    axes[1].set_xlabel("iteration (longer SAGAN run)", fontsize=8)
    axes[1].set_ylabel("real $-$ fake gap", fontsize=8, color="C3")
    twin = axes[1].twinx()
    evals = long["eval"][1:]
    twin.plot([e["iter"] for e in evals], [e["fd"] for e in evals], "s--", color="C0", ms=3)
    twin.set_ylabel("validation FD (proxy)", fontsize=8, color="C0")
    for ax in (*axes, twin):
        ax.tick_params(labelsize=7)
    for ax in axes:
        ax.grid(True, alpha=0.3)
    return fig


def figures() -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    at, full = headline()
    save_figure(headline_figure(at, full), "headline.pdf")
    models = submitted()
    save_figure(losses_figure(loss_runs(models)), "losses.pdf")
    save_figure(critic_figure(read_history(CPU_SAGAN)), "critic.pdf")
    generators = {label: gh.load_generator(MODEL / f"{name}_best.pt") for label, name in SUBMITTED.items()}
    for label, G in generators.items():
        save_upscaled(gh.image_grid(gh.sample(G, 64, seed=0)), OUT / f"grid_{SUBMITTED[label]}.png")
    fig, axes = plt.subplots(1, len(generators), figsize=(8, 2.7))
    for ax, (label, G) in zip(axes, generators.items()):
        gh.show_class_rows(G, list(REPORT_CLASSES), title=label, ax=ax)
    save_figure(fig, "classes.pdf")
    results = studies()["attention"]
    ax = gh.plot_study(results)
    ax.set_title("")
    save_figure(ax.figure, "study_attention.pdf", 0.9)
    more_gans_figure()
    if (ROOT / "data").exists():   # D's maps need the test images
        attention_figure()
    else:
        print("no data/: kept the committed attention.pdf and attention.tex")
    plt.close("all")


def more_gans_figure() -> None:
    """more_gans.pdf: InfoGAN's traversal (seed 0: a row per categorical value, a column per step of the first
    continuous code) beside BiGAN's reconstructions G(E(x)) of test images (seed 0), from the runs' best.pt;
    kept as committed where those are absent (they are not in the tree)."""
    import matplotlib.pyplot as plt
    info, bigan = MORE_GANS / "infogan_s0" / "best.pt", MORE_GANS / "bigan_s0" / "best.pt"
    if not (info.is_file() and bigan.is_file() and (ROOT / "data").exists()):
        print("no InfoGAN/BiGAN best.pt or no data/: kept the committed more_gans.pdf")
        return
    fig, axes = plt.subplots(1, 2, figsize=(6.3, 3.6), gridspec_kw={"width_ratios": [1, 1]})
    G = gh.load_generator(info)
    images = gh.traversal(G, list(range(G.config.info_cat)), 0, 8, 0)
    gh.show_grid(images, 8, "InfoGAN: rows = categorical code,\ncolumns = continuous code 0 from -1 to 1", ax=axes[0])
    G = gh.load_generator(bigan)
    test = gh.load_dataset(G.config, ROOT / "data", parts=("test",))[0]
    x = gh.to_float(test.x[torch.randperm(len(test), generator=torch.Generator().manual_seed(0))[:40]])
    rec = gh.reconstruct(G, x)
    rows = [part for i in range(0, 40, 8) for part in (x[i:i + 8], rec[i:i + 8])]
    gh.show_grid(torch.cat(rows), 8, "BiGAN: test images (odd rows)\nand G(E(x)) (even rows)", ax=axes[1])
    for ax in axes:
        ax.title.set_fontsize(8)
    save_figure(fig, "more_gans.pdf")


def sagan_discriminator() -> tuple[torch.nn.Module, int, str]:
    """A SAGAN D for the attention maps, its iteration and where it comes from: the compact training state
    model/states/sagan.pt (a generator file holds no D), the shipped generator's own run when the state's history
    holds the shipped generator's evaluation, else another run of the recipe."""
    from gankit.states import load_state
    state = load_state(MODEL / "states" / "sagan.pt")
    cfg = gh.Config.from_dict(state["config"])
    D = gh.build_models(cfg)[1]
    D.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in state["D"].items()})
    shipped = gh.load_checkpoint(MODEL / "sagan_best.pt")
    own = any(e["iter"] == shipped["iteration"] and e["fd"] == shipped["metrics"]["fd"] for e in state["history"]["eval"])
    source = ("the training state of the shipped SAGAN's own run" if own else
              f"the training state of another run of the recipe, with drift weight {cfg.drift:g}")
    return D.eval(), state["iteration"], source


def attention_panels(picked: dict[str, tuple], queries: tuple[tuple[int, int], ...] = ((8, 8), (8, 24), (24, 16))):
    """One row per image: the image with its queries marked and numbered, then each query's attention over the
    positions as a multiple of the uniform weight 1/N (log scale centred on 1, diverging colours, so a uniform map
    is white and only departures from it are coloured), one colour bar for all rows."""
    import matplotlib.pyplot as plt
    from matplotlib.colors import LogNorm
    from matplotlib.patches import Rectangle
    from gankit.data import to_uint8
    rows, cols = len(picked), len(queries) + 1
    fig = plt.figure(figsize=(6.3, 1.3 * rows + 0.3))
    grid = fig.add_gridspec(rows, cols + 1, width_ratios=[1] * cols + [0.06])
    ratios = []
    for images, attn in picked.values():
        n = attn.shape[-1]
        side = int(np.sqrt(n))
        scale = images.shape[-1] // side
        ratios.append([attn[0][(q[0] // scale) * side + q[1] // scale].view(side, side).double().numpy() * n
                       for q in queries])
    top = max(2.0, float(max(r.max() for rr in ratios for r in rr)))
    norm = LogNorm(vmin=1 / top, vmax=top)
    cmap = plt.get_cmap("RdBu_r")
    cmap = cmap.with_extremes(bad=cmap(0.0))   # a weight of exactly 0 (softmax underflow) is masked by LogNorm
    for row, ((name, (images, attn)), maps) in enumerate(zip(picked.items(), ratios)):
        side = int(np.sqrt(attn.shape[-1]))
        scale = images.shape[-1] // side
        ax = fig.add_subplot(grid[row, 0])
        ax.imshow(to_uint8(images[0]).permute(1, 2, 0).numpy())
        ax.set_ylabel(name, fontsize=7)
        for k, (q, m) in enumerate(zip(queries, maps), start=1):
            ax.add_patch(Rectangle((q[1] // scale * scale - 0.5, q[0] // scale * scale - 0.5), scale, scale,
                                   fill=False, edgecolor="white", linewidth=1.2))
            ax.text(q[1] + 2.5, q[0] + 1, str(k), color="white", fontsize=7, fontweight="bold", va="center")
            hx = fig.add_subplot(grid[row, k])
            shown = hx.imshow(m, cmap=cmap, norm=norm, interpolation="nearest")
            hx.add_patch(Rectangle((q[1] // scale - 0.5, q[0] // scale - 0.5), 1, 1, fill=False, edgecolor="black",
                                   linewidth=1.2))
            hx.set_xticks([])
            hx.set_yticks([])
            if row == 0:
                hx.set_title(f"query {k}", fontsize=7)
        ax.set_xticks([])
        ax.set_yticks([])
        if row == 0:
            ax.set_title("image", fontsize=7)
    bar = fig.colorbar(shown, cax=fig.add_subplot(grid[:, cols]))
    ticks = [t for t in (1 / 8, 1 / 4, 1 / 2, 1, 2, 4, 8, 16, 32) if 1 / top <= t <= top]
    bar.set_ticks(ticks, labels=[("1 = uniform" if t == 1 else f"{t:g}") for t in ticks])
    bar.ax.minorticks_off()          # a log axis would label its minor ticks too, in another notation
    bar.ax.tick_params(labelsize=7)
    bar.set_label(f"weight $\\times$ N (N = {attn.shape[-1]} positions)", fontsize=7)
    return fig


def attention_figure() -> None:
    """attention.pdf and attention.tex: the SAGAN's attention (its EMA generator from sagan_best.pt, D from
    sagan_discriminator()) on its own samples and on real test images, and how much the maps depend on the query."""
    G = gh.load_generator(MODEL / "sagan_best.pt")
    D, iteration, d_source = sagan_discriminator()
    real = gh.load_dataset(G.config, ROOT / "data", parts=("test",))[0]
    real = real.subset(torch.randperm(len(real), generator=torch.Generator().manual_seed(0))[:64])
    n = 64
    generated = gh.generator_attention(G, n=n, seed=0)
    on_real = gh.discriminator_attention(D, real, n)

    def dependence(layers: dict[str, tuple]) -> str:
        return ", ".join(f"{gh.query_dependence(maps):.3f}" for _, maps in layers.values())

    def gammas(model: torch.nn.Module) -> str:
        return ", ".join(f"{float(m.gamma.detach()):.3f}" for _, m in gh.attention_layers(model))
    (OUT / "attention.tex").write_text("\n".join([
        macro("GQueryDependence", dependence(generated)), macro("DRealQueryDependence", dependence(on_real)),
        macro("GammaG", gammas(G)), macro("GammaD", gammas(D)), macro("AttentionImages", str(n)),
        macro("AttentionDIteration", f"{iteration:,}"),
        macro("AttentionDSource", d_source)]) + "\n")
    names = gh.CIFAR10_CLASSES
    first = {c: int((real.y == c).nonzero()[0, 0]) for c in ATTENTION_CLASSES}
    horse = names.index("horse")
    picked = gh.by_image(next(iter(generated.values())), [f"G, sample\n({names[horse]})"], [horse])
    picked.update(gh.by_image(next(iter(on_real.values())), [f"D, real\n{names[c]}" for c in ATTENTION_CLASSES],
                              [first[c] for c in ATTENTION_CLASSES]))
    save_figure(attention_panels(picked), "attention.pdf", 0.72)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tables-only", action="store_true", help="skip the figures (no sampling)")
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    for name, text in tables().items():
        (OUT / name).write_text(text)
    if not args.tables_only:
        gh.setup(0, "cpu")
        figures()
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
