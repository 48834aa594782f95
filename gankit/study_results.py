"""Study results: timing every arm in one process, collect_study() -> results.json, tables, plots."""
from __future__ import annotations

import copy
import dataclasses
import datetime
import json
import time
from pathlib import Path
from typing import Any, Callable
import numpy as np
import torch

from .core import GanError, SELECTION_KEY
from .device import device_name, precision, to_device
from .config import Config
from .tables import format_table
from .files import write_json_atomic
from .data import synthetic_images
from .build import build_models
from .step import ema_decay, make_optimizers, train_step
from .plots import legend_below, log_y, metric_label
from .checkpoints import read_history
from .studies import Study, run_record, study_run_dir, study_timing_path

__all__ = ['mean_std', 'welch', 'holm', 'critic_scale', 'time_study', 'STUDY_TIME', 'study_results_path',
           'collect_study', 'study_tests', 'study_table', 'plot_study']
ALPHA = 0.05   # the significance level of a study's comparisons (two-sided Welch t-tests, Holm-corrected per study)
LAST = 3       # "last": the mean of a run's last LAST evaluations, steadier than its final one
CRITIC_WINDOW = 500   # critic_scale() reads D's logged outputs over a run's last CRITIC_WINDOW iterations


def mean_std(values: list[float]) -> dict[str, Any]:
    """Mean and sample standard deviation (n - 1 in the denominator; None for one value) of per-seed values."""
    v = np.asarray(values, dtype=np.float64)
    spread = 0.0 if (v == v[0]).all() else float(v.std(ddof=1))   # equal values: exactly 0, not rounding residue
    return {"mean": float(v.mean()), "std": spread if len(v) > 1 else None, "n": len(v),
            "values": [float(x) for x in v]}


def welch(a: list[float], b: list[float], level: float = 1 - ALPHA) -> dict[str, float] | None:
    """Welch's t-test of mean(a) - mean(b) for unequal variances: the difference, its `level` confidence interval
    (Welch-Satterthwaite degrees of freedom), t, df and the two-sided p-value. None unless both have two or more
    values; two samples without any spread have p 0 (different means) or 1 (equal ones)."""
    from scipy import stats
    x, y = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if min(len(x), len(y)) < 2:
        return None
    diff = float(x.mean() - y.mean())
    vx, vy = x.var(ddof=1) / len(x), y.var(ddof=1) / len(y)
    se = float(np.sqrt(vx + vy))
    if se == 0.0:
        return {"diff": diff, "low": diff, "high": diff, "t": float("inf") if diff else 0.0,
                "df": float(len(x) + len(y) - 2), "p": 0.0 if diff else 1.0}
    df = float((vx + vy) ** 2 / (vx ** 2 / (len(x) - 1) + vy ** 2 / (len(y) - 1)))
    half = float(stats.t.ppf(0.5 + level / 2, df)) * se
    t = diff / se
    return {"diff": diff, "low": diff - half, "high": diff + half, "t": t, "df": df,
            "p": float(2 * stats.t.sf(abs(t), df))}


def _score_at(evals: list[dict[str, Any]], key: str, limit: float) -> float:
    """The metric of the last evaluation with `key` (iter or time) <= limit."""
    return [e for e in evals if e[key] <= limit][-1]["fd"]


def time_study(study: Study, iters: int = 20, warmup: int = 3, rounds: int = 3,
               device: torch.device | str = "cpu") -> dict[str, Any]:
    """Seconds per iteration of every arm, measured in this one process: each arm's networks (seed 0) take
    `warmup` untimed train_steps, then `rounds` times in turn every arm takes `iters` timed ones (so a machine
    that gets busier or quieter affects every arm alike); per arm the median round. CPU time of this process on
    the CPU (one thread: the study's unit), wall-clock time on a GPU. Synthetic images of the config's size:
    the cost of a step does not depend on what the images show. collect_study() then puts every run's
    evaluations on this common clock (iterations x seconds per iteration) instead of the logged times, which
    depend on the machine each run happened to train on and on what else ran there."""
    device = torch.device(device)
    clock = time.process_time if device.type == "cpu" else time.perf_counter
    prec = precision("off" if device.type == "cpu" else "auto", device)
    steps: dict[str, Callable[[int], Any]] = {}   # arm -> one training step at iteration i
    for arm in study.arms:
        cfg = study.config(arm, 0)
        data = synthetic_images(4 * cfg.batch_size, max(cfg.cond_classes, 1), size=cfg.img_size).to(device)
        G, D = (to_device(m, device) for m in build_models(cfg))
        G_ema = copy.deepcopy(G) if cfg.ema_decay > 0 else None
        opt_g, opt_d = make_optimizers(cfg, G, D)
        steps[arm] = (lambda i, c=cfg, m=(G, D, G_ema, opt_g, opt_d), x=data:
                      train_step(c, *m, lambda: x.batch(c.batch_size, c.hflip), ema_decay(c, i), prec))
        for i in range(warmup):
            steps[arm](i)
    samples: dict[str, list[float]] = {arm: [] for arm in study.arms}
    for _ in range(rounds):
        for arm, step in steps.items():
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            start = clock()
            for i in range(iters):
                step(warmup + i)
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            samples[arm].append((clock() - start) / iters)
    return {"study": study.name, "device": device_name(device), "torch": torch.__version__,
            "clock": "CPU time of the timing process" if device.type == "cpu" else "wall-clock",
            "iters": iters, "warmup": warmup, "rounds": rounds,
            "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "sec_per_iter": {arm: float(np.median(v)) for arm, v in samples.items()}, "rounds_sec_per_iter": samples,
            "configs": {arm: dataclasses.asdict(study.config(arm, 0)) for arm in study.arms}}


STUDY_TIME = ("training time: on the CPU the process's CPU time in training steps (wall-clock for evaluations "
              "logged before CPU time was), so runs sharing a machine with other jobs stay comparable; on a GPU "
              "wall-clock time; evaluations excluded")


def _with_training_time(evals: list[dict[str, Any]], device: str) -> list[dict[str, Any]]:
    """Each evaluation with "time" (seconds, STUDY_TIME) added: its cpu_seconds for a run on the CPU (its
    wall-clock seconds when logged before CPU time was kept: migrate_record), else its wall-clock seconds."""
    on_cpu = device.startswith("cpu")
    return [{**e, "time": e["cpu_seconds"] if on_cpu else e["seconds"]} for e in evals]


def study_results_path(study: Study, runs_dir: str | Path = "model/studies", at: int | None = None) -> Path:
    """<runs_dir>/<study>/results.json, or results_at<ITER>.json for a comparison up to iteration `at`."""
    return Path(runs_dir) / study.name / ("results.json" if at is None else f"results_at{at}.json")


RunData = tuple[int, dict[str, Any], list[dict[str, Any]], int, dict[str, float]]
# seed, run.json, evaluations, first iteration, critic_scale()


def critic_scale(history: dict[str, Any], until: int | None = None, window: int = CRITIC_WINDOW) -> dict[str, float]:
    """The scale of D's outputs over the `window` logged iterations up to `until` (default: the last): "level_std",
    the standard deviation over iterations of the batch mean of D on real images (how far D's output level moves
    from one iteration to the next), "gap", the mean of D(x) - D(G(z)) (what a Wasserstein critic maximises: for a
    K-Lipschitz critic K times its estimate of the distance), and "ratio", level_std / |gap|. With a ratio above 1
    the level moves more between iterations than the difference D is trained to measure."""
    it = np.asarray(history["iter"])
    keep = it <= (it[-1] if until is None else until)
    real = np.asarray(history["d_real"], dtype=np.float64)[keep][-window:]
    gap = real - np.asarray(history["d_fake"], dtype=np.float64)[keep][-window:]
    if len(real) < 2:
        raise GanError(f"critic_scale needs at least 2 logged iterations up to {until}, not {len(real)}")
    level_std, mean_gap = float(real.std(ddof=1)), float(gap.mean())
    return {"level_std": level_std, "gap": mean_gap, "ratio": level_std / abs(mean_gap) if mean_gap else float("inf")}


def _study_timing(study: Study, runs_dir: str | Path) -> dict[str, Any] | None:
    """The study's timing.json (`study time`: every arm timed in one process), None without one; GanError when it
    timed other arms or configs than the study's."""
    path = study_timing_path(study, runs_dir)
    if not path.is_file():
        return None
    timing = json.loads(path.read_text())
    if set(timing["sec_per_iter"]) != set(study.arms) or any(
            Config.from_dict(timing["configs"][arm]) != study.config(arm, 0) for arm in study.arms):
        raise GanError(f"{path} timed other arms or configs than the study's ({sorted(study.arms)}): "
                       f"time the study again (python gan_helpers.py study time FILE)")
    return timing


def _finished_runs(study: Study, runs_dir: str | Path, at: int | None, timing: dict[str, Any] | None
                   ) -> tuple[dict[str, list[RunData]], list[str], list[str], set[str]]:
    """Per arm the finished runs (seed, run.json, evaluations up to `at` with their training "time", the iteration
    the run started from: 0, or a fork's, the critic's scale up to its last evaluation), and the folders missing,
    the folders of diverged runs, the devices."""
    runs: dict[str, list[RunData]] = {arm: [] for arm in study.arms}
    missing, diverged, devices = [], [], set()
    for arm, seed in study.runs():
        folder = study_run_dir(study, arm, seed, runs_dir)
        record = run_record(folder, reached=at)
        if record is None or Config.from_dict(record["config"]) != study.config(arm, seed):
            missing.append(folder.name)
            continue
        if record.get("diverged"):
            diverged.append(folder.name)
            continue
        devices.add(record["device"])
        history = read_history(folder)
        start = history.get("forked_from", {}).get("iteration", 0)
        kept = [e for e in history["eval"] if at is None or e["iter"] <= at]
        evals = (_with_training_time(kept, record["device"]) if timing is None else
                 [{**e, "time": (e["iter"] - start) * timing["sec_per_iter"][arm]} for e in kept])
        runs[arm].append((seed, record, evals, start, critic_scale(history, until=evals[-1]["iter"])))
    return runs, missing, diverged, devices


def _run_scores(run: RunData, equal_iter: int, equal_seconds: float) -> dict[str, Any]:
    """One run's scores (best, final, mean of the last LAST, at the equal iteration and time), cost and device."""
    seed, record, evals, start, critic = run
    cfg = Config.from_dict(record["config"])
    best = min(evals, key=lambda e: e[SELECTION_KEY])
    trained = evals[-1]["iter"] - start
    return {"seed": seed, "best": best["fd"], "best_iter": best["iter"], "final": evals[-1]["fd"],
            "last": float(np.mean([e["fd"] for e in evals[-LAST:]])),
            "at_iter": _score_at(evals, "iter", equal_iter), "at_time": _score_at(evals, "time", equal_seconds),
            "class_acc": best.get("class_acc"),   # of the samples of the best checkpoint
            "seconds": evals[-1]["time"], "sec_per_iter": evals[-1]["time"] / trained,
            "images_seen": trained * cfg.batch_size * cfg.n_critic, "device": record["device"],
            **{f"critic_{key}": value for key, value in critic.items()}}


def _arm_summary(sets: tuple[str, ...], arm_runs: list[RunData], equal_iter: int,
                 equal_seconds: float) -> dict[str, Any]:
    """An arm's entry of results.json: mean +- std over its runs of every score, and its mean curve."""
    per_run = [_run_scores(run, equal_iter, equal_seconds) for run in arm_runs]
    common = sorted(set.intersection(*({e["iter"] for e in evals} for _, _, evals, _, _ in arm_runs)))
    curves = np.array([[e["fd"] for e in evals if e["iter"] in common] for _, _, evals, _, _ in arm_runs])
    seconds = np.array([[e["time"] for e in evals if e["iter"] in common] for _, _, evals, _, _ in arm_runs])
    return {"set": list(sets), "seeds": [r["seed"] for r in per_run],
            **{key: mean_std([r[key] for r in per_run])
               for key in ("best", "final", "last", "at_iter", "at_time", "best_iter", "sec_per_iter",
                           "critic_level_std", "critic_gap", "critic_ratio")},
            "class_acc": (None if any(r["class_acc"] is None for r in per_run)
                          else mean_std([r["class_acc"] for r in per_run])),
            "images_seen": per_run[0]["images_seen"],
            "curve": {"iter": common, "mean": curves.mean(0).tolist(),
                      "std": (curves.std(0, ddof=1) if len(curves) > 1 else np.zeros(len(common))).tolist(),
                      "seconds": seconds.mean(0).tolist()},
            "runs": per_run}


def _protocol(study: Study, first: dict[str, Any], at: int | None, equal_iter: int, equal_seconds: float,
              timing: dict[str, Any] | None, devices: set[str]) -> dict[str, Any]:
    """How a study's results were measured and compared (results.json's "protocol")."""
    return {"metric": first["metric"], "n_fake": first["n_fake"], "n_real": first["n_real"],
            "iters": study.iters, "eval_every": study.eval_every,
            "best": "lowest validation metric over the evaluations of a run",
            "last": f"mean of a run's last {LAST} evaluations",
            "test": f"two-sided Welch t-test of each arm against the baseline (the study's first arm), Holm's "
                    f"correction over the study's tests, level {ALPHA} (study_tests)",
            **({"at": at} if at is not None else {}),
            "spread": "mean and sample standard deviation (n - 1) over seeds",
            "equal_iter": equal_iter, "equal_seconds": equal_seconds,
            "seconds": STUDY_TIME if timing is None else
            (f"training time: iterations x seconds per iteration of each arm, all timed in one "
             f"process ({timing['clock']}, {timing['device']}, torch {timing['torch']}, "
             f"{timing['date'][:10]}; timing.json)"),
            "devices": sorted(devices)}


def collect_study(study: Study, runs_dir: str | Path = "model/studies", at: int | None = None) -> dict[str, Any]:
    """Rebuild <runs_dir>/<study>/results.json from the finished runs' folders (made on any machine) and
    return it: per arm, mean +- std over seeds of the best and final validation metric, the mean of each run's
    last LAST evaluations, the metric at the iteration every run reached and at the training time every run
    reached (STUDY_TIME; comparable only when the runs shared one kind of device), images seen, seconds per
    iteration, the mean curve with its spread, and the evaluation protocol; the baseline arm (the study's first)
    and the tests of every other arm against it (study_tests). `at` (an iteration) compares the runs up to
    there: evaluations after it are left out, and runs stopped at a time limit after it count. Written to
    study_results_path(). Runs not finished with the study's config are listed under "missing", runs that
    diverged (run.json's "diverged") under "diverged"; neither enters a mean."""
    timing = _study_timing(study, runs_dir)
    if at is not None and (at <= 0 or at > study.iters or at % study.eval_every):
        raise GanError(f"--at {at} is not an evaluation of study {study.name!r}: choose a multiple of its "
                       f"eval_every ({study.eval_every}) up to its iters ({study.iters})")
    runs, missing, diverged, devices = _finished_runs(study, runs_dir, at, timing)
    done = [evals for arm_runs in runs.values() for _, _, evals, _, _ in arm_runs]
    if not done:
        raise GanError(f"no finished run of study {study.name!r} under {Path(runs_dir) / study.name}: "
                       f"run `python gan_helpers.py study run` first")
    equal_iter = min(evals[-1]["iter"] for evals in done)
    equal_seconds = min(evals[-1]["time"] for evals in done)
    results = {"study": study.name, "description": study.description, "preset": study.preset,
               "base": list(study.base), "seeds": list(study.seeds),
               **({"start_from": study.start_from} if study.start_from else {}),
               "protocol": _protocol(study, done[0][-1], at, equal_iter, equal_seconds, timing, devices),
               "baseline": next(iter(study.arms)),
               "arms": {arm: _arm_summary(study.arms[arm], arm_runs, equal_iter, equal_seconds)
                        for arm, arm_runs in runs.items() if arm_runs},
               "missing": missing, "diverged": diverged}
    results["tests"] = study_tests(results)
    write_json_atomic(results, study_results_path(study, runs_dir, at))
    return results


def _pm(s: dict[str, Any], digits: int = 4) -> str:
    return f"{s['mean']:.{digits}g}" + ("" if s["std"] is None else f" ± {s['std']:.2g}")


def holm(p_values: list[float]) -> list[float]:
    """Holm's (1979) step-down adjusted p-values of one family of tests, in the order given: with the m raw
    p-values sorted, p_(1) <= ... <= p_(m), the adjusted p_(i) = max over j <= i of min(1, (m - j + 1) p_(j)).
    A test rejects at level alpha when its adjusted p < alpha: the family-wise error rate (any false rejection
    in the family) stays under alpha whatever the dependence between the tests."""
    adjusted = [0.0] * len(p_values)
    running = 0.0
    for rank, i in enumerate(np.argsort(p_values, kind="stable")):
        running = max(running, min(1.0, (len(p_values) - rank) * p_values[i]))
        adjusted[i] = running
    return adjusted


def _verdict(p: float, p_holm: float) -> str:
    """"significant" (Holm-adjusted p < ALPHA), "suggestive" (only the raw p < ALPHA) or "not significant"."""
    return "significant" if p_holm < ALPHA else "suggestive" if p < ALPHA else "not significant"


def study_tests(results: dict[str, Any], key: str = "best") -> dict[str, dict[str, Any]]:
    """Each arm against the study's baseline arm (results["baseline"], the study file's first arm), on the mean
    `key` score ("best", "final", "last", "at_iter", "at_time") over seeds: welch(arm, baseline) (the gap, its
    confidence interval, t, df, the raw two-sided p), "p_holm" (Holm's adjustment over this study's family of
    tests, one per arm) and "verdict" (_verdict: "suggestive" when only the raw p is under ALPHA). Arms with a
    single seed, and every arm when the baseline has one, are not tested; {} without a baseline's runs."""
    arms, baseline = results["arms"], results["baseline"]
    if baseline not in arms:
        return {}
    tests = {arm: welch(a[key]["values"], arms[baseline][key]["values"])
             for arm, a in arms.items() if arm != baseline}
    tests = {arm: t for arm, t in tests.items() if t is not None}
    adjusted = holm([t["p"] for t in tests.values()])
    return {arm: {**t, "p_holm": q, "verdict": _verdict(t["p"], q)} for (arm, t), q in zip(tests.items(), adjusted)}


def _vs(arm: str, results: dict[str, Any], tests: dict[str, dict[str, Any]]) -> str:
    """The table's last column: "baseline", or an arm's gap to it with the raw and Holm-adjusted p-values,
    '*' when significant after Holm's correction and "suggestive" when only before it."""
    if arm == results["baseline"]:
        return "baseline"
    if arm not in tests:   # a single seed: the gap alone
        base = results["arms"].get(results["baseline"])
        return "--" if base is None else f"{results['arms'][arm]['best']['mean'] - base['best']['mean']:+.3g}"
    t = tests[arm]
    mark = {"significant": "*", "suggestive": " suggestive", "not significant": ""}[t["verdict"]]
    return f"{t['diff']:+.3g} (p {t['p']:.2g}, Holm {t['p_holm']:.2g}){mark}"


def study_table(results: dict[str, Any], fmt: str = "markdown") -> str:
    """A results file as a markdown or LaTeX (booktabs) table: per arm, mean ± std over seeds of the best,
    final, last-evaluations mean, equal-iteration and equal-time validation metric, images seen, seconds per
    iteration, and how far its best is from the baseline arm's with the two-sided Welch p-value of that gap and
    its Holm-adjusted one (study_tests; '*': adjusted p < ALPHA; "suggestive": only the raw p < ALPHA; no test
    with a single seed). Where any arm logged it, the class accuracy of the best checkpoint's samples follows
    the scores ("--" for an arm without it, such as an unconditional one). The metric and its sample counts
    (results["protocol"]) belong in the caption or the line under the table."""
    p, arms = results["protocol"], results["arms"]
    tests = study_tests(results)
    with_acc = any(a.get("class_acc") for a in arms.values())
    head = ["arm", "seeds", "best", "final", f"last {LAST}", f"at {p['equal_iter']:,} it",
            f"at {p['equal_seconds']:,.0f} s", *(["class acc."] if with_acc else []), "images seen", "s/it",
            f"best vs {results['baseline']}"]
    rows = []
    for arm, a in arms.items():
        rows.append([arm, str(len(a["seeds"])), *(_pm(a[k]) for k in ("best", "final", "last", "at_iter", "at_time")),
                     *([_pm(a["class_acc"], 2) if a.get("class_acc") else "--"] if with_acc else []),
                     f"{a['images_seen']:,}", _pm(a["sec_per_iter"], 3), _vs(arm, results, tests)])
    return format_table(head, rows, fmt)


def plot_study(results: dict[str, Any], ax: Any = None, x: str = "iter") -> Any:
    """Validation curves of a results file: per arm the mean over seeds, with a band of ± one standard
    deviation; x = "iter" or "seconds" (training time). Returns the axes."""
    import matplotlib.pyplot as plt
    if ax is None:
        _, ax = plt.subplots(figsize=(6.5, 4))
    for arm, a in results["arms"].items():
        c = a["curve"]
        xs, mean, std = np.asarray(c[x]), np.asarray(c["mean"]), np.asarray(c["std"])
        line, = ax.plot(xs, mean, label=f"{arm} (best {_pm(a['best'], 3)}, {len(a['seeds'])} seeds)")
        ax.fill_between(xs, mean - std, mean + std, color=line.get_color(), alpha=0.2, linewidth=0)
    p = results["protocol"]
    ax.set_xlabel("iteration" if x == "iter" else "training time (s)")
    ax.set_ylabel(metric_label(p["metric"], p["n_fake"], p["n_real"]))
    log_y(ax)
    ax.set_title(f"study {results['study']}: mean ± std over seeds")
    legend_below(ax, ncol=2)
    return ax
