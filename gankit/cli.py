"""The command line: python gan_helpers.py {train,state,sample,fid,publish,evaluate,study}."""
from __future__ import annotations

import argparse
import dataclasses
import sys
import typing
from pathlib import Path
from typing import Callable
import numpy as np
import torch

from .core import GanError, IMAGE_EXTENSIONS, TEST_SAMPLES
from .device import setup
from .config import PRESETS
from .files import write_json_atomic
from .data import config_for_data, image_files, load_dataset, read_images, to_uint8
from .build import build_models, count_parameters
from .sampling import latents, sample
from .features import FeatureNet, INCEPTION_WEIGHTS_FILE, Stats, load_feature_net
from .measures import format_score, frechet_distance
from .checkpoints import generator_from_checkpoint, load_checkpoint
from .images import save_class_samples, save_pngs
from .training import best_eval, train
from .publishing import publish, published_history
from .states import MIN_ADVANCE, resume_from_state, write_compact_state
from .evaluation import final_evaluation
from .studies import Study, load_study, run_record, run_study, study_run_dir, study_status, study_timing_path
from .engines import run_study_ray
from .study_results import ALPHA, collect_study, study_results_path, study_table, time_study

__all__ = ['build_parser', 'main']


def _path_stats(path: str, features: FeatureNet, batch_size: int | None) -> Stats:
    """Statistics of an image folder, or those stored in a pytorch-fid style .npz (mu, sigma)."""
    p = Path(path)
    if p.suffix == ".npz" and p.is_file():
        return Stats.load(p)
    if not p.is_dir():
        raise GanError(f"{path} is neither an image folder nor an .npz of statistics")
    files = image_files(p)
    if not files:
        raise GanError(f"no images ({', '.join(IMAGE_EXTENSIONS)}) directly in {path}")
    return Stats.of(features.features(read_images(files), batch_size))


def _cmd_train(args: argparse.Namespace) -> None:
    cfg = PRESETS[args.model]().with_overrides(args.set)
    if args.resume_from:   # the state's own config (a compact state of model/states/ or a newer OUT/last.pt)
        if args.resume or args.fork_from:
            raise GanError("--resume-from continues a compact state: leave out --resume and --fork-from")
        out = Path(args.out or f"runs/{cfg.name}")
        saved, note = resume_from_state(args.resume_from, out, cfg.name)
        cfg = saved.with_overrides(args.set)
        print(note)
    for key in ("iters", "eval_every", "eval_samples", "val_size"):
        if getattr(args, key) is not None:
            cfg = dataclasses.replace(cfg, **{key: getattr(args, key)})
    cfg.validate()
    device = setup(cfg.seed, args.device)
    train_data, val_data = load_dataset(cfg, args.data_dir)
    cfg = config_for_data(cfg, train_data)
    G, D = build_models(cfg)
    print(f"{cfg.name}: arch={cfg.arch}, img_size={cfg.img_size}, cond={cfg.cond} ({cfg.cond_classes} classes), "
          f"spectral_norm={cfg.spectral_norm}, loss={cfg.loss}, lipschitz={cfg.lipschitz}; "
          f"G {count_parameters(G):,} and D {count_parameters(D):,} parameters; "
          f"{len(train_data):,} training / {len(val_data):,} validation images from {train_data.source}")
    features = load_feature_net(args.feature_net, args.fid_weights, device, args.classifier)
    out = Path(args.out or f"runs/{cfg.name}")
    history = train(cfg, out, train_data, val_data, features, device, resume=args.resume or bool(args.resume_from),
                    stats_dir=args.stats_dir or Path(args.data_dir) / "fid_stats",
                    time_limit=args.time_limit * 60 if args.time_limit else None, fork_from=args.fork_from)
    best = best_eval(history)
    print(f"done: {out}/last.pt, {out}/best.pt (iteration {best['iter']}: {format_score(best)}), "
          f"{out}/history.json")


def _cmd_state(args: argparse.Namespace) -> None:
    print(write_compact_state(args.source, args.target, args.min_advance))


def _cmd_sample(args: argparse.Namespace) -> None:
    ckpt = load_checkpoint(args.ckpt)
    G = generator_from_checkpoint(ckpt, args.ckpt, setup(args.seed, args.device))
    out = Path(args.out)
    if args.per_class:
        recorded = ckpt.get("split", {}).get("class_names")
        print(f"wrote {len(save_class_samples(G, out, args.seed, recorded and tuple(recorded)))} PNGs to {out}")
        return
    images = sample(G, args.n, seed=args.seed)
    _, y = latents(G, args.n, seed=args.seed)
    if out.suffix == ".npz":
        out.parent.mkdir(parents=True, exist_ok=True)
        np.savez(out, x=to_uint8(images).permute(0, 2, 3, 1).numpy(),
                 y=(y if y is not None else torch.full((args.n,), -1)).numpy())
        s = G.config.img_size
        print(f"wrote {args.n} images to {out} (x: uint8 (N, {s}, {s}, 3), y: labels, -1 = unconditional)")
    else:
        save_pngs(images, out, [f"{i:05d}" for i in range(args.n)])
        print(f"wrote {args.n} PNGs to {out}")


def _cmd_fid(args: argparse.Namespace) -> None:
    features = load_feature_net(args.feature_net, args.fid_weights, setup(0, args.device), classifier="none")
    a, b = (_path_stats(p, features, args.batch_size) for p in (args.path_a, args.path_b))
    fd = frechet_distance(a.mu, a.sigma, b.mu, b.sigma)
    print(f"{features.label}: {fd:.6f} ({a.n or '?'} vs {b.n or '?'} images)")


def _cmd_publish(args: argparse.Namespace) -> None:
    target = publish(args.run_dir, args.name, args.model_dir, args.sample_dir, args.force)
    print(f"wrote {target} and {published_history(args.model_dir, args.name)}"
          + (f" and one image per class in {args.sample_dir}" if args.sample_dir else ""))


def _cmd_evaluate(args: argparse.Namespace) -> None:
    import matplotlib
    matplotlib.use("Agg")
    grid = Path(args.grid or Path(args.ckpt).with_suffix(".grid.png").name)
    result = final_evaluation(args.ckpt, args.data_dir, args.n, args.feature_net, args.fid_weights, args.device,
                              grid_path=grid, show=False, classifier=args.classifier)
    print(f"8x8 grid written to {grid}")
    if args.json and result is not None:
        write_json_atomic({"checkpoint": str(args.ckpt), "data_dir": str(args.data_dir), **result}, args.json)
        print(f"scores written to {args.json}")


def _study_flags(args: argparse.Namespace) -> list[str]:
    """The options of `study run` as command-line words: what `study commands` passes on."""
    flags = ["--data-dir", str(args.data_dir), "--runs-dir", str(args.runs_dir)]
    for name in ("stats_dir", "feature_net", "fid_weights", "device", "threads", "time_limit"):
        if getattr(args, name) is not None:
            flags += ["--" + name.replace("_", "-"), str(getattr(args, name))]
    return flags


def _study_device(args: argparse.Namespace) -> torch.device:
    """The device of a study command that trains or times here (--device, checked now: `study commands` only
    prints it for other machines), with --threads applied."""
    try:
        _device(args.device) if args.device is not None else None
    except argparse.ArgumentTypeError as exc:
        raise GanError(f"--device {exc}") from None
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    return setup(0, args.device)


def _load_selected_study(args: argparse.Namespace) -> Study:
    """The study file of a study command, with --arm and --seed (where the command has them) checked against it."""
    study = load_study(args.file)
    chosen = (getattr(args, "arm", []), getattr(args, "seed", []))
    unknown = [*sorted(set(chosen[0]) - set(study.arms)), *sorted(set(chosen[1]) - set(study.seeds))]
    if unknown:
        raise GanError(f"--arm/--seed {unknown} not in study {study.name} (arms: {', '.join(study.arms)}; seeds: "
                       f"{', '.join(map(str, study.seeds))})")
    return study


def _selected(args: argparse.Namespace) -> Callable[[str, int], bool]:
    """Whether a run (arm, seed) is among those --arm and --seed chose (all of them when neither is given)."""
    return lambda arm, seed: (not args.arm or arm in args.arm) and (not args.seed or seed in args.seed)


def _cmd_study_status(args: argparse.Namespace) -> None:
    print("\n".join(study_status(_load_selected_study(args), args.runs_dir)))


def _cmd_study_time(args: argparse.Namespace) -> None:
    study = _load_selected_study(args)
    timing = time_study(study, args.timed_iters, device=_study_device(args))
    path = study_timing_path(study, args.runs_dir)
    write_json_atomic(timing, path)
    reference = next(iter(timing["sec_per_iter"].values()))
    for arm, spi in timing["sec_per_iter"].items():
        print(f"{arm}: {spi:.3f} s per iteration ({spi / reference:.2f}x the first arm)")
    print(f"{timing['clock']}, {timing['device']}; written to {path}")


def _cmd_study_commands(args: argparse.Namespace) -> None:
    study = _load_selected_study(args)
    runs = [(a, s) for a, s in study.runs() if _selected(args)(a, s)]
    for arm, seed in runs:
        print(" ".join(["python", "gan_helpers.py", "study", "run", str(args.file), "--arm", arm,
                        "--seed", str(seed), "--quiet", *_study_flags(args)]))
    print(f"# {len(runs)} runs, each in its own folder; afterwards (with every run folder under "
          f"{args.runs_dir}/{study.name}/): python gan_helpers.py study collect {args.file} "
          f"--runs-dir {args.runs_dir}", file=sys.stderr)


def _cmd_study_run(args: argparse.Namespace) -> None:
    study = _load_selected_study(args)
    ray_only = [f"--{n.replace('_', '-')}" for n in ("address", "gpus_per_run", "cpus_per_run")
                if getattr(args, n) is not None]
    if ray_only and args.engine != "ray":
        raise GanError(f"{', '.join(ray_only)} set the Ray engine's runs: add --engine ray")
    if args.engine == "ray" and args.threads is not None:
        raise GanError("--engine ray gives each run as many threads as CPUs: use --cpus-per-run, not --threads")
    time_limit = args.time_limit * 60 if args.time_limit else None
    if args.engine == "ray":
        lines = run_study_ray(study, args.data_dir, args.feature_net, args.runs_dir, args.device, _selected(args),
                              args.stats_dir, not args.quiet, time_limit, args.address, args.gpus_per_run or 0.0,
                              args.cpus_per_run or 1, args.fid_weights)
    else:
        device = _study_device(args)
        features = load_feature_net(args.feature_net, args.fid_weights, device)
        lines = run_study(study, args.data_dir, features, args.runs_dir, device, _selected(args), args.stats_dir,
                          progress=not args.quiet, time_limit=time_limit)
    for line in lines:
        print(line, flush=True)
    if args.arm or args.seed:   # part of a study: other runs may still be going
        print(f"collect the results when every run has finished: python gan_helpers.py study collect "
              f"{args.file} --runs-dir {args.runs_dir}")
    elif not any(run_record(study_run_dir(study, a, s, args.runs_dir)) for a, s in study.runs()):
        print(f"no run of study {study.name} has finished yet: run the same command again to continue")
    else:
        _print_results(study, args)


def _cmd_study_collect(args: argparse.Namespace) -> None:
    _print_results(_load_selected_study(args), args)


def _print_results(study: Study, args: argparse.Namespace) -> None:
    """Collect a study's results (collect_study, --at), print its table and its tests against the baseline arm."""
    results = collect_study(study, args.runs_dir, args.at)
    print(study_table(results))
    tests = results["tests"]
    print(f"each arm against {results['baseline']} (best score, two-sided Welch t-test over seeds, Holm's correction "
          f"over {len(tests)} tests, level {ALPHA}): "
          + ("; ".join(f"{arm} {t['diff']:+.3g} (95% CI {t['low']:.3g} to {t['high']:.3g}, p {t['p']:.2g}, Holm "
                       f"{t['p_holm']:.2g}: {t['verdict']})" for arm, t in tests.items()) or "no tests"))
    print(f"{results['protocol']['metric']}, {results['protocol']['n_fake']} generated vs "
          f"{results['protocol']['n_real']} real; missing runs: {results['missing'] or 'none'}; diverged runs: "
          f"{results['diverged'] or 'none'}; written to {study_results_path(study, args.runs_dir, args.at)}")


class _Parser(argparse.ArgumentParser):
    """argparse with its errors in one line (what was wrong, where to read the options), like GanError's."""

    def error(self, message: str) -> typing.NoReturn:
        self.exit(2, f"error: {self.prog}: {message} (see {self.prog} --help)\n")


def _count(minimum: int) -> Callable[[str], int]:
    """argparse type: an integer >= minimum."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be >= {minimum}, got {value}")
        return value
    return parse


def _number(what: str, ok: Callable[[float], bool], rule: str) -> Callable[[str], float]:
    """argparse type: a number (`what`, for the message) for which ok(value) holds, else "must be <rule>"."""
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
        if not ok(value):
            raise argparse.ArgumentTypeError(f"must be {rule}, got {text}")
        return value
    return parse


_positive_minutes = _number("a number of minutes", lambda v: v > 0, "> 0")
# GPUs per Ray task: a fraction in (0, 1] (runs sharing a GPU) or a whole number (Ray's rule)
_gpu_share = _number("a number of GPUs", lambda v: 0 < v <= 1 or v > 1 and v.is_integer(),
                     "a fraction in (0, 1] or a whole number")


def _device(text: str) -> str:
    """argparse type: a torch device name that exists on this machine."""
    try:
        device = torch.device(text)
    except RuntimeError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a device name (cpu, cuda, cuda:1, mps)") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise argparse.ArgumentTypeError(f"{text!r}: no CUDA GPU is available here; use --device cpu")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise argparse.ArgumentTypeError(f"{text!r}: Apple MPS is not available here; use --device cpu")
    return text


_positive, _non_negative = _count(1), _count(0)
Subparsers = argparse._SubParsersAction   # what add_subparsers() returns


def _add_common(p: argparse.ArgumentParser, features: bool = True, classifier: bool = False,
                local_device: bool = True) -> None:
    """--device, and the feature network (--feature-net, --fid-weights) and classifier options of a command.
    local_device=False: a device checked where the command trains (study commands print commands for other
    machines), not while parsing."""
    p.add_argument("--device", type=_device if local_device else str,
                   help="cpu, cuda, cuda:1, mps (default: best available)")
    if features:
        p.add_argument("--feature-net", help="TorchScript feature network for an offline proxy metric (not FID)")
        p.add_argument("--fid-weights", help=f"local copy of pytorch-fid's {INCEPTION_WEIGHTS_FILE}")
    if classifier:
        p.add_argument("--classifier", help="TorchScript CIFAR-10 classifier for class accuracy (and, with "
                                            "--feature-net, a proxy IS); default model/eval/cifar10_classifier.pt, "
                                            "'none' for none")


def _add_train(sub: Subparsers) -> None:
    t = sub.add_parser("train", help="train a model; writes last.pt, best.pt and history.json to --out")
    t.add_argument("model", choices=tuple(PRESETS), help="preset (ref_* = the reference report's recipes)")
    t.add_argument("--iters", type=_positive, help="total iterations (a resumed run continues up to this)")
    t.add_argument("--eval-every", type=_positive, help="validation metric every N iterations")
    t.add_argument("--eval-samples", type=_count(2), help="generated images per validation metric")
    t.add_argument("--data-dir", default="data", help="CIFAR-10 (cifar-10-batches-py or {train,test}/<class>/) or "
                   "any image folder ({train,test}/<class>/, <class>/ or flat; see --set dataset=...)")
    t.add_argument("--val-size", type=_count(2),
                   help="validation images held out of the training set (Config.val_size)")
    t.add_argument("--out", help="output folder (default runs/<name>)")
    t.add_argument("--stats-dir", help="cache of real-image feature statistics (default DATA_DIR/fid_stats)")
    t.add_argument("--resume", action="store_true", help="continue from OUT/last.pt")
    t.add_argument("--resume-from", metavar="STATE", help="continue the run of a compact state (model/states/"
                   "<name>.pt) on this device: expanded into OUT/last.pt, unless that is as far or further")
    t.add_argument("--fork-from", metavar="STATE", help="start from another run's training state (its last.pt, or a "
                   "compact state) with these settings (a new name and seed; learning rates, loss weights, steps, "
                   "batch size and augmentation may differ), when OUT holds no last.pt yet")
    t.add_argument("--time-limit", type=_positive_minutes, metavar="MINUTES",
                   help="stop after this many minutes, saving last.pt (continue later with --resume)")
    t.add_argument("--set", nargs="+", action="extend", default=[], metavar="KEY=VALUE",
                   help="override Config fields (repeatable: --set a=1 --set b=2 sets both)")
    _add_common(t, classifier=True)
    t.set_defaults(func=_cmd_train)


def _add_state(sub: Subparsers) -> None:
    cs = sub.add_parser("state", help="compact training states (model/states/): pack a run into one")
    cs.add_argument("action", choices=("pack",), help="pack: write SOURCE's training state, compact (bf16), to TARGET")
    cs.add_argument("source", help="a run folder, its last.pt, or a compact state")
    cs.add_argument("target", help="the compact state to write, e.g. model/states/sagan.pt")
    cs.add_argument("--min-advance", type=_non_negative, default=MIN_ADVANCE, metavar="ITERS",
                    help="replace an existing TARGET only when SOURCE is this many iterations further on")
    cs.set_defaults(func=_cmd_state)


def _add_sample(sub: Subparsers) -> None:
    s = sub.add_parser("sample", help="generate images from a checkpoint")
    s.add_argument("ckpt")
    s.add_argument("--n", type=_positive, default=64)
    s.add_argument("--out", required=True, help="FILE.npz or a folder for PNGs")
    s.add_argument("--seed", type=_non_negative, default=0)
    s.add_argument("--per-class", action="store_true", help="one PNG per class, named <index>_<class>.png")
    _add_common(s, features=False)
    s.set_defaults(func=_cmd_sample)


def _add_fid(sub: Subparsers) -> None:
    f = sub.add_parser("fid", help="Frechet distance between two image folders or .npz statistics")
    f.add_argument("path_a")
    f.add_argument("path_b")
    f.add_argument("--batch-size", type=_positive, help="images per forward pass (default: 500 on CUDA, else 50)")
    _add_common(f)
    f.set_defaults(func=_cmd_fid)


def _add_publish(sub: Subparsers) -> None:
    pub = sub.add_parser("publish", help="copy a run's best.pt and history to model/<name>_best.pt and "
                                         "_history.json.gz")
    pub.add_argument("run_dir")
    pub.add_argument("name")
    pub.add_argument("--model-dir", default="model")
    pub.add_argument("--sample-dir", help="also write one image per class there (e.g. SAGAN)")
    pub.add_argument("--force", action="store_true",
                     help="replace a published model even when the new one scores worse or was scored "
                          "differently (the old files go to MODEL_DIR/replaced/<time>/)")
    pub.set_defaults(func=_cmd_publish)


def _add_evaluate(sub: Subparsers) -> None:
    e = sub.add_parser("evaluate", help="8x8 grid PNG and test-set FID, KID, IS, class accuracy and diversity of "
                                        "a checkpoint (on the split it recorded)")
    e.add_argument("ckpt")
    e.add_argument("--data-dir", default="data")
    e.add_argument("--n", type=_count(2), default=TEST_SAMPLES, help="generated images (vs the 10,000 test images)")
    e.add_argument("--grid", help="PNG path for the 8x8 grid (default <ckpt name>.grid.png)")
    e.add_argument("--json", help="also write the test-set scores to this JSON file (the report reads them)")
    _add_common(e, classifier=True)
    e.set_defaults(func=_cmd_evaluate)


def _study_command(sub: Subparsers, name: str, summary: str, func: Callable[[argparse.Namespace], None]
                   ) -> argparse.ArgumentParser:
    """A `study NAME FILE` sub-command: the study file and where its run folders are (--runs-dir)."""
    p = sub.add_parser(name, help=summary)
    p.add_argument("file", help="study description, e.g. studies/attention.json")
    p.add_argument("--runs-dir", default="model/studies", help="run folders go to RUNS_DIR/<study>/<arm>_s<seed>/")
    p.set_defaults(func=func)
    return p


def _add_training_options(p: argparse.ArgumentParser) -> None:
    """The options of a study command that trains or times runs (here or, through `commands`, elsewhere)."""
    p.add_argument("--data-dir", default="data", help="CIFAR-10 folder (as for train)")
    p.add_argument("--stats-dir", help="cache of real-image feature statistics (default DATA_DIR/fid_stats)")
    p.add_argument("--threads", type=int, help="torch CPU threads of this process (1 to run two processes on 2 cores)")
    _add_common(p, local_device=False)


def _add_run_options(p: argparse.ArgumentParser) -> None:
    """The runs a study command trains (--arm, --seed) and how (--time-limit), besides _add_training_options."""
    _add_training_options(p)
    p.add_argument("--arm", action="append", default=[], help="only this arm (repeatable)")
    p.add_argument("--seed", type=int, action="append", default=[], help="only this seed (repeatable)")
    p.add_argument("--time-limit", type=_positive_minutes, metavar="MINUTES",
                   help="save the state and stop after this long (the same command continues)")


def _add_at(p: argparse.ArgumentParser) -> None:
    p.add_argument("--at", type=_positive, metavar="ITER",
                   help="compare the runs up to this iteration (an evaluation every run reached; runs stopped at a "
                        "time limit after it count) -> RUNS_DIR/<study>/results_at<ITER>.json")


def _add_study_run(sub: Subparsers) -> None:
    r = _study_command(sub, "run", "train every unfinished run, then write results.json", _cmd_study_run)
    _add_run_options(r)
    r.add_argument("--quiet", action="store_true", help="no progress bars, one line per run")
    r.add_argument("--engine", choices=("local", "ray"), default="local",
                   help="local (one run after another in this process) or ray (every run a Ray task, on this "
                        "machine or a Ray cluster; pip install -r requirements-ray.txt; see docs/distributed.md)")
    r.add_argument("--address", help="--engine ray: a running Ray cluster, auto or HOST:PORT (default: start one "
                                     "here for this command)")
    r.add_argument("--gpus-per-run", type=_gpu_share, metavar="F",
                   help="--engine ray: GPUs each run reserves (default 0; 0.25: four runs share one GPU)")
    r.add_argument("--cpus-per-run", type=_positive, metavar="N",
                   help="--engine ray: CPUs each run reserves, and its torch threads (default 1)")
    _add_at(r)


def _add_study(sub: Subparsers) -> None:
    st = sub.add_parser("study", help="run, list or collect the runs of a study description (studies/*.json)")
    actions = st.add_subparsers(dest="action", required=True, metavar="{run,commands,collect,status,time}")
    _add_study_run(actions)
    _add_run_options(_study_command(actions, "commands", "print one standalone `study run` command per run (for "
                                    "several processes, GPUs or machines)", _cmd_study_commands))
    _add_at(_study_command(actions, "collect", "rebuild results.json from the run folders", _cmd_study_collect))
    _study_command(actions, "status", "which runs are finished, in progress or not started", _cmd_study_status)
    t = _study_command(actions, "time", "seconds per iteration of every arm, timed in turn in one process on "
                       "synthetic images, to RUNS_DIR/<study>/timing.json (collect then compares times by it)",
                       _cmd_study_time)
    _add_training_options(t)   # the options of `run` are accepted, so one line of options serves both
    t.add_argument("--timed-iters", type=_positive, default=20, help="timed iterations per arm and round")


def build_parser() -> argparse.ArgumentParser:
    """The command line: one sub-command per job, each built by its _add_<command> function."""
    parser = _Parser(prog="python gan_helpers.py", description="GAN study kit: MLP, DCGAN and SAGAN, "
                                     "conditional or not, on CIFAR-10 or image folders.")
    sub = parser.add_subparsers(dest="command", required=True)
    for add in (_add_train, _add_state, _add_sample, _add_fid, _add_publish, _add_evaluate, _add_study):
        add(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except GanError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # a folder that cannot be created, a full disk, no permission: not a bug of ours
        print(f"error: {exc.strerror or exc}{f': {exc.filename}' if exc.filename else ''}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted: the last checkpoint is intact; continue with --resume", file=sys.stderr)
        return 130
    return 0
