"""Studies: a study file (arms x seeds of --set overrides), its run folders, and run_study()."""
from __future__ import annotations

import dataclasses
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, NamedTuple
import torch

from .core import GanError
from .device import device_name
from .config import Config, PRESETS
from .files import write_json_atomic
from .checkpoints import compress_history, history_file, read_history
from .data import ImageSet, load_dataset, split_record
from .features import FeatureNet
from .training import TrainingDiverged, train

__all__ = ['STUDY_OWNED_FIELDS', 'SPLIT_FIELDS', 'STUDY_KEYS', 'Study', 'load_study', 'study_run_dir',
           'study_timing_path', 'run_record', 'study_status', 'done_earlier', 'study_stats_dir', 'RunOutcome',
           'train_study_run', 'run_study']


# Config fields a study sets for all its runs (from its own keys), never through an arm's overrides
STUDY_OWNED_FIELDS = ("name", "seed", "iters", "eval_every", "eval_samples", "checkpoint_every")


# Config fields that choose the images a run trains and is validated on (load_dataset)
SPLIT_FIELDS = ("dataset", "img_size", "classes", "val_size", "split_seed")
STUDY_KEYS = ("name", "description", "preset", "width", "set", "arms", "grid", "shared", "seeds", "iters",
              "eval_every", "eval_samples", "start_from")


@dataclass
class Study:
    """A study (studies/<name>.json): each arm is the preset with the study's `base` overrides, then the arm's
    own; every arm is trained once per seed with one budget and one evaluation protocol."""
    name: str                          # folder of its runs and results: <runs_dir>/<name>/
    description: str                   # the question the study asks (copied into the results file)
    preset: str                        # a PRESETS key
    base: tuple[str, ...]              # key=value overrides of every arm, as `train --set` takes them
    arms: dict[str, tuple[str, ...]]   # arm name -> its own key=value overrides, applied after `base`
    seeds: tuple[int, ...]             # Config.seed of each run; the same seed gives every arm the same start
    iters: int                         # iterations of every run
    eval_every: int                    # validation metric every this many iterations (and checkpoints)
    eval_samples: int                  # generated images per validation metric
    # arm -> (study, arm) whose runs it shares: the same config (checked by load_study), trained once, in the
    # other study's folders; e.g. every study's baseline arm is one set of runs
    shared: dict[str, tuple[str, str]] = dataclasses.field(default_factory=dict)
    # a training state (a run's last.pt or a compact state) every run forks from (train(fork_from=...)) instead of
    # starting from new networks: arms then ask what a change does from that point of a run; iters counts from 0,
    # as the state's iteration does
    start_from: str | None = None
    # arm -> the preset it starts from instead of `preset` (an arm given as {"preset": ..., "set": [...]}), so that
    # recipes of different presets (e.g. the DCGAN and the SAGAN) are compared in one study
    arm_presets: dict[str, str] = dataclasses.field(default_factory=dict)

    def owner(self, arm: str) -> tuple[str, str]:
        """(study, arm) whose folders hold this arm's runs: its own, or those of the arm it shares."""
        return self.shared.get(arm, (self.name, arm))

    def config(self, arm: str, seed: int) -> Config:
        """The Config of one run (named after the study and arm that own its runs)."""
        cfg = PRESETS[self.arm_presets.get(arm, self.preset)]().with_overrides([*self.base, *self.arms[arm]])
        if cfg.classes and cfg.cond_classes:   # a class subset: the models are conditioned on its classes
            cfg = dataclasses.replace(cfg, num_classes=len(cfg.classes))
        return dataclasses.replace(cfg, name="-".join(self.owner(arm)), seed=seed, iters=self.iters,
                                   eval_every=self.eval_every, eval_samples=self.eval_samples,
                                   checkpoint_every=self.eval_every).validate()

    def runs(self) -> list[tuple[str, int]]:
        """(arm, seed) of every run, seed by seed, so a study stopped early has whole seeds of every arm."""
        return [(arm, seed) for seed in self.seeds for arm in self.arms]


def _grid_arms(axes: list[dict[str, list[str]]]) -> dict[str, tuple[str, ...]]:
    """Cartesian product of named override lists: [{"a": [..], "b": [..]}, {"x": [..]}] -> arms "a-x", "b-x"."""
    arms: dict[str, tuple[str, ...]] = {"": ()}
    for axis in axes:
        arms = {f"{name}-{label}".strip("-"): (*sets, *more) for name, sets in arms.items()
                for label, more in axis.items()}
    return arms


def load_study(path: str | Path, share: bool = True) -> Study:
    """Read and check a study description: every arm's Config is built and validated here, so a typo fails
    before any training. Keys: preset, arms ({name: [key=value, ...]}, or {name: {"preset": P, "set": [...]}} for an
    arm that starts from another preset) or grid ([{name: [...]}, ...], the
    arms being every combination), seeds, iters, eval_every, eval_samples; optional name (default: the
    file's stem), description, set (overrides of every arm), width (g_ch = d_ch = width), shared ({arm:
    "study/arm"}: the arm's runs are that arm's of the study file beside this one, which must give the same
    config; so arms common to several studies are trained once). share=False leaves `shared` out (each arm
    then uses its own folders)."""
    path = Path(path)
    try:
        spec = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise GanError(f"study file {path} could not be read as JSON ({exc})") from exc
    unknown = sorted(set(spec) - set(STUDY_KEYS))
    missing = sorted({"preset", "seeds", "iters", "eval_every", "eval_samples"} - set(spec))
    if unknown or missing or ("arms" in spec) == ("grid" in spec):
        raise GanError(f"study file {path}: unknown keys {unknown}, missing keys {missing}; it needs exactly one "
                       f"of 'arms' and 'grid' (valid keys: {', '.join(STUDY_KEYS)})")
    if spec["preset"] not in PRESETS:
        raise GanError(f"study file {path}: preset {spec['preset']!r} is not one of {sorted(PRESETS)}")
    width = [f"g_ch={spec['width']}", f"d_ch={spec['width']}"] if "width" in spec else []
    arms = spec["arms"] if "arms" in spec else _grid_arms(spec["grid"])
    arm_presets = {a: v.get("preset", spec["preset"]) for a, v in arms.items() if isinstance(v, dict)}
    bad = [a for a, v in arms.items() if not isinstance(v, (list, tuple, dict)) or isinstance(v, dict) and (
        set(v) - {"preset", "set"} or v.get("preset", spec["preset"]) not in PRESETS)]
    if bad:
        raise GanError(f"study file {path}: arms {bad} must each be a list of key=value overrides or "
                       f"{{\"preset\": one of {sorted(PRESETS)}, \"set\": [key=value, ...]}}")
    arms = {a: v.get("set", []) if isinstance(v, dict) else v for a, v in arms.items()}
    study = Study(name=spec.get("name", path.stem), description=spec.get("description", ""), preset=spec["preset"],
                  base=(*width, *spec.get("set", [])), arms={a: tuple(s) for a, s in arms.items()},
                  seeds=tuple(spec["seeds"]), iters=spec["iters"], eval_every=spec["eval_every"],
                  eval_samples=spec["eval_samples"], start_from=spec.get("start_from"), arm_presets=arm_presets)
    for arm, sets in study.arms.items():
        owned = [s for s in (*study.base, *sets) if s.partition("=")[0] in STUDY_OWNED_FIELDS]
        if owned or not arm.replace("-", "").replace("_", "").replace(".", "").isalnum():
            raise GanError(f"study file {path}, arm {arm!r}: arm names use letters, digits, '-', '_', '.', and "
                           f"{list(STUDY_OWNED_FIELDS)} are set by the study's own keys, not by overrides {owned}")
        try:
            study.config(arm, 0)
        except GanError as exc:
            raise GanError(f"study file {path}, arm {arm!r}: {exc}") from exc
    if len(set(study.seeds)) != len(study.seeds) or not study.seeds:
        raise GanError(f"study file {path}: seeds must be distinct and at least one, got {list(study.seeds)}")
    for arm, ref in spec.get("shared", {}).items() if share else ():
        _share(study, arm, ref, path)
    return study


def _share(study: Study, arm: str, ref: str, path: Path) -> None:
    """Make `arm` of `study` (read from `path`) use the runs of `ref` ("study/arm", a study file beside
    `path`), after checking that both give the same config for every seed."""
    other_name, _, other_arm = ref.partition("/")
    other_path = path.parent / f"{other_name}.json"
    if arm not in study.arms or not other_arm or other_name == study.name or not other_path.is_file():
        raise GanError(f"study file {path}: shared {{{arm!r}: {ref!r}}} needs an arm of this file and "
                       f"'study/arm' naming another study file beside it ({other_path} does not exist or the "
                       f"names are wrong)")
    other = load_study(other_path, share=False)
    if other_arm not in other.arms or other_arm in json.loads(other_path.read_text()).get("shared", {}):
        raise GanError(f"study file {path}: shared arm {ref!r} is not an arm of {other_path} that owns its runs")
    study.shared[arm] = (other.name, other_arm)
    mine, theirs = study.config(arm, 0), dataclasses.replace(other.config(other_arm, 0), seed=0)
    differ = {f.name: (getattr(mine, f.name), getattr(theirs, f.name)) for f in dataclasses.fields(Config)
              if getattr(mine, f.name) != getattr(theirs, f.name)}
    if differ:
        raise GanError(f"study file {path}: arm {arm!r} cannot share the runs of {ref!r}, their configs differ "
                       f"in {differ} (this study's value first)")


def study_run_dir(study: Study, arm: str, seed: int, runs_dir: str | Path = "model/studies") -> Path:
    """<runs_dir>/<study>/<arm>_s<seed>/ (of the owning study and arm for a shared arm): last.pt, best.pt
    (not committed), history.json.gz (history.json while it trains), run.json."""
    owner, owner_arm = study.owner(arm)
    return Path(runs_dir) / owner / f"{owner_arm}_s{seed}"


def study_timing_path(study: Study, runs_dir: str | Path = "model/studies") -> Path:
    """Where `study time` writes the study's seconds per iteration of every arm (time_study) for collect_study."""
    return Path(runs_dir) / study.name / "timing.json"


def run_record(folder: Path, reached: int | None = None) -> dict[str, Any] | None:
    """A finished run's run.json (its config, seed, arm, device; for a run that diverged also "diverged": the
    message), or None when the run has not finished. A run stopped at a time limit has one too, with "stopped":
    the iteration it reached; it counts as finished only up to `reached`, when it was evaluated there."""
    path = folder / "run.json"
    if not (path.is_file() and history_file(folder) is not None):
        return None
    record = json.loads(path.read_text())
    if "stopped" not in record:
        return record
    evals = read_history(folder)["eval"] if reached is not None else []
    return record if any(e["iter"] == reached for e in evals) else None


def study_status(study: Study, runs_dir: str | Path = "model/studies") -> list[str]:
    """One line per arm x seed: finished, diverged, in progress (the iteration its last.pt reached) or not
    started; for deciding what a machine should continue."""
    lines = []
    for arm, seed in study.runs():
        folder = study_run_dir(study, arm, seed, runs_dir)
        record = run_record(folder)
        if record is not None:
            state = f"diverged ({record['diverged']})" if record.get("diverged") else "finished"
        elif (folder / "last.pt").is_file():
            done = torch.load(folder / "last.pt", map_location="cpu", weights_only=True)["iteration"]
            state = f"in progress: {done:,} of {study.iters:,} iterations"
        elif (folder / "run.json").is_file():
            stopped = json.loads((folder / "run.json").read_text())["stopped"]
            state = f"stopped at {stopped:,} of {study.iters:,} iterations, without the state to continue (last.pt)"
        else:
            state = "not started"
        lines.append(f"{arm} seed {seed} ({folder}): {state}")
    return lines


def done_earlier(study: Study, arm: str, seed: int, runs_dir: str | Path = "model/studies") -> str | None:
    """The line saying how a run ended earlier with the study's config ("finished earlier", "diverged
    earlier"), or None when it is still to be trained or continued. A finished run of another config without
    a last.pt to continue from is refused."""
    folder = study_run_dir(study, arm, seed, runs_dir)
    record = run_record(folder)
    if record is not None and Config.from_dict(record["config"]) == study.config(arm, seed):
        return f"{folder}: {'diverged' if record.get('diverged') else 'finished'} earlier"
    if record is not None and not (folder / "last.pt").is_file():
        raise GanError(f"{folder} holds a finished run of another config and no last.pt to continue from: "
                       f"move it away, or restore the study file it was made with")
    if (folder / "run.json").is_file() and not (folder / "last.pt").is_file():
        raise GanError(f"{folder} holds a run stopped at its time limit without the state to continue it (last.pt): "
                       f"collect it with `study collect --at ITER`, or move it away to train it again")
    return None


def study_stats_dir(data: str | Path | tuple[ImageSet, ImageSet], stats_dir: str | Path | None) -> Path:
    """Where a study's runs cache the validation statistics: `stats_dir`, by default <data>/fid_stats."""
    if stats_dir is None and not isinstance(data, (str, Path)):
        raise GanError("a study of images in memory needs stats_dir (where real statistics are cached)")
    return Path(stats_dir if stats_dir is not None else Path(data) / "fid_stats")


class RunOutcome(NamedTuple):
    """What train_study_run did to one run."""
    state: str   # "trained" (to the study's iters), "stopped" (time limit: last.pt continues it) or "diverged"
    line: str    # the same in words, with the run's folder


def train_study_run(study: Study, arm: str, seed: int, data: str | Path | tuple[ImageSet, ImageSet],
                    features: FeatureNet, runs_dir: str | Path = "model/studies", device: torch.device | str = "cpu",
                    stats_dir: str | Path | None = None, progress: bool = True, time_limit: float | None = None,
                    loaded: dict[tuple[Any, ...], tuple[ImageSet, ImageSet]] | None = None) -> RunOutcome:
    """Train one run (arm, seed) of `study` in its folder, continuing exactly from its last.pt when it has one
    (train(resume=True)): what every engine does per run (run_study here, run_study_ray in gankit/engines.py).
    `data`: a data folder, read by load_dataset() with the run's config (dataset, img_size, classes, val_size,
    split_seed), as `train` reads it, or (train, validation) images; `loaded` (split fields -> images) keeps
    the splits read so far for the next runs of the same process. The validation statistics are cached in
    study_stats_dir(data, stats_dir). `time_limit`: seconds, then the run saves its state and stops. A
    finished run gets run.json (config, split, device); so does a run that diverges (TrainingDiverged), with
    "diverged": the message, so that it stops no other run, is not trained again and is left out of the
    results (collect_study lists it); so does a run stopped at the time limit, with "stopped": its iteration.
    Each then keeps its history compressed (compress_history: history.json.gz, what git holds)."""
    cfg, folder = study.config(arm, seed), study_run_dir(study, arm, seed, runs_dir)
    split = tuple(getattr(cfg, k) for k in SPLIT_FIELDS)
    loaded = {} if loaded is None else loaded
    if isinstance(data, (str, Path)) and split not in loaded:
        loaded[split] = load_dataset(cfg, data)
    images = loaded[split] if isinstance(data, (str, Path)) else data
    owner, owner_arm = study.owner(arm)
    record = {"study": owner, "arm": owner_arm, "seed": seed, "set": [*study.base, *study.arms[arm]],
              "config": dataclasses.asdict(cfg), "split": split_record(images[1]),
              "device": device_name(torch.device(device)), "torch": torch.__version__}
    try:
        history = train(cfg, folder, *images, features, device, resume=True, progress=progress,
                        stats_dir=study_stats_dir(data, stats_dir), time_limit=time_limit, fork_from=study.start_from)
    except TrainingDiverged as exc:
        outcome = RunOutcome("diverged", f"{folder}: diverged, left out of the results ({exc})")
        record["diverged"] = str(exc)
    else:
        outcome = RunOutcome("trained", f"{folder}: trained to iteration {cfg.iters}")
        if history["iter"][-1:] != [cfg.iters]:   # recorded, so that `study collect --at` can compare it there
            outcome = RunOutcome("stopped", f"{folder}: stopped at iteration {history['iter'][-1]} (time limit); "
                                            f"run again to continue")
            record["stopped"] = history["iter"][-1]
    write_json_atomic(record, folder / "run.json")
    if (folder / "history.json").is_file():   # what is committed: the history, compressed (a resumed run rewrites it)
        compress_history(folder)
    return outcome


def run_study(study: Study, data: str | Path | tuple[ImageSet, ImageSet], features: FeatureNet,
              runs_dir: str | Path = "model/studies",
              device: torch.device | str = "cpu", only: Callable[[str, int], bool] | None = None,
              stats_dir: str | Path | None = None, progress: bool = True,
              time_limit: float | None = None) -> list[str]:
    """The local engine: train every run of `study` (those `only(arm, seed)` accepts) that has not ended, one
    after another in this process (train_study_run; the arguments are its); finished and diverged runs are
    skipped, an interrupted run resumes exactly from its last checkpoint. With `time_limit` (seconds, for
    sessions with a time limit) the run in progress saves its state and the study stops once that much time
    has passed; the same call later continues it. Returns one line per run saying what happened."""
    device = torch.device(device)
    started = time.monotonic()
    lines: list[str] = []
    loaded: dict[tuple[Any, ...], tuple[ImageSet, ImageSet]] = {}
    for arm, seed in study.runs():
        if only is not None and not only(arm, seed):
            continue
        earlier = done_earlier(study, arm, seed, runs_dir)
        if earlier is not None:
            lines.append(earlier)
            continue
        left = None if time_limit is None else time_limit - (time.monotonic() - started)
        outcome = train_study_run(study, arm, seed, data, features, runs_dir, device, stats_dir, progress, left,
                                  loaded)
        lines.append(outcome.line)
        if outcome.state == "stopped":
            break
    return lines
