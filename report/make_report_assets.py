"""Regenerate every figure, table and quoted number of the report from the logs and checkpoints in model/.

Nothing here is typed by hand: tables (.tex fragments) and the numbers quoted in the text (numbers.tex, one
\\newcommand each) are computed from model/<name>_history.json and model/<name>_test.json of the submitted
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

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
import gan_helpers as gh  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

MODEL = ROOT / "model"
OUT = ROOT / "report" / "generated"
SUBMITTED = {"SAGAN": "sagan", "DCGAN": "dcgan"}   # label -> model/<name>_best.pt, _history.json, _test.json
HEADLINE = gh.load_study(ROOT / "studies" / "headline.json")
HEADLINE_GPU = MODEL / "studies" / "h200"          # the headline study's runs on the H200 (tools/device_check.py)
HEADLINE_AT = 3500                                 # the last evaluation every one of those runs reached
CPU_SAGAN = MODEL / "studies" / "headline" / "sagan_s0"   # the same SAGAN recipe and seed 0 on the CPU, to 6,000
STUDIES = {"attention": "attn8", "loss": "wgan-sn", "stabilisers": "sn-gd-ttur", "conditioning": "projection",
           "update_ratio": "nc1"}                  # studies/<name>.json -> its baseline arm (the shared recipe)
REPORT_CLASSES = (0, 1, 3, 7, 8)                   # airplane, automobile, cat, horse, ship
ATTENTION_CLASSES = (1, 7, 8)                      # test images of these classes (first of each) in D's maps
MORE_GANS = MODEL / "studies" / "more_gans"         # InfoGAN and BiGAN runs and their measures (tools/measure_more_gans.py)
SPEED_CPU = MODEL / "benchmarks" / "train_speed_cpu_1thread.txt"   # tests/benchmarks/train_speed.py's output
SPEED_GPU = MODEL / "benchmarks" / "train_speed_cuda.json"         # tools/device_check.py's speed phase
TEXT_WIDTH_IN = (21.0 - 2 * 2.3) / 2.54            # report.tex: a4paper, margin=2.3cm
MIN_PT = 7                                         # no text in a figure prints smaller than this


def macro(name: str, value: str) -> str:
    """A LaTeX macro \\name defined as value: how the text quotes a generated number."""
    return f"\\newcommand{{\\{name}}}{{{value}}}"


def read_json(path: Path) -> dict:
    if not path.is_file():
        raise gh.GanError(f"{path} is missing: run the commands in docs/reproduce.md first")
    return json.loads(path.read_text())


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


def headline_table(at: dict, full: dict) -> str:
    """Per arm: seeds, best, final and mean of the last three evaluations (mean $\\pm$ std over seeds) at
    HEADLINE_AT, the DCGAN also at its full budget; then SAGAN minus DCGAN with Welch's interval and p."""
    rows = []
    for label, arm, res in (("SAGAN", "sagan", at), ("DCGAN", "dcgan", at), ("DCGAN", "dcgan", full)):
        a = res["arms"][arm]
        its = res["protocol"].get("at", res["protocol"]["iters"])
        rows.append([label, f"{its:,}", str(len(a["seeds"])), pm(a["best"]), pm(a["final"]), pm(a["last"]),
                     f"{a['sec_per_iter']['mean'] * 1000:.0f}"])
    s, d = at["arms"]["sagan"], at["arms"]["dcgan"]
    tests = [gh.welch(s[k]["values"], d[k]["values"]) for k in ("best", "final", "last")]
    footer = [["difference [95\\% CI]", f"{HEADLINE_AT:,}", "", *(interval(t) for t in tests), ""],
              ["Welch $p$", "", "", *(p_value(t["p"]) for t in tests), ""]]
    return tabular(["model", "iter.", "seeds", "best", "final", "mean of last 3", "ms/it"], rows, "lrrccccr", footer)


def headline_macros(at: dict, full: dict) -> list[str]:
    s, d, d_full = at["arms"]["sagan"], at["arms"]["dcgan"], full["arms"]["dcgan"]
    lines = [macro("HeadAt", f"{HEADLINE_AT:,}"), macro("HeadIters", f"{HEADLINE.iters:,}"),
             macro("HeadSeeds", str(len(HEADLINE.seeds))), macro("HeadEvalEvery", f"{HEADLINE.eval_every:,}"),
             macro("HeadFake", f"{HEADLINE.eval_samples:,}"),
             macro("HeadSaganStopped", ", ".join(f"{json.loads(f.read_text())['stopped']:,}" for f in sorted(
                 (HEADLINE_GPU / HEADLINE.name).glob("sagan_s*/run.json"))))]
    for key in ("best", "final", "last"):
        t = gh.welch(s[key]["values"], d[key]["values"])
        name = key.capitalize()
        lines += [macro(f"HeadSagan{name}", pm(s[key])), macro(f"HeadDcgan{name}", pm(d[key])),
                  macro(f"HeadDcganFull{name}", pm(d_full[key])), macro(f"HeadDiff{name}", welch_text(t)),
                  macro(f"HeadP{name}", p_value(t["p"]))]
    t = gh.welch(s["at_time"]["values"], d["at_time"]["values"])
    lines += [macro("HeadEqualSeconds", f"{at['protocol']['equal_seconds']:.0f}"),
              macro("HeadSaganAtTime", pm(s["at_time"])), macro("HeadDcganAtTime", pm(d["at_time"])),
              macro("HeadDiffAtTime", welch_text(t)),
              macro("HeadSaganMs", f"{s['sec_per_iter']['mean'] * 1000:.0f}"),
              macro("HeadDcganMs", f"{d['sec_per_iter']['mean'] * 1000:.0f}"),
              macro("HeadDcganFullBestSeed", str(min(d_full["runs"], key=lambda r: r["best"])["seed"])),
              macro("HeadDcganFullSeedRange", f"{min(d_full['best']['values']):.3f} to {max(d_full['best']['values']):.3f}")]
    cpu = read_json(CPU_SAGAN / "history.json")
    best = min(cpu["eval"], key=lambda e: e["fd"])
    lines += [macro("CpuSaganIters", f"{cpu['iter'][-1]:,}"), macro("CpuSaganBest", f"{best['fd']:.3f}"),
              macro("CpuSaganBestAt", f"{best['iter']:,}"),
              macro("CpuSaganAtHeadAt", f"{next(e['fd'] for e in cpu['eval'] if e['iter'] == HEADLINE_AT):.3f}")]
    return lines


# ------------------------------------------------------------------------------------- submitted generators

def submitted() -> dict[str, tuple[dict, dict, gh.Config]]:
    """Label -> (history, test-set scores, config) of each submitted generator."""
    out = {}
    for label, name in SUBMITTED.items():
        ckpt = gh.load_checkpoint(MODEL / f"{name}_best.pt")
        out[label] = (read_json(MODEL / f"{name}_history.json"), read_json(MODEL / f"{name}_test.json"),
                      gh.Config.from_dict(ckpt["config"]))
    return out


def test_table(models: dict[str, tuple[dict, dict, gh.Config]]) -> str:
    """Every test-set measure of the submitted generators, one column each, and the real test images' own value
    where the measure has one (the same images for every column)."""
    tests = {label: t for label, (_, t, _) in models.items()}
    real = next(iter(tests.values()))
    if any(t["real_class_acc"] != real["real_class_acc"] or t["data"] != real["data"] for t in tests.values()):
        raise gh.GanError("the submitted generators were scored on different test images: evaluate them again")
    rows = [["FD (proxy), lower is better", *(f"{t['fd']:.3f}" for t in tests.values()), "0"],
            ["KID (proxy), lower is better", *(f"{t['kid']:.4f} $\\pm$ {t['kid_std']:.4f}" for t in tests.values()),
             "0"],
            ["IS (proxy), higher is better", *(f"{t['is']:.2f} $\\pm$ {t['is_std']:.2f}" for t in tests.values()),
             "--"],
            ["class accuracy (proxy)", *(f"{t['class_acc']:.3f}" for t in tests.values()),
             f"{real['real_class_acc']:.3f}"],
            ["nearest-neighbour ratio", *(f"{t['nn_ratio']:.3f}" for t in tests.values()), "1"]]
    return tabular(["measure", *tests, "real test images"], rows, "l" + "c" * (len(tests) + 1))


def submitted_macros(models: dict[str, tuple[dict, dict, gh.Config]]) -> list[str]:
    lines = []
    for label, (history, test, cfg) in models.items():
        best = min(history["eval"], key=lambda e: e["fd"])
        devices = sorted({s["device"] for s in history.get("segments", [])})
        lines += [macro(f"{label.capitalize()}Iters", f"{history['iter'][-1]:,}"),
                  macro(f"{label.capitalize()}BestFD", f"{best['fd']:.3f}"),
                  macro(f"{label.capitalize()}BestAt", f"{best['iter']:,}"),
                  macro(f"{label.capitalize()}Device", ", ".join(devices)),
                  macro(f"{label.capitalize()}TestFD", f"{test['fd']:.3f}"),
                  macro(f"{label.capitalize()}TestAcc", f"{test['class_acc']:.3f}"),
                  macro(f"{label.capitalize()}GParams", f"{gh.count_parameters(gh.build_models(cfg)[0]):,}")]
    test = next(iter(models.values()))[1]
    lines += [macro("TestN", f"{test['n_fake']:,}"), macro("TestReal", f"{test['n_real']:,}"),
              macro("ClassifierAcc", f"{100 * test['real_class_acc']:.1f}")]
    return lines


def hyperparameter_table(cfgs: dict[str, gh.Config]) -> str:
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
        "learning rate $G$ / $D$": lambda c: f"{c.g_lr:g} / {c.d_lr:g}",
        "$D$ steps per $G$ step": lambda c: str(c.n_critic),
        "batch": lambda c: str(c.batch_size),
        "EMA of $G$": lambda c: f"{c.ema_decay:g} from it.\\ {c.ema_start:,}" if c.ema_decay else "--",
        "iterations": lambda c: f"{c.iters:,}",
    }
    body = [[name] + [fn(c) for c in cfgs.values()] for name, fn in rows.items()]
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


def study_gaps(name: str, results: dict) -> dict[str, tuple[float, dict | None]]:
    """Arm -> (cost per iteration relative to the study's baseline arm, Welch test of its mean best against the
    lowest arm's; None for the lowest arm itself)."""
    arms = results["arms"]
    lead = min(arms, key=lambda a: arms[a]["best"]["mean"])
    base = arms[STUDIES[name]]["sec_per_iter"]["mean"]
    return {arm: (a["sec_per_iter"]["mean"] / base,
                  None if arm == lead else gh.welch(a["best"]["values"], arms[lead]["best"]["values"]))
            for arm, a in arms.items()}


def study_table(name: str, results: dict) -> str:
    """Per arm: seeds, best and final score (mean $\\pm$ std), class accuracy of the best checkpoints' samples,
    cost per iteration relative to the study's baseline arm (all arms timed in one process), and the gap of the
    mean best to the lowest arm with Welch's interval and p."""
    rows = []
    for arm, (cost, test) in study_gaps(name, results).items():
        a = results["arms"][arm]
        rows.append([tex_name(arm) + (" (baseline)" if arm == STUDIES[name] else ""), str(len(a["seeds"])),
                     pm(a["best"], 2), pm(a["final"], 2),
                     f"{a['class_acc']['mean']:.3f}" if a.get("class_acc") else "--",
                     f"{cost:.1f}$\\times$", "lowest" if test is None else welch_text(test)])
    return tabular(["arm", "seeds", "best", "final", "class acc.", "cost / it", "best $-$ lowest [95\\% CI], $p$"],
                   rows, "lrcccrl")


def study_macros(all_results: dict[str, dict]) -> list[str]:
    """Per study: <Study>Seeds, <Study>Iters; per arm: mean best (...Best), Welch p of its gap to the study's
    lowest arm (...P), cost per iteration relative to the baseline arm (...Cost), class accuracy (...Acc)."""
    lines = []
    for name, results in all_results.items():
        arms, key = results["arms"], "Study" + letters_key(name)
        lines += [macro(f"{key}Seeds", str(min(len(a["seeds"]) for a in arms.values()))),
                  macro(f"{key}Iters", f"{results['protocol']['iters']:,}")]
        for arm, (cost, test) in study_gaps(name, results).items():
            a, k = arms[arm], key + letters_key(arm)
            lines += [macro(f"{k}Best", f"{a['best']['mean']:.2f}"), macro(f"{k}Cost", f"{cost:.1f}")]
            if test is not None:
                lines.append(macro(f"{k}P", p_value(test["p"])))
            if a.get("class_acc"):
                lines.append(macro(f"{k}Acc", f"{a['class_acc']['mean']:.3f}"))
    p = next(iter(all_results.values()))["protocol"]
    width = {json.loads((ROOT / "studies" / f"{name}.json").read_text())["width"] for name in all_results}
    if len(width) != 1:
        raise gh.GanError(f"the studies of STUDIES train at different widths {sorted(width)}: the report gives one")
    lines += [macro("StudyWidth", str(width.pop())), macro("StudyFake", f"{p['n_fake']:,}"), macro("StudyReal", f"{p['n_real']:,}"),
              macro("StudyEvalEvery", f"{p['eval_every']:,}")]
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

def numbers(at: dict, full: dict, models: dict, all_results: dict) -> str:
    lines = headline_macros(at, full) + submitted_macros(models) + study_macros(all_results) + more_gans_macros()
    return "\n".join(lines) + "\n"


def tables() -> dict[str, str]:
    """File name -> content of every generated .tex fragment (the attention numbers come with the figures)."""
    at, full = headline()
    models, all_results = submitted(), studies()
    cfgs = {label: cfg for label, (_, _, cfg) in models.items()}
    return {**architecture_tables(cfgs),
            **{f"study_{name}.tex": study_table(name, r) for name, r in all_results.items()},
            "headline.tex": headline_table(at, full), "test.tex": test_table(models),
            "hyperparameters.tex": hyperparameter_table(cfgs), "speed.tex": speed_table(),
            "numbers.tex": numbers(at, full, models, all_results)}


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
    """Validation FD over iterations of every headline run: per arm the mean over seeds with a band of one
    standard deviation (the DCGAN to its full budget, the SAGAN to where all its runs got), and the CPU run of
    the SAGAN recipe (seed 0) to its full budget; legend beside the axes."""
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(6.3, 2.9))
    curves = {"SAGAN, H200": at["arms"]["sagan"]["curve"], "DCGAN, H200": full["arms"]["dcgan"]["curve"]}
    for (label, c), colour in zip(curves.items(), ("C0", "C1")):
        xs, mean, std = np.asarray(c["iter"]), np.asarray(c["mean"]), np.asarray(c["std"])
        ax.plot(xs[1:], mean[1:], color=colour, label=f"{label}, mean of {len(HEADLINE.seeds)} seeds")
        ax.fill_between(xs[1:], (mean - std)[1:], (mean + std)[1:], color=colour, alpha=0.25, linewidth=0)
    cpu = read_json(CPU_SAGAN / "history.json")["eval"][1:]
    ax.plot([e["iter"] for e in cpu], [e["fd"] for e in cpu], color="C0", linestyle="--", label="SAGAN, CPU, seed 0")
    ax.axvline(HEADLINE_AT, color="grey", linestyle=":", linewidth=1)
    ax.set_xlabel("iteration")
    ax.set_ylabel("validation FD (proxy)")
    ax.set_yscale("log")
    ax.set_yticks([1.5, 2, 3, 4, 6], ["1.5", "2", "3", "4", "6"])
    ax.set_yticks([], minor=True)
    ax.grid(True, alpha=0.3)
    ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), fontsize=8, frameon=False)
    return fig


def figures() -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    at, full = headline()
    save_figure(headline_figure(at, full), "headline.pdf")
    models = submitted()
    for label, (history, _, _) in models.items():
        save_figure(gh.plot_losses(history, title=""), f"losses_{SUBMITTED[label]}.pdf", 0.85)
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
    if (ROOT / "data").exists() and (CPU_SAGAN / "last.pt").is_file():   # D's maps need the data and D's weights
        attention_figure()
    else:
        print("no data/ or no training state of the SAGAN run: kept the committed attention.pdf and attention.tex")
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


def attention_figure() -> None:
    """attention.pdf and attention.tex: the SAGAN run's attention (its EMA generator from best.pt, D from the
    training state) on its own samples and on real test images, and how much the maps depend on the query."""
    G = gh.load_generator(MODEL / "sagan_best.pt")
    D = gh.load_discriminator(CPU_SAGAN / "last.pt")
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
        macro("AttentionDIteration", f"{gh.load_checkpoint(CPU_SAGAN / 'last.pt')['iteration']:,}")]) + "\n")
    names = gh.CIFAR10_CLASSES
    first = {c: int((real.y == c).nonzero()[0, 0]) for c in ATTENTION_CLASSES}
    horse = names.index("horse")
    picked = gh.by_image(next(iter(generated.values())), [f"G, sample\n({names[horse]})"], [horse])
    picked.update(gh.by_image(next(iter(on_real.values())), [f"D, real\n{names[c]}" for c in ATTENTION_CLASSES],
                              [first[c] for c in ATTENTION_CLASSES]))
    save_figure(gh.attention_figure(picked), "attention.pdf")


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
