"""Regenerate every figure and table of the report from the logs and checkpoints in model/.

Nothing here is typed by hand: tables (.tex fragments) and the numbers quoted in the text (numbers.tex,
one \\newcommand each) are computed from model/*_history.json, model/*_test.json,
model/studies/*/results.json, model/rescore_*.json and the configs inside model/*_best.pt; figures are drawn from the same files and generators.

usage (from the repository root):  python report/make_report_assets.py [--tables-only]
tests/test_report.py checks that the committed tables equal what this script computes from model/.
"""
from __future__ import annotations

import argparse
import inspect
import json
import re
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
import gan_helpers as gh  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

MODEL = ROOT / "model"
OUT = ROOT / "report" / "generated"
RUNS = {"DCGAN": "dcgan", "SAGAN": "sagan", "Ref. DCGAN": "ref_dcgan", "Ref. SAGAN": "ref_sagan"}
EMA_DCGAN = ("DCGAN, EMA", "dcgan_ema")     # the first DCGAN run (EMA 0.999 of G), kept for comparison:
                                             # its history and test score only (model/dcgan_ema_*.json)
LABELS = {name: label for label, name in (*RUNS.items(), EMA_DCGAN)}   # run name -> its label in tables
SHIPPED = ("dcgan", "sagan")                 # the generators the kit ships and evaluates on the test set
BUDGETS = (1000, 2000, 4000, 6000, 8000, 10000, 11000, 13000, 15000)  # iterations at which runs are compared side by side
REPORT_CLASSES = (0, 1, 3, 7, 8)             # airplane, automobile, cat, horse, ship
ATTENTION_CLASSES = (0, 1, 7, 8)             # samples whose attention the report shows: airplane, automobile, horse, ship
STUDIES = ("attention", "loss", "stabilisers", "conditioning", "update_ratio")   # studies/<name>.json
RECIPES = ("sagan_recipe", "dcgan_recipe", "sagan_long")   # the studies that chose the recipes and the long run's way on
LEVEL = 0.05                                 # relative FD difference called "level": ~3x the sample noise (eval_noise)
RESCORES = {"dcgan_ema": "rescore_dcgan_10000.json",   # run -> tools/rescore_ema.py at its last evaluation with
            "sagan": "rescore_sagan_4000.json"}        # BN statistics copied from G (docs/reproduce.md)
LONG_RUN = MODEL / "runs" / "sagan"          # the second SAGAN's long run (in progress): history, snapshots, last.pt
LONG_RESCORE = "rescore_sagan_4782.json"     # its state at the EMA decay change, G vs EMA (tools/rescore_ema.py)
LONG_LABEL = "SAGAN, long run"               # its label in figures and tables
SNAPSHOT_COUNT = 5                           # snapshot grids shown over its training (chosen from those that exist)
ATTENTION_REAL = (1, 7, 8)                   # test images of these classes (first of each) in D's attention figure
# Code changes during the shipped runs, from docs/reproduce.md: run -> (iteration from which it applies, what).
# Every one took effect at a checkpoint the run resumed from (tests check that the iteration was evaluated).
CODE_CHANGES = {
    "sagan": ((2000, "training step: $G$'s update reuses the last critic step's batch instead of a fresh forward "
                     "pass; 2 threads instead of 1"),
              (4000, "fused self-attention kernel (same values, tested); 1 thread; standing BatchNorm statistics "
                     "for the EMA generator (Table~\\ref{tab:standing})")),
    "dcgan": ((10000, "channels-last memory format for $G$ and $D$ (same values, faster kernels)"),),
    "dcgan_ema": ((10000, "standing BatchNorm statistics for the EMA generator (Table~\\ref{tab:standing})"),),
}


def macro_key(name: str) -> str:
    """Run name -> the prefix of its LaTeX macros, e.g. ref_dcgan -> RefDcgan."""
    return "".join(w.capitalize() for w in name.split("_"))


def macro(name: str, value: str) -> str:
    """A LaTeX macro \\name defined as value: how the text quotes a generated number."""
    return f"\\newcommand{{\\{name}}}{{{value}}}"


def read_json(path: Path) -> dict:
    if not path.is_file():
        raise gh.GanError(f"{path} is missing: run the commands in docs/reproduce.md first")
    return json.loads(path.read_text())


def histories() -> dict[str, dict]:
    """Each run's logged history (the four of RUNS, then the EMA DCGAN). For our two EMA runs the re-scoring of
    the state at the switch to standing BatchNorm statistics (tools/rescore_ema.py) joins the logged
    evaluations as one more, marked "rescored"."""
    hists = {label: read_json(MODEL / f"{name}_history.json") for name, label in LABELS.items()}
    for name, r in rescores().items():
        extra = {"iter": r["iteration"], **r["standing_bn_stats"], "rescored": True}
        hists[LABELS[name]]["eval"] = sorted(hists[LABELS[name]]["eval"] + [extra], key=lambda e: e["iter"])
    return hists


def mark(e: dict) -> str:
    """A dagger on values that come from the re-scoring rather than the training log."""
    return "$^\\dagger$" if e.get("rescored") else ""


def config_of(name: str) -> gh.Config:
    """The config of a published run: from model/<name>_best.pt, or from model/cards/<name>.json for the runs whose
    weights are not shipped (the checkpoint's record without its weights)."""
    ckpt = MODEL / f"{name}_best.pt"
    record = gh.load_checkpoint(ckpt) if ckpt.is_file() else read_json(MODEL / "cards" / f"{name}.json")
    return gh.Config.from_dict(record["config"])


def configs() -> dict[str, gh.Config]:
    return {label: config_of(name) for label, name in RUNS.items()}


def trained(history: dict) -> int:
    """Iterations a run completed."""
    return history["iter"][-1] if history["iter"] else 0


def best_upto(history: dict, upto: int | None) -> dict | None:
    """Best validation evaluation at iterations <= upto (None when the run never got that far)."""
    if upto is not None and trained(history) < upto:
        return None
    evals = [e for e in history["eval"] if upto is None or e["iter"] <= upto]
    return min(evals, key=lambda e: e["fd"])


def mean_std(values: list[float]) -> tuple[float, float]:
    return statistics.mean(values), statistics.stdev(values) if len(values) > 1 else 0.0


# ----------------------------------------------------------------------------------------------------
# tables
# ----------------------------------------------------------------------------------------------------

def tabular(header: list[str], rows: list[list[str]], align: str) -> str:
    lines = [f"\\begin{{tabular}}{{{align}}}", "\\toprule", " & ".join(header) + r" \\", "\\midrule"]
    lines += [" & ".join(r) + r" \\" for r in rows]
    return "\n".join(lines + ["\\bottomrule", "\\end{tabular}", ""])


def fmt_attn(res: tuple[int, ...]) -> str:
    return ", ".join(f"{r}$\\times${r}" for r in res) or "--"


def hyperparameter_table(cfgs: dict[str, gh.Config], hists: dict[str, dict]) -> str:
    rows = {
        "backbone": lambda c: c.arch,
        "classes (conditioning)": lambda c: str(c.cond_classes) if c.cond_classes else "uncond.",
        "$z$ size": lambda c: str(c.z_dim),
        "width $G$ / $D$": lambda c: f"{c.g_ch} / {c.d_ch}",
        "attention in $G$": lambda c: fmt_attn(c.g_attn),
        "attention in $D$": lambda c: fmt_attn(c.d_attn),
        "spectral norm": lambda c: {"none": "no", "d": "$D$ only", "gd": "yes"}[c.spectral_norm],
        "loss": lambda c: c.loss,
        "Lipschitz": lambda c: {"none": "SN", "clip": f"clip $\\pm{c.clip_value}$",
                                "gp": f"GP $\\lambda={c.gp_weight:g}$"}[c.lipschitz] if c.loss == "wgan" else "--",
        "drift $\\epsilon$": lambda c: f"{c.drift:g}" if c.drift else "--",
        "optimizer": lambda c: c.optimizer + (f" $\\beta=({c.betas[0]:g}, {c.betas[1]:g})$" if c.optimizer == "adam" else ""),
        "lr $G$ / $D$": lambda c: f"{c.g_lr:g} / {c.d_lr:g}",
        "$n_\\text{critic}$": lambda c: str(c.n_critic),
        "batch": lambda c: str(c.batch_size),
        "EMA of $G$": lambda c: f"{c.ema_decay:g} from {c.ema_start}" if c.ema_decay else "--",
    }
    body = [[name] + [fn(c) for c in cfgs.values()] for name, fn in rows.items()]
    body.append(["iterations trained"] + [f"{trained(hists[label]):,}" for label in cfgs])
    return tabular(["setting"] + list(cfgs), body, "l" + "c" * len(cfgs))


def budget_table(hists: dict[str, dict]) -> str:
    def cell(h: dict, upto: int) -> str:
        best = best_upto(h, upto)
        return "--" if best is None else f"{best['fd']:.3f}{mark(best)}"
    body = [[f"{upto:,}"] + [cell(h, upto) for h in hists.values()] for upto in BUDGETS]
    return tabular(["iterations"] + list(hists), body, "r" + "c" * len(hists))


def training_hours(history: dict) -> str:
    """Hours spent in training steps (evaluations excluded), from the last evaluation's `seconds`; '--' for
    histories from before train() logged it."""
    seconds = [e["seconds"] for e in history["eval"] if "seconds" in e]
    return f"{seconds[-1] / 3600:.1f}" if seconds else "--"


def results_table(hists: dict[str, dict]) -> str:
    body = []
    for name, label in LABELS.items():
        best = best_upto(hists[label], None)
        test_path = MODEL / f"{name}_test.json"
        test = read_json(test_path) if test_path.is_file() else None
        cfg = config_of(name)
        images = trained(hists[label]) * cfg.batch_size * cfg.n_critic
        body.append([label, f"{trained(hists[label]):,}", f"{images / 1e6:.2f}M", training_hours(hists[label]),
                     f"{best['fd']:.3f}{mark(best)}", f"{best['iter']:,}",
                     f"{best['kid']:.4f}",
                     f"{test['fd']:.3f}" if test else "--",
                     f"{test['kid']:.4f} $\\pm$ {test['kid_std']:.4f}" if test else "--"])
    return tabular(["run", "iterations", "images seen", "hours", "best val.\\ FD", "at", "val.\\ KID", "test FD",
                    "test KID"], body, "lrrrrrrrr")


def measures_table() -> str:
    """Every measure of the test-set scores (model/<run>_test.json, `evaluate --json`) of each run, the shipped
    generators first (gh.score_table)."""
    return gh.score_table({label: read_json(MODEL / f"{name}_test.json") for name, label in LABELS.items()},
                          "latex") + "\n"


def last_evals(history: dict, n: int) -> str:
    """The last n validation scores of a run and their iterations, as a phrase: "1.658, 1.633 and 1.635 at
    iterations 9,000, 10,000 and 11,000"."""
    evals = history["eval"][-n:]
    scores = [f"{e['fd']:.3f}" for e in evals]
    iters = [f"{e['iter']:,}" for e in evals]
    return f"{', '.join(scores[:-1])} and {scores[-1]} at iterations {', '.join(iters[:-1])} and {iters[-1]}"


def ema_change(history: dict) -> dict[str, str]:
    """Where the long run's EMA decay changed on a resume (the segments train() logs): At, Before, After, and
    Span, the iterations the EMA averaged over before."""
    for segment in history.get("segments", []):
        if "ema_decay" in segment.get("changed", {}):
            before, after = segment["changed"]["ema_decay"]
            return {"At": f"{segment['from_iter']:,}", "Before": f"{before:g}", "After": f"{after:g}",
                    "Span": f"{round(1 / (1 - before)):,}"}   # iterations an EMA of this decay averages over
    raise gh.GanError(f"{LONG_RUN}/history.json logs no change of ema_decay, which the report describes")


def numbers(hists: dict[str, dict], cfgs: dict[str, gh.Config], studies: dict[str, dict]) -> str:
    """\\newcommand macros for every number quoted in the text."""
    lines = []
    for label, name in RUNS.items():
        key = macro_key(name)
        h = hists[label]
        best = best_upto(h, None)
        lines += [macro(f"{key}Iters", f"{trained(h):,}"), macro(f"{key}BestFD", f"{best['fd']:.3f}"),
                  macro(f"{key}BestAt", f"{best['iter']:,}"), macro(f"{key}EvalFake", str(best["n_fake"])),
                  macro(f"{key}EvalReal", str(best["n_real"]))]
        G = gh.build_models(cfgs[label])[0]
        lines.append(macro(f"{key}GParams", f"{gh.count_parameters(G):,}"))
    label, ema_name = EMA_DCGAN
    best, key = best_upto(hists[label], None), macro_key(ema_name)
    lines += [macro(f"{key}Iters", f"{trained(hists[label]):,}"), macro(f"{key}BestFD", f"{best['fd']:.3f}"),
              macro(f"{key}BestAt", f"{best['iter']:,}")]
    for name in (*SHIPPED, ema_name):
        test = read_json(MODEL / f"{name}_test.json")
        key = macro_key(name)
        lines += [macro(f"{key}TestFD", f"{test['fd']:.3f}"), macro(f"{key}TestN", f"{test['n_fake']:,}"),
                  macro(f"{key}TestReal", f"{test['n_real']:,}")]
    for name, r in rescores().items():
        key = macro_key(name)
        lines += [macro(f"{key}SwitchIter", f"{r['iteration']:,}"),
                  macro(f"{key}CopiedFD", f"{r['copied_bn_stats']['fd']:.3f}"),
                  macro(f"{key}StandingFD", f"{r['standing_bn_stats']['fd']:.3f}"),
                  macro(f"{key}TrainedFD", f"{r['trained_G']['fd']:.3f}")]
    dependence = [gh.query_dependence(attn) for _, attn in
                  gh.generator_attention(gh.load_generator(MODEL / "sagan_best.pt"), n=64, seed=0).values()]
    lines.append(macro("SaganQueryDependence", ", ".join(f"{d:.2f}" for d in dependence)))
    sagan_weights = gh.load_checkpoint(MODEL / "sagan_best.pt")["G"]
    gammas = [f"{float(v):.3f}" for k, v in sagan_weights.items() if k.endswith("gamma")]
    standing = inspect.signature(gh.standing_batch_norm).parameters
    lines += [macro("StandingBatches", str(standing["n_batches"].default)),
              macro("StandingBatchSize", str(standing["batch_size"].default))]
    noise = read_json(MODEL / "eval_noise_dcgan.json")
    lines += [macro("SaganGammaG", ", ".join(gammas)), macro("LevelPercent", f"{LEVEL * 100:.0f}"),
              macro("NoiseSeeds", str(len(noise["fd"]))),
              macro("NoisePercent", f"{100 * noise['std'] / noise['mean']:.1f}")]
    sagan, ref = cfgs["SAGAN"], cfgs["Ref. SAGAN"]
    lines += [macro("MetricName", best_upto(hists["DCGAN"], None)["metric"].replace("_", r"\_")),
              macro("SaganGCh", str(sagan.g_ch)), macro("SaganDCh", str(sagan.d_ch)),
              macro("SaganGLr", f"{sagan.g_lr:g}"), macro("SaganDLr", f"{sagan.d_lr:g}"),
              macro("SaganBetas", f"({sagan.betas[0]:g}, {sagan.betas[1]:g})"),
              macro("SaganDrift", f"{sagan.drift:g}"), macro("RefSaganClip", f"{ref.clip_value:g}"),
              macro("FullGCh", str(gh.Config.sagan().g_ch)), macro("FullDCh", str(gh.Config.sagan().d_ch))]
    options = speed_options(SPEED.read_text())
    lines += [macro(f"Speed{what.capitalize()}{model.capitalize()}", f"{o[what]:.2f}")
              for model, o in options.items() for what in ("amp", "compile")]
    study = gh.load_study(ROOT / "studies" / f"{STUDIES[0]}.json")   # every study shares this protocol (tested)
    cfg = study.config(next(iter(study.arms)), study.seeds[0])
    lines += [macro("StudyWidth", str(cfg.g_ch)), macro("StudyBatch", str(cfg.batch_size)),
              macro("StudyIters", f"{study.iters:,}"), macro("StudyEvalEvery", str(study.eval_every)),
              macro("StudyFake", f"{study.eval_samples:,}"), macro("StudySeeds", str(len(study.seeds))),
              macro("StudyImages", f"{study.iters * cfg.batch_size:,}"),
              macro("StudyEpochs", f"{study.iters * cfg.batch_size / (50_000 - cfg.val_size):.1f}"),
              macro("StudyReal", f"{cfg.val_size:,}"), macro("StudyEmaStart", f"{cfg.ema_start:,}"),
              macro("StudyProgress", study_progress(studies)), macro("DuplicateFraction", f"{gh.DUPLICATE_FRACTION:g}")]
    lines += study_macros(studies)
    long, snaps = read_json(LONG_RUN / "history.json"), gh.snapshots(LONG_RUN)
    best = best_upto(long, None)
    lines += [macro("LongIters", f"{trained(long):,}"), macro("LongEvalIters", f"{long['eval'][-1]['iter']:,}"),
              macro("LongBestFD", f"{best['fd']:.3f}"), macro("LongBestAt", f"{best['iter']:,}"),
              macro("LongClassAcc", f"{best['class_acc']:.2f}"),
              macro("LongLastEvals", last_evals(long, 3)),
              macro("LongTraining", gh.describe_segments(long).replace("_", "\\_").replace("->", "$\\to$")),
              *(macro(f"LongEma{what}", value) for what, value in ema_change(long).items()),
              *(macro(f"LongRescore{who}{what}", fmt.format(r[key][field]))
                for r in [read_json(MODEL / LONG_RESCORE)]
                for who, key in (("G", "trained_G"), ("Ema", "standing_bn_stats"))
                for what, field, fmt in (("FD", "fd", "{:.3f}"), ("Acc", "class_acc", "{:.2f}"), ("Fake", "n_fake", "{:,}"))),
              macro("SnapshotIters", ", ".join(f"{i:,}" for i in chosen_snapshots(snaps, SNAPSHOT_COUNT)))]
    if "budget" in studies:
        pilot = studies["budget"]["arms"]["base"]["curve"]
        fd = dict(zip(pilot["iter"], pilot["mean"]))
        lines += [macro("BudgetIters", f"{pilot['iter'][-1]:,}"), macro("BudgetStartFD", f"{fd[0]:.2f}"),
                  macro("BudgetStudyFD", f"{fd[study.iters]:.2f}"), macro("BudgetFinalFD", f"{pilot['mean'][-1]:.2f}")]
    return "\n".join(lines) + "\n"


CONFIG_WORDS = {   # Config field -> how the report names it (fields not listed here are not model settings)
    "arch": "backbone", "z_dim": "latent size", "cond": "conditioning", "g_ch": "$G$ width", "d_ch": "$D$ width",
    "g_attn": "attention in $G$", "d_attn": "attention in $D$", "spectral_norm": "spectral normalization",
    "loss": "loss", "lipschitz": "Lipschitz constraint", "drift": "drift term", "optimizer": "optimizer",
    "g_lr": "$G$ learning rate", "d_lr": "$D$ learning rate", "betas": "Adam's $\\beta$", "n_critic": "$D$ steps per $G$ step",
    "batch_size": "batch size", "ema_decay": "EMA of $G$", "diffaug": "augmentation", "acgan_weight": "class-loss weight"}


def config_differences(a: gh.Config, b: gh.Config) -> str:
    """Sentence listing the model and training settings in which configs a and b differ, in CONFIG_WORDS order,
    and those they share: generated, so the report cannot claim a comparison is more controlled than it is."""
    differ = [w for f, w in CONFIG_WORDS.items() if getattr(a, f) != getattr(b, f)
              and not (f == "acgan_weight" and not gh.CONDITIONINGS[a.cond].d_classifier
                       and not gh.CONDITIONINGS[b.cond].d_classifier)]
    same = [w for f, w in CONFIG_WORDS.items() if getattr(a, f) == getattr(b, f) and f != "acgan_weight"
            and getattr(a, f) not in ("none", 0, ())]          # "both have no X" is not a shared setting
    if not differ:
        return "The shipped SAGAN and DCGAN share every model and training setting.\n"
    return (f"The shipped SAGAN and DCGAN differ in {len(differ)} settings: {', '.join(differ)}; they share "
            f"{', '.join(same) or 'none of them'}. A difference between the two models is the effect of all of "
            f"these together, not of self-attention alone (Section~\\ref{{sec:studies}} varies one at a time).\n")


def percent_of(a: float, b: float) -> str:
    """|a - b| as a percentage of b, e.g. '12\\%'."""
    return f"{100 * abs(a - b) / b:.0f}\\%"


def compare(a: float, b: float) -> str:
    """'beats' / 'is level with' / 'does not beat': a level result is within LEVEL of b (lower is better)."""
    if abs(a - b) <= LEVEL * b:
        return "is level with"
    return "beats" if a < b else "does not beat"


def verdict(hists: dict[str, dict], cfgs: dict[str, gh.Config]) -> str:
    """The sentences that compare the runs, written from the numbers so text and tables cannot disagree."""
    dc, sa = best_upto(hists["DCGAN"], None), best_upto(hists["SAGAN"], None)
    if compare(sa["fd"], dc["fd"]) == "beats":
        text = (f"The SAGAN's best checkpoint is {percent_of(sa['fd'], dc['fd'])} lower than the DCGAN's "
                f"on the validation metric.")
    elif compare(sa["fd"], dc["fd"]) == "is level with":
        text = (f"The SAGAN's and the DCGAN's best checkpoints are level on the validation metric "
                f"({percent_of(sa['fd'], dc['fd'])} apart, within the {LEVEL * 100:.0f}\\% we treat as noise).")
    else:
        text = (f"At these budgets the SAGAN does not beat the DCGAN: its best checkpoint is "
                f"{percent_of(sa['fd'], dc['fd'])} higher than the DCGAN's on the validation metric.")
    budget = trained(hists["SAGAN"])
    dc_same = best_upto(hists["DCGAN"], budget)
    if dc_same is not None:
        comparison = "higher" if sa["fd"] < dc_same["fd"] else "lower"
        text += (f" Within the SAGAN's {budget:,} iterations the DCGAN's best was {dc_same['fd']:.3f}{mark(dc_same)}, "
                 f"{comparison} than the SAGAN's {sa['fd']:.3f}{mark(sa)}; note that a SAGAN iteration uses "
                 f"{cfgs['SAGAN'].batch_size} images and a DCGAN iteration {cfgs['DCGAN'].batch_size}.")
    beaten = []
    for ours, ref in (("DCGAN", "Ref. DCGAN"), ("SAGAN", "Ref. SAGAN")):
        budget = min(trained(hists[ours]), trained(hists[ref]))
        a, b = best_upto(hists[ours], budget), best_upto(hists[ref], budget)
        beaten.append(f"our {ours} {compare(a['fd'], b['fd'])} the reference recipe "
                      f"({a['fd']:.3f}{mark(a)} vs {b['fd']:.3f} within {budget:,} iterations)")
    return text + " Against the previous report's recipes at equal iterations, " + " and ".join(beaten) + ".\n"


def rescores() -> dict[str, dict]:
    """Run name -> its re-scoring at the switch to standing BN statistics (tools/rescore_ema.py)."""
    return {name: read_json(MODEL / file) for name, file in RESCORES.items()}


def standing_table(rescored: dict[str, dict]) -> str:
    body = [[LABELS[name], f"{r['iteration']:,}"]
            + [f"{r[way]['fd']:.3f}" for way in ("copied_bn_stats", "standing_bn_stats", "trained_G")]
            for name, r in rescored.items()]
    return tabular(["run", "iteration", "EMA, copied stats", "EMA, standing stats", "trained $G$"], body, "lrccc")


def code_change_table(hists: dict[str, dict]) -> str:
    """CODE_CHANGES as a table: run, the iteration from which a change applies, the change. GanError when a
    change is dated at an iteration the run never evaluated (changes took effect at resumed checkpoints)."""
    body = []
    for name, changes in CODE_CHANGES.items():
        evaluated = {e["iter"] for e in hists[LABELS[name]]["eval"]}
        for iteration, what in changes:
            if iteration not in evaluated:
                raise gh.GanError(f"CODE_CHANGES: {name} was not evaluated at iteration {iteration}")
            body.append([LABELS[name], f"{iteration:,}", what])
    return tabular(["run", "from iteration", "change"], body, "lrp{0.62\\textwidth}")


def chosen_snapshots(found: dict[int, Path], count: int) -> list[int]:
    """`count` iterations of the snapshot grids `found` ({iteration: PNG}, gh.snapshots), evenly spread from the
    first to the last (all of them when there are fewer)."""
    its = sorted(found)
    if len(its) <= count:
        return its
    return sorted({its[round(k * (len(its) - 1) / (count - 1))] for k in range(count)})


def attention_numbers(G: torch.nn.Module, D: torch.nn.Module, real: gh.ImageSet, n: int = 64
                      ) -> tuple[dict[str, tuple], str]:
    """The long run's attention on n images: G's layers on its samples (labels cycling through the classes), D's
    layers on those samples and on n real images. Returns ({row name: (images, maps)} for the figure, with one
    row per layer and source) and the macros quoting gh.query_dependence of each and the layers' gamma."""
    generated = gh.generator_attention(G, n=n, seed=0)
    images = next(iter(generated.values()))[0]
    fake = gh.ImageSet(gh.to_uint8(images), torch.arange(n) % G.config.cond_classes)
    on_fake = gh.discriminator_attention(D, fake, n)
    on_real = gh.discriminator_attention(D, real, n)

    def dependence(layers: dict[str, tuple]) -> str:
        return ", ".join(f"{gh.query_dependence(maps):.3f}" for _, maps in layers.values())

    def gammas(model: torch.nn.Module) -> str:
        return ", ".join(f"{float(m.gamma.detach()):.3f}" for _, m in gh.attention_layers(model))
    tex = "\n".join([macro("LongGQueryDependence", dependence(generated)),
                      macro("LongDFakeQueryDependence", dependence(on_fake)),
                      macro("LongDRealQueryDependence", dependence(on_real)),
                      macro("LongGammaG", gammas(G)), macro("LongGammaD", gammas(D)),
                      macro("AttentionImages", str(n))]) + "\n"
    return {"generated": generated, "fake": on_fake, "real": on_real}, tex


def architecture_tables(cfgs: dict[str, gh.Config]) -> dict[str, str]:
    """architecture_<run>_<G|D>.tex: the shipped models' G and D stage by stage (gh.layer_table)."""
    out = {}
    for name in SHIPPED:
        for who, model in zip("GD", gh.build_models(cfgs[LABELS[name]])):
            out[f"architecture_{name}_{who}.tex"] = gh.format_layer_table(gh.layer_table(model), "latex") + "\n"
    return out


SPEED = MODEL / "benchmarks" / "train_speed_cpu_1thread.txt"   # tests/benchmarks/train_speed.py's output


def speed_rows(text: str) -> list[dict]:
    """The per-model rows of a train_speed.py report: model, batch, it/s and images/s of our step and of the
    reference loop, and their ratio."""
    lines = text.splitlines()
    head = next(i for i, line in enumerate(lines) if line.split()[:2] == ["model", "batch"])
    rows = []
    for line in lines[head + 1:]:
        cells = line.split()
        if len(cells) != 7 or not cells[1].isdigit():
            break
        rows.append({"model": cells[0], "batch": int(cells[1]), "ours_its": float(cells[2]),
                     "ref_its": float(cells[3]), "ours_img": float(cells[4]), "ref_img": float(cells[5]),
                     "ratio": float(cells[6].rstrip("x"))})
    return rows


def speed_options(text: str) -> dict[str, dict[str, float]]:
    """Model -> speed of our step with bf16 autocast ("amp") and with torch.compile ("compile"), each relative to
    our plain step, from a train_speed.py report's options lines."""
    found = re.findall(r"^(\w+): plain .*?, amp ([\d.]+)x / [\d.]+x, compile ([\d.]+)x", text, re.M)
    return {model: {"amp": float(amp), "compile": float(comp)} for model, amp, comp in found}


def speed_table(text: str) -> str:
    names = {"dcgan": "DCGAN", "sagan": "SAGAN (ResNet, width 64)"}
    body = [[names.get(r["model"], r["model"]), str(r["batch"]), f"{r['ours_img']:,.0f}", f"{r['ref_img']:,.0f}",
             f"{r['ratio']:.2f}$\\times$"] for r in speed_rows(text)]
    device = text.splitlines()[0].removeprefix("device: ")
    return tabular(["model", "batch", "ours, images/s", "reference loop, images/s", "ours / reference"], body,
                   "lrrrr") + f"% {device}\n"


def study_results() -> dict[str, dict]:
    """Study name -> its results file (model/studies/<name>/results.json, written by `study run|collect`), for
    the studies of STUDIES and the budget pilot that have one."""
    return {name: read_json(path) for name in (*STUDIES, *RECIPES, "budget")
            if (path := MODEL / "studies" / name / "results.json").is_file()}


def tex_name(arm: str) -> str:
    return arm.replace("_", r"\_")


DIGIT_WORDS = ("Zero", "One", "Two", "Three", "Four", "Five", "Six", "Seven", "Eight", "Nine")


def letters_key(name: str) -> str:
    """A study or arm name -> letters only, as LaTeX macro names need: attn32 -> AttnThreeTwo,
    sn-gd-ttur -> SnGdTtur."""
    words = re.split(r"[^A-Za-z0-9]+", name)
    return "".join(re.sub(r"\d", lambda m: DIGIT_WORDS[int(m.group())], w[:1].upper() + w[1:]) for w in words)


def study_macros(studies: dict[str, dict]) -> list[str]:
    """Per study of STUDIES and RECIPES, the fewest seeds any arm has finished (<Study>Seeds); per arm: mean best
    score (<Study><Arm>Best), mean score at the training time every run of the study reached (...AtTime), mean
    class accuracy of the best checkpoints (...Acc) and seconds per iteration as a multiple of the study's
    cheapest arm (...Cost)."""
    lines = []
    for name in (*STUDIES, *RECIPES):
        if name not in studies:
            continue
        arms = studies[name]["arms"]
        cheapest = min(a["sec_per_iter"]["mean"] for a in arms.values())
        lines.append(macro(f"Study{letters_key(name)}Seeds", str(min(len(a["seeds"]) for a in arms.values()))))
        for arm, a in arms.items():
            key = "Study" + letters_key(name) + letters_key(arm)
            lines += [macro(f"{key}Best", f"{a['best']['mean']:.3f}"), macro(f"{key}AtTime", f"{a['at_time']['mean']:.3f}"),
                      macro(f"{key}Cost", f"{a['sec_per_iter']['mean'] / cheapest:.1f}")]
            if a.get("class_acc"):   # None where an arm is unconditional
                lines.append(macro(f"{key}Acc", f"{a['class_acc']['mean']:.2f}"))
    return lines


def study_progress(studies: dict[str, dict]) -> str:
    """The protocol's sentence on how far the five studies are: finished, or which are still running."""
    running = [name for name in STUDIES if name not in studies or studies[name]["missing"]]
    if not running:
        return ("Every run of the five studies has finished. The line above each table lists the differences "
                "in the best score larger than the two arms' standard deviations added.")
    return (f"Still running: {', '.join(tex_name(n) for n in running)}; arms with fewer seeds than planned are "
            "marked by their seed count, and the line above each table lists the runs not finished yet and the "
            "differences in the best score larger than the two arms' standard deviations added.")


def study_verdict(results: dict) -> str:
    """What a study's table shows, in sentences written from its numbers: seeds per arm, runs still missing,
    and the pairs of arms whose best scores, and whose scores at equal training time, differ by more than the
    spread over seeds (gh.study_differences)."""
    arms = results["arms"]
    seeds = sorted({len(a["seeds"]) for a in arms.values()})
    text = f"Seeds per arm: {seeds[0]}" + (f" to {seeds[-1]}." if len(seeds) > 1 else ".")
    if results["missing"]:
        text += f" Runs not finished yet: {', '.join(tex_name(m) for m in results['missing'])}."
    if max(seeds) < 2:
        return text + " With one seed there is no spread to compare a difference with, so no difference is called.\n"
    for key, what in (("best", "the best score"), ("at_time", "the score at equal training time")):
        pairs = gh.study_differences(results, key)
        if pairs:
            text += (f" Differences in {what} larger than the two arms' standard deviations added: "
                     + "; ".join(f"{tex_name(lo)} below {tex_name(hi)} by {gap:.3g}" for lo, hi, gap in pairs)
                     + ("; every other pair is within the spread." if len(pairs) < len(arms) * (len(arms) - 1) // 2
                        else "."))
        else:
            text += f" No two arms differ in {what} by more than their standard deviations added."
    return text + "\n"


def study_tables(studies: dict[str, dict]) -> dict[str, str]:
    """study_<name>.tex (the table, gh.study_table) and study_<name>_verdict.tex for every study of STUDIES and
    RECIPES; a study without a results file yet gets one line saying so."""
    out = {}
    for name in (*STUDIES, *RECIPES):
        if name in studies:
            out[f"study_{name}.tex"] = gh.study_table(studies[name], "latex") + "\n"
            out[f"study_{name}_verdict.tex"] = study_verdict(studies[name])
        else:
            out[f"study_{name}.tex"] = "\\emph{No run of this study has finished yet.}\n"
            out[f"study_{name}_verdict.tex"] = "\n"
    return out


def tables() -> dict[str, str]:
    """File name -> content of every generated .tex fragment."""
    hists, cfgs, studies = histories(), configs(), study_results()
    return {**architecture_tables(cfgs), **study_tables(studies),
            "hyperparameters.tex": hyperparameter_table(cfgs, hists),
            "budgets.tex": budget_table(hists),
            "results.tex": results_table(hists),
            "measures.tex": measures_table(),
            "standing.tex": standing_table(rescores()),
            "numbers.tex": numbers(hists, cfgs, studies),
            "verdict.tex": verdict(hists, cfgs),
            "speed.tex": speed_table(SPEED.read_text()),
            "code_changes.tex": code_change_table(hists),
            "differences.tex": config_differences(cfgs["SAGAN"], cfgs["DCGAN"])}


# ----------------------------------------------------------------------------------------------------
# figures
# ----------------------------------------------------------------------------------------------------

TEXT_WIDTH_IN = (21.0 - 2 * 2.3) / 2.54   # report.tex: a4paper, margin=2.3cm
MIN_PT = 7                                 # no text in a figure prints smaller than this


def save_figure(fig, name: str, width: float = 1.0) -> None:
    """Save `fig` as OUT/name at the size it prints: `width` of the text width (report.tex includes it at
    its natural size), the height scaled with it; refuse when any text would print under MIN_PT points."""
    import matplotlib.text
    w, h = fig.get_size_inches()
    fig.set_size_inches(width * TEXT_WIDTH_IN, h * width * TEXT_WIDTH_IN / w)
    fig.tight_layout()
    small = sorted({f"{t.get_text()!r} ({t.get_fontsize():.1f} pt)" for t in fig.findobj(matplotlib.text.Text)
                    if t.get_visible() and t.get_text().strip() and t.get_fontsize() < MIN_PT})
    if small:
        raise gh.GanError(f"{name}: text under {MIN_PT} pt at print size: {', '.join(small[:5])}")
    fig.savefig(OUT / name)


def save_upscaled(picture, path: Path, factor: int = 4) -> None:
    """uint8 (rows, cols, 3) -> PNG enlarged with nearest neighbours, so PDF viewers do not blur pixels."""
    from PIL import Image
    img = Image.fromarray(picture)
    img.resize((img.width * factor, img.height * factor), Image.NEAREST).save(path)


def figures() -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker
    hists = histories()
    long = read_json(LONG_RUN / "history.json")
    ax = gh.plot_metric({**hists, LONG_LABEL: long})
    ax.figure.set_size_inches(7, 4.2)
    colours = {label.split(" (best")[0]: line.get_color() for line, label in zip(*ax.get_legend_handles_labels())}
    for name, r in rescores().items():     # where the evaluations switched to standing BN statistics
        ax.axvline(r["iteration"], color=colours[LABELS[name]], linestyle=":", linewidth=1.2)
    ax.plot([], [], color="grey", linestyle=":", label="evaluation switches to standing BN statistics")
    ax.legend(fontsize=7)
    ax.set_yticks([1.25, 1.5, 2, 2.5, 3, 4, 5, 7, 10], ["1.25", "1.5", "2", "2.5", "3", "4", "5", "7", "10"])
    ax.set_yticks([], minor=True)
    ax.grid(True, alpha=0.3)
    save_figure(ax.figure, "validation_curves.pdf", 0.85)
    fig = gh.plot_losses(long, title=f"{LONG_LABEL}: training losses (lines) and evaluations on training and "
                                     f"validation images (markers)")
    fig.texts[0].set_fontsize(9)
    fig.set_size_inches(11, 6.3)
    for ax in fig.axes:                     # legends under the panels, where they cover no curve
        ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.25))
    save_figure(fig, "losses_sagan_long.pdf")
    save_figure(snapshot_rows(gh.snapshots(LONG_RUN)), "snapshots_sagan_long.pdf")
    for label, name in RUNS.items():
        fig = gh.plot_losses(hists[label], title=f"{label}: losses and mean critic/discriminator outputs")
        save_figure(fig, f"losses_{name}.pdf")
    generators = {name: gh.load_generator(MODEL / f"{name}_best.pt") for name in SHIPPED}
    for name, G in generators.items():
        save_upscaled(gh.image_grid(gh.sample(G, 64, seed=0)), OUT / f"grid_{name}.png")

    fig, axes = plt.subplots(1, len(generators), figsize=(8, 2.7))
    for ax, (name, G) in zip(axes, generators.items()):
        gh.show_class_rows(G, list(REPORT_CLASSES), title=LABELS[name], ax=ax)
    save_figure(fig, "classes.pdf")
    fig = gh.interpolation_figure(generators["sagan"], within=(1, 7), between=((1, 9), (3, 5)))
    save_figure(fig, "interpolation_sagan.pdf", 0.85)
    layers = gh.generator_attention(generators["sagan"], n=10, seed=0)    # sample k has class k
    fig = gh.attention_figure(layers)
    save_figure(fig, "attention_sagan.pdf")
    name, layer = next(iter(layers.items()))
    fig = gh.attention_figure(gh.by_image(layer, [f"{gh.CIFAR10_CLASSES[c]}: {name}" for c in ATTENTION_CLASSES],
                                          list(ATTENTION_CLASSES)))
    save_figure(fig, "attention_classes_sagan.pdf")
    if (ROOT / "data").exists():   # D's attention on real images needs the data (not in a fresh clone)
        attention_long_figure()
    else:
        print(f"no {ROOT / 'data'}: kept the committed attention_long.pdf and attention_long.tex")
    for name, results in study_results().items():   # by iteration and by training time, side by side
        fig, axes = plt.subplots(1, 2, figsize=(10, 3.2), sharey=True)
        gh.plot_study(results, ax=axes[0])
        gh.plot_study(results, ax=axes[1], x="seconds")
        axes[0].set_title("by iteration", fontsize=9)
        axes[1].set_title("by training time (timed per arm)", fontsize=9)
        axes[0].set_ylabel("validation FD (proxy)")   # the caption gives the metric and the sample counts
        axes[1].set_ylabel("")
        axes[1].get_legend().remove()
        axes[0].legend(fontsize=7, loc="lower left")   # the curves start high and fall: lower left is free
        for ax in axes:                  # a fork's iterations (11,000-12,000) would crowd the default ticks
            ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(5))
        save_figure(fig, f"study_{name}.pdf")
        plt.close(fig)
    plt.close("all")


def snapshot_rows(found: dict[int, Path]) -> "matplotlib.figure.Figure":
    """One row per chosen snapshot (chosen_snapshots): the first two rows of its 8x8 grid side by side, i.e.
    the same 16 latents and labels (classes 0-9, then 0-5) at each iteration, labelled with the iteration."""
    import matplotlib.pyplot as plt
    from PIL import Image
    its = chosen_snapshots(found, SNAPSHOT_COUNT)
    cell = 32 + 2                                                   # gh.image_grid: 32-pixel images, 2-pixel pad
    rows = []
    for it in its:
        with Image.open(found[it]) as im:
            grid = np.asarray(im.convert("RGB"))
        rows.append(np.concatenate([grid[:cell + 2], grid[cell:2 * cell + 2]], axis=1))   # (36, 548, 3)
    fig, ax = plt.subplots(figsize=(TEXT_WIDTH_IN, 0.5 + 0.4 * len(its)))
    ax.imshow(np.concatenate(rows))
    ax.set_yticks([(k + 0.5) * (cell + 2) for k in range(len(its))], [f"{it:,}" for it in its], fontsize=8)
    ax.set_ylabel("iteration", fontsize=8)
    ax.set_xticks([])
    ax.tick_params(length=0)
    for spine in ax.spines.values():
        spine.set_visible(False)
    return fig


def attention_long_figure() -> None:
    """attention_long.pdf and attention_long.tex: the long run's attention (G and D from its last.pt; the EMA
    generator with standing BN statistics, as the run evaluates it) on generated and real test images."""
    state = LONG_RUN / "last.pt"
    G, D = gh.standing_batch_norm(gh.load_generator(state)), gh.load_discriminator(state)
    real = gh.load_dataset(G.config, ROOT / "data", parts=("test",))[0]
    real = real.subset(torch.randperm(len(real), generator=torch.Generator().manual_seed(0))[:64])  # the set is by class
    layers, tex = attention_numbers(G, D, real)
    (OUT / "attention_long.tex").write_text(tex)
    names = gh.CIFAR10_CLASSES
    horse = names.index("horse")
    rows = {f"G, sample\n({names[horse]})": layers["generated"], "D, same\nsample": layers["fake"]}
    first = {c: int((real.y == c).nonzero()[0, 0]) for c in ATTENTION_REAL}    # first test image of class c
    picked = {}
    for label, layer in rows.items():
        picked.update(gh.by_image(next(iter(layer.values())), [label], [horse]))
    picked.update(gh.by_image(next(iter(layers["real"].values())),
                              [f"D, real\n{names[c]}" for c in ATTENTION_REAL], [first[c] for c in ATTENTION_REAL]))
    fig = gh.attention_figure(picked)
    for ax in fig.axes:                     # shorter top-row titles: the full ones collide at print size
        ax.set_title(ax.get_title().replace("query pixel", "query").replace("its attention", "attention"), fontsize=8)
    save_figure(fig, "attention_long.pdf", 0.85)


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
