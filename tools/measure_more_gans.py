"""Cluster accuracy and linear probes of the more_gans study's finished runs (gankit/probes.py), kept in one JSON file.

    OMP_NUM_THREADS=1 python tools/measure_more_gans.py

Every finished run of the study (run.json without "diverged" or "stopped", and its best.pt) that the file does not
hold yet is measured once, so running the tool again after more runs finish measures only those (--again: all of
them afresh). What is measured depends on the run's config, not its arm's name:
- a categorical code (info_cat >= 2: the infogan and codes-no-mi arms): cluster_accuracy() of best.pt's generator,
  --per-value images per code value labelled by the kit's CIFAR-10 classifier (a proxy for the true classes);
- an encoder (encoder="bigan"): probe_encoder() of best.pt, a logistic-regression probe of E's trunk features fitted
  on the run's own training split and scored on the test images, beside the same probe on the encoder as it was
  initialised and on raw pixels; per run also the differences of the trained encoder to both;
- neither (dcgan): nothing here.
The file (<runs-dir>/<study>/measures.json, written through a temporary file and a rename after each run) holds per
run the measures, the images used, seconds taken and the command; per arm mean, std (ddof=1, two or more seeds) and
n over seeds; and the Welch t-tests of COMPARISONS where both sides have two or more seeds.
"""
import argparse
import json
import os
import shlex
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import gan_helpers as gh  # noqa: E402
from gankit.checkpoints import read_history  # noqa: E402

# measures summarised per arm: cluster_accuracy()'s and probe_encoder()'s accuracies, the differences, training time
SUMMARISED = ("cluster_acc", "shuffled_acc", "encoder", "random_encoder", "pixels", "encoder_minus_random",
              "encoder_minus_pixels", "train_cpu_seconds")
# Welch t-tests, (arm, measure) - (arm, measure): the MI term's effect on cluster accuracy (InfoGAN's baseline),
# and what training taught BiGAN's encoder beyond its initialisation and beyond pixels
COMPARISONS = ((("infogan", "cluster_acc"), ("codes-no-mi", "cluster_acc")),
               (("bigan", "encoder"), ("bigan", "random_encoder")),
               (("bigan", "encoder"), ("bigan", "pixels")))


def finished_runs(study: gh.Study, runs_dir: Path) -> list[tuple[str, int, Path, str | None]]:
    """(arm, seed, folder, what to measure) of every run of `study` that finished (run.json without "diverged" or
    "stopped"); what to measure, from the run's config: "clusters" (a categorical code), "probe" (an encoder) or
    None."""
    found = []
    for arm, seed in study.runs():
        folder = gh.study_run_dir(study, arm, seed, runs_dir)
        record = gh.run_record(folder)
        if record is not None and not record.get("diverged") and "stopped" not in record:
            cfg = gh.Config.from_dict(record["config"])
            found.append((arm, seed, folder,
                          "clusters" if cfg.info_cat >= 2 else "probe" if cfg.encoder == "bigan" else None))
    return found


def probe_data(G: torch.nn.Module, split: dict[str, Any], data_dir: Path,
               loaded: dict[str, tuple[gh.ImageSet, gh.ImageSet]]) -> tuple[gh.ImageSet, gh.ImageSet]:
    """The (train, test) images of G's run, read as training read them (load_dataset with its config) and checked
    against the split its checkpoint recorded; kept in `loaded` for the next run of the same split."""
    key = json.dumps({k: getattr(G.config, k) for k in gh.SPLIT_FIELDS}, sort_keys=True, default=list)
    if key not in loaded:
        loaded[key] = gh.load_dataset(G.config, data_dir, ("train", "test"))
    train, test = loaded[key]
    gh.check_split(split, test)
    return train, test


def measure_run(kind: str, folder: Path, args: argparse.Namespace, classifier: torch.nn.Module,
                loaded: dict[str, tuple[gh.ImageSet, gh.ImageSet]]) -> dict[str, Any]:
    """The measures of one run's best.pt ("clusters" or "probe"), the images they used and the seconds taken."""
    start, cpu = time.perf_counter(), time.process_time()
    ckpt = gh.load_checkpoint(folder / "best.pt")
    G = gh.generator_from_checkpoint(ckpt, folder / "best.pt")
    if kind == "clusters":
        found = gh.cluster_accuracy(G, classifier, per_value=args.per_value, seed=args.sample_seed)
        measures = {**found, "n_images": found["per_value"] * G.config.info_cat}
    else:
        train, test = probe_data(G, ckpt.get("split", {}), args.data_dir, loaded)
        found = gh.probe_encoder(G, train, test, n_train=args.n_train or len(train), n_test=len(test))
        measures = {**found, "encoder_minus_random": found["encoder"] - found["random_encoder"],
                    "encoder_minus_pixels": found["encoder"] - found["pixels"], "train_images": len(train)}
    history = read_history(folder)
    return {"iteration": ckpt["iteration"], "kind": kind, "measures": measures,
            "train_cpu_seconds": history["eval"][-1]["cpu_seconds"],
            "seconds": round(time.perf_counter() - start, 1), "cpu_seconds": round(time.process_time() - cpu, 1)}


def values(runs: dict[str, dict[str, Any]], arm: str, measure: str) -> list[float]:
    """`measure` (one of the run's measures, or its train_cpu_seconds) of every measured run of `arm`, seed by seed."""
    found = sorted((r["seed"], r["train_cpu_seconds"] if measure == "train_cpu_seconds" else r["measures"].get(measure))
                   for r in runs.values() if r["arm"] == arm)
    return [v for _, v in found if v is not None]


def summarise(runs: dict[str, dict[str, Any]]) -> dict[str, dict[str, dict[str, Any]]]:
    """Per arm and measure: mean, std over seeds (ddof=1; None with one seed), n and the seeds."""
    summary: dict[str, dict[str, dict[str, Any]]] = {}
    for arm in dict.fromkeys(r["arm"] for r in runs.values()):
        seeds = sorted(r["seed"] for r in runs.values() if r["arm"] == arm)
        for measure in SUMMARISED:
            v = np.asarray(values(runs, arm, measure), dtype=np.float64)
            if len(v):
                summary.setdefault(arm, {})[measure] = {
                    "mean": float(v.mean()), "std": float(v.std(ddof=1)) if len(v) > 1 else None, "n": len(v),
                    "seeds": seeds}
    return summary


def compare(runs: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """gh.welch() of each of COMPARISONS whose two sides have two or more values each."""
    tests = []
    for (arm_a, a), (arm_b, b) in COMPARISONS:
        found = gh.welch(values(runs, arm_a, a), values(runs, arm_b, b))
        if found is not None:
            tests.append({"a": f"{arm_a} {a}", "b": f"{arm_b} {b}", "n_a": len(values(runs, arm_a, a)),
                          "n_b": len(values(runs, arm_b, b)), **found})
    return tests


def save(path: Path, study: gh.Study, runs: dict[str, dict[str, Any]]) -> None:
    """Write the runs, their summary and tests to `path` (atomically) unless it already holds exactly that."""
    order = {f"{arm}_s{seed}": i for i, (arm, seed) in enumerate(study.runs())}
    runs = dict(sorted(runs.items(), key=lambda kv: (order.get(kv[0], len(order)), kv[0])))
    content = json.loads(json.dumps({"study": study.name, "runs": runs, "summary": summarise(runs),
                                     "welch": compare(runs)}))
    if not path.is_file() or json.loads(path.read_text()) != content:
        gh.write_json_atomic(content, path)


def table(content: dict[str, Any]) -> str:
    """The per-arm means, each run's numbers and the Welch tests as lines of text."""
    lines = [f"{'arm':12s} {'measure':22s} {'mean':>8s} {'std':>7s} {'n':>2s}  seeds"]
    for arm, measures in content["summary"].items():
        for name, s in measures.items():
            digits = 0 if name == "train_cpu_seconds" else 3            # seconds, else accuracies
            std = "-" if s["std"] is None else f"{s['std']:.{digits}f}"
            lines.append(f"{arm:12s} {name:22s} {s['mean']:8.{digits}f} {std:>7s} {s['n']:2d}  {s['seeds']}")
    lines.append("")
    for key, r in content["runs"].items():
        m = r["measures"]
        shown = (f"cluster_acc {m['cluster_acc']:.3f} (shuffled {m['shuffled_acc']:.3f}, {m['n_images']} images)"
                 if r["kind"] == "clusters" else
                 f"encoder {m['encoder']:.3f}, random encoder {m['random_encoder']:.3f}, pixels {m['pixels']:.3f} "
                 f"({m['n_train']} train / {m['n_test']} test images)")
        lines.append(f"{key:16s} iteration {r['iteration']}: {shown}; {r['seconds']:.0f} s")
    for t in content["welch"]:
        lines.append(f"Welch {t['a']} - {t['b']}: {t['diff']:+.3f} [{t['low']:+.3f}, {t['high']:+.3f}], "
                     f"t {t['t']:.2f}, df {t['df']:.1f}, p {t['p']:.3g} (n {t['n_a']}, {t['n_b']})")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--study", type=Path, default=Path("studies/more_gans.json"))
    p.add_argument("--runs-dir", type=Path, default=Path("model/studies"))
    p.add_argument("--data-dir", type=Path, default=Path("data"), help="the runs' data (the probe's images)")
    p.add_argument("--out", type=Path, help="default: <runs-dir>/<study>/measures.json")
    p.add_argument("--classifier", help="TorchScript classifier for cluster accuracy (default: the kit's copy)")
    p.add_argument("--per-value", type=int, default=500, help="generated images per code value (cluster accuracy)")
    p.add_argument("--sample-seed", type=int, default=0, help="seed of the latents of cluster accuracy")
    p.add_argument("--n-train", type=int, help="training images of the probe (a fixed draw; default: all of the split)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--again", action="store_true", help="measure every finished run again")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    gh.setup(0, "cpu")
    study = gh.load_study(args.study)
    out = args.out or args.runs_dir / study.name / "measures.json"
    runs = json.loads(out.read_text())["runs"] if out.is_file() else {}
    threads = [f"OMP_NUM_THREADS={os.environ['OMP_NUM_THREADS']}"] if "OMP_NUM_THREADS" in os.environ else []
    command = shlex.join([*threads, "python", "tools/measure_more_gans.py", *argv])
    classifier, loaded = None, {}
    for arm, seed, folder, kind in finished_runs(study, args.runs_dir):
        key = f"{arm}_s{seed}"
        if kind is None or (key in runs and not args.again):
            continue
        if not (folder / "best.pt").is_file():
            print(f"{key}: finished, but {folder / 'best.pt'} is not here; not measured")
            continue
        if kind == "clusters" and classifier is None:
            found = gh.load_classifier(args.classifier)
            if found is None:
                raise SystemExit(f"no classifier: pass --classifier or put the kit's copy at {gh.KIT_CLASSIFIER}")
            classifier = found[0]
        runs[key] = {"arm": arm, "seed": seed, **measure_run(kind, folder, args, classifier, loaded),
                     "threads": args.threads, "command": command}
        print(f"{key}: measured in {runs[key]['seconds']:.0f} s", flush=True)
        save(out, study, runs)
    save(out, study, runs)
    if runs:
        print(table(json.loads(out.read_text())))
    print(f"{out}: {len(runs)} runs measured")


if __name__ == "__main__":
    main()
