"""train(): the loop, evaluations every eval_every iterations on the validation split, best.pt and last.pt,
exact resume, forks, time limits, divergence guard."""
from __future__ import annotations

import copy
import dataclasses
import datetime
import hashlib
import math
import time
from pathlib import Path
from typing import Any, Callable
import torch
import torch.nn as nn
from torch import Tensor

from .core import GanError, SELECTION_KEY, batched
from .device import Precision, compiled, device_name, device_of, eval_mode, precision, setup, to_device
from .config import Config
from .files import save_atomic, write_json_atomic
from .data import ImageSet, check_data, split_record, to_float
from .build import build_models
from .losses import d_loss
from .step import LOG_KEYS, ema_decay, make_optimizers, stack_logs, train_step
from .capture import CapturedStep, capture_unsupported
from .sampling import encode, latents, sample, standing_batch_norm, standing_batches
from .features import FeatureNet, Stats, real_stats
from .measures import evaluate_generator
from .checkpoints import FORK_FIELDS, RESUMABLE_FIELDS, load_checkpoint, rng_state, set_rng_state
from .states import load_state
from .images import save_snapshot, snapshot_path

__all__ = ['VALIDATION_LOSS_IMAGES', 'validation_losses', 'TrainingDiverged', 'diverged', 'new_history', 'code_version', 'describe_segments', 'ema_began', 'setting_schedule', 'best_eval', 'train']


# images of each kind (validation, training, generated) in the validation-loss check of every evaluation
VALIDATION_LOSS_IMAGES = 1000


def _d_logits(D: nn.Module, images: Tensor, labels: Tensor | None, z: Tensor | None = None) -> Tensor:
    """D's logits (N,) for images (N, 3, S, S) in [-1, 1] (any device), in batches on D's device; a BiGAN D
    scores them paired with latents z (N, z_dim)."""
    score = (lambda x, y: D(x, y)) if z is None else (lambda x, y, zz: D(x, y, z=zz))
    return batched(score, images, labels, *(() if z is None else (z,)), batch_size=500, device=device_of(D))


@torch.no_grad()
def validation_losses(cfg: Config, D: nn.Module, G: nn.Module, train_data: ImageSet, val_data: ImageSet,
                      n: int = VALIDATION_LOSS_IMAGES, seed: int = 0) -> dict[str, float]:
    """D's loss and mean logit on n held-out validation images ("_val") and on n training images, a fixed
    draw ("_train"), each against the same n images from G. A D that memorises its training images scores
    them above held-out ones and its validation loss rises above its training loss (the overfitting signal
    of Karras et al. 2020, ADA). D and G run in eval mode; the global RNG is untouched. A BiGAN D scores pairs:
    generated images with their latents, real ones with E's."""
    n = min(n, len(train_data), len(val_data))
    pick = torch.randperm(len(train_data), generator=torch.Generator().manual_seed(seed))[:n]
    fake_z, fake_labels = latents(G, n, seed=seed)
    bigan = getattr(G, "encoder", None) is not None
    with eval_mode(D):
        fake_logits = _d_logits(D, sample(G, n, seed=seed), fake_labels, fake_z if bigan else None)
        result = {"d_fake_eval": fake_logits.mean().item()}
        for name, data in (("train", train_data.subset(pick.to(train_data.y.device))),
                           ("val", val_data.subset(torch.arange(n, device=val_data.y.device)))):
            real = to_float(data.x)
            real_logits = _d_logits(D, real, data.y, encode(G, real) if bigan else None)
            result[f"d_loss_{name}"] = d_loss(cfg.loss, real_logits, fake_logits).item()
            result[f"d_real_{name}"] = real_logits.mean().item()
    return result


class TrainingDiverged(GanError):
    """A loss or mean logit became NaN, infinite or larger than cfg.diverged_above; the last good
    checkpoint is left as it was."""


def diverged(logs: dict[str, float], limit: float) -> bool:
    """True when any logged value is non-finite or its magnitude exceeds `limit` (Config.diverged_above)."""
    return not all(math.isfinite(v) and abs(v) <= limit for v in logs.values())


def new_history() -> dict[str, list]:
    """Per-iteration losses and mean D logits, one entry per evaluation, and one per training segment (a start
    or resume: from which iteration, under which code, on which device; see train())."""
    return {"iter": [], "d_loss": [], "g_loss": [], "d_real": [], "d_fake": [], "eval": [], "segments": []}


def code_version() -> str:
    """Which code is running: the first 12 hex digits of the sha256 of the package's sources (git or not), so a
    run's history shows where a long run went on under changed code."""
    digest = hashlib.sha256()
    for path in sorted(Path(__file__).resolve().parent.rglob("*.py")):   # the whole package, in a fixed order
        digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


def describe_segments(history: dict[str, list]) -> str:
    """One sentence on how a run was trained: its stretches (start and every resume) and where the code changed
    (the module hash logged by train()); what a report must disclose about a long run."""
    segments = history.get("segments", [])
    if not segments:
        return "no training segments logged (a run from before they were recorded)"
    ends = [s["from_iter"] for s in segments[1:]] + [history["iter"][-1] if history["iter"] else 0]
    stretches = ", ".join(f"{s['from_iter']:,}-{end:,} on {s['device']}" for s, end in zip(segments, ends))
    changes = [f"{s['from_iter']:,}" for prev, s in zip(segments, segments[1:]) if s["code"] != prev["code"]]
    code = (f"the code changed at iteration{'s' * (len(changes) > 1)} {', '.join(changes)}" if changes
            else "the same code throughout")
    settings = "".join(f"; {field} {before} -> {now} at iteration {s['from_iter']:,}"
                       for s in segments for field, (before, now) in s.get("changed", {}).items())
    fork = history.get("forked_from")
    origin = f"forked from {fork['name']} (seed {fork['seed']}) at iteration {fork['iteration']:,}, then " if fork else ""
    return (f"{origin}trained in {len(segments)} stretch{'es' * (len(segments) > 1)} ({stretches}); "
            f"{code}{settings}")


def setting_schedule(history: dict[str, list], field: str, value: Any) -> list[tuple[int, Any]]:
    """Config field `field` over a run, as (from iteration, value) pairs: its value from iteration 0, then each
    resume that changed it (the history's segments); [(0, value)] when no resume changed it (`value`: the config's)."""
    changes = [(s["from_iter"], s["changed"][field]) for s in history.get("segments", [])
               if field in s.get("changed", {})]
    if not changes:
        return [(0, value)]
    return [(0, changes[0][1][0])] + [(start, after) for start, (_, after) in changes]


def ema_began(history: dict[str, list], cfg: Config) -> int | None:
    """The iteration from which the run's EMA of G averaged G's weights: cfg.ema_start, or the last resume that
    switched the EMA on (ema_decay 0 -> > 0, an EMA started from G there), whichever is later; None without an EMA."""
    if not cfg.ema_decay:
        return None
    schedule = setting_schedule(history, "ema_decay", cfg.ema_decay)
    switched_on = [start for (_, before), (start, _) in zip(schedule, schedule[1:]) if before == 0]
    return max([cfg.ema_start, *switched_on[-1:]])


def best_eval(history: dict[str, list]) -> dict[str, Any] | None:
    """The evaluation with the lowest Frechet distance, or None before the first one."""
    return min(history["eval"], key=lambda e: e[SELECTION_KEY], default=None)


def _check_resumable(saved: Config, cfg: Config, path: Path, free: tuple[str, ...] = RESUMABLE_FIELDS) -> None:
    diff = {f.name: (getattr(saved, f.name), getattr(cfg, f.name)) for f in dataclasses.fields(Config)
            if f.name not in free and getattr(saved, f.name) != getattr(cfg, f.name)}
    if diff:
        shown = ", ".join(f"{k}: {a!r} in checkpoint vs {b!r} now" for k, (a, b) in diff.items())
        raise GanError(f"cannot resume from {path}: it was trained with another config ({shown}); "
                       f"use the same settings or another output folder (settings that may change: "
                       f"{', '.join(free)})")


def _load_networks(state: dict[str, Any], run: "_Run", cfg: Config) -> None:
    """A training state's weights, EMA, optimizer and gradient-scaler states into the run's new networks; the
    optimizers take cfg's learning rates (the state holds those it ran with; a resume or fork may change them)."""
    run.G.load_state_dict(state["G"])
    run.D.load_state_dict(state["D"])
    if run.G_ema is not None:   # a run without an EMA so far starts its EMA from G, as a new run does
        run.G_ema.load_state_dict(state["G_ema"] if state["G_ema"] is not None else state["G"])
    for opt, saved in ((run.opt_g, state["opt_g"]), (run.opt_d, state["opt_d"])):
        _load_optimizer(opt, saved)
    for opt, lr in ((run.opt_g, cfg.g_lr), (run.opt_d, cfg.d_lr)):
        for group in opt.param_groups:
            group["lr"] = lr
    for scaler, key in ((run.prec.scaler_g, "scaler_g"), (run.prec.scaler_d, "scaler_d")):
        if scaler is not None and state.get(key):
            scaler.load_state_dict(state[key])


def _load_optimizer(opt: torch.optim.Optimizer, saved: dict[str, Any]) -> None:
    """A saved optimizer state (moments, step counters, hyperparameters) into `opt`, keeping opt's own kernel
    settings (fused, foreach, capturable: make_optimizers' choice for this device), so that a state saved on the CPU
    resumes on a GPU with capturable step counters on the GPU, and one saved on a GPU resumes on the CPU."""
    kernel = ("fused", "foreach", "capturable")
    groups = [{**group, **{k: fresh[k] for k in kernel if k in fresh}}
              for group, fresh in zip(saved["param_groups"], opt.param_groups)]
    opt.load_state_dict({**saved, "param_groups": groups})


LOG_CHUNK = 50   # iterations whose logged values reach the host in one transfer: the loop's one wait per chunk


@dataclasses.dataclass
class _Run:
    """What train()'s steps share: the networks and optimizers on their device, the history, the clock."""
    cfg: Config
    out_dir: Path
    G: nn.Module
    D: nn.Module
    G_ema: nn.Module | None
    opt_g: torch.optim.Optimizer
    opt_d: torch.optim.Optimizer
    prec: Precision
    history: dict[str, list]
    start: int = 0                   # the iteration this process starts from
    seconds: float = 0.0             # wall-clock time in training steps (evaluations and checkpoints excluded)
    cpu_seconds: float = 0.0         # this process's CPU time in them: on a shared CPU, the cost without the waiting

    @property
    def G_eval(self) -> nn.Module:
        return self.G_ema if self.G_ema is not None else self.G

    @property
    def last_path(self) -> Path:
        return self.out_dir / "last.pt"


def _setup(cfg: Config, out_dir: Path, device: torch.device, resume: bool) -> _Run:
    """Seeded new networks, optimizers and precision on `device`; refuses to overwrite a run in out_dir."""
    if (out_dir / "last.pt").is_file() and not resume:
        raise GanError(f"{out_dir} already holds a run (last.pt): resume it (resume=True / --resume) "
                       f"or choose another output folder, so that nothing is overwritten")
    setup(cfg.seed)
    G, D = build_models(cfg)
    G_ema = copy.deepcopy(G) if cfg.ema_decay > 0 else None
    G, D = to_device(G, device), to_device(D, device)
    G_ema = to_device(G_ema, device) if G_ema is not None else None
    torch.backends.cudnn.benchmark = device.type == "cuda"   # fixed shapes: let cuDNN pick its fastest kernels
    return _Run(cfg, out_dir, G, D, G_ema, *make_optimizers(cfg, G, D), precision(cfg.amp, device), new_history())


def _resume(run: _Run, source: Path, resuming: bool) -> dict[str, list]:
    """Load a training state: resuming (source is out_dir's last.pt: history, clock and random state go on) or
    forking (another run's state: weights and optimizers only). Returns the settings that changed."""
    cfg, state = run.cfg, load_state(source)    # a run's last.pt, or a compact state (model/states/) expanded
    saved = Config.from_dict(state["config"])
    _check_resumable(saved, cfg, source, RESUMABLE_FIELDS + (() if resuming else FORK_FIELDS))
    changed = {f: [getattr(saved, f), getattr(cfg, f)] for f in RESUMABLE_FIELDS   # iters: every resume's
               if f != "iters" and getattr(saved, f) != getattr(cfg, f)}                # own, not a setting
    _load_networks(state, run, cfg)
    run.start = state["iteration"]
    if resuming:
        set_rng_state(state["rng"])
        run.history, run.seconds = state["history"], state["seconds"]
        run.cpu_seconds = state["cpu_seconds"]
    else:   # a fork: setup(cfg.seed) seeded its random stream; its history and time start here
        if run.start >= cfg.iters:
            raise GanError(f"cannot fork from {source}: it is at iteration {run.start:,}, and iters={cfg.iters:,} "
                           f"leaves nothing to train; set iters above {run.start:,}")
        run.history["forked_from"] = {"state": str(source), "name": saved.name, "seed": saved.seed,
                                      "iteration": run.start}
    return changed


def _checkpoint(run: _Run, iteration: int, val_data: ImageSet) -> None:
    """The full training state to last.pt and the history to history.json, each written atomically."""
    prec = run.prec
    save_atomic({"kind": "train_state", "config": dataclasses.asdict(run.cfg), "split": split_record(val_data),
                 "iteration": iteration, "G": run.G.state_dict(), "D": run.D.state_dict(),
                 "G_ema": run.G_ema.state_dict() if run.G_ema is not None else None,
                 "opt_g": run.opt_g.state_dict(), "opt_d": run.opt_d.state_dict(), "rng": rng_state(),
                 "scaler_g": prec.scaler_g.state_dict() if prec.scaler_g is not None else None,
                 "scaler_d": prec.scaler_d.state_dict() if prec.scaler_d is not None else None,
                 "history": run.history, "seconds": run.seconds, "cpu_seconds": run.cpu_seconds}, run.last_path)
    write_json_atomic(run.history, run.out_dir / "history.json")


def _evaluate(run: _Run, iteration: int, data: tuple[ImageSet, ImageSet], real: Stats, features: FeatureNet,
              on_eval: Callable[[dict[str, list]], None] | None) -> None:
    """Score the generator (the EMA's, with standing BatchNorm statistics) on the validation split, log D's
    validation losses and a snapshot, and keep best.pt when the score is the run's best so far."""
    train_data, val_data = data
    if run.G_ema is not None:
        # its copied BN statistics belong to G's weights, not the EMA's
        standing_batch_norm(run.G_ema, standing_batches(run.cfg.eval_samples))
    result = {"iter": iteration, "seconds": round(run.seconds, 3), "cpu_seconds": round(run.cpu_seconds, 3),
              **evaluate_generator(run.G_eval, real, features, run.cfg.eval_samples),
              **validation_losses(run.cfg, run.D, run.G, train_data, val_data)}
    save_snapshot(run.G_eval, snapshot_path(run.out_dir, iteration))
    best = best_eval(run.history)
    run.history["eval"].append(result)
    if best is None or result[SELECTION_KEY] < best[SELECTION_KEY]:
        validation_hash = hashlib.sha256(val_data.x.cpu().contiguous().numpy().tobytes()).hexdigest()[:16]
        save_atomic({"kind": "generator", "config": dataclasses.asdict(run.cfg), "split": split_record(val_data),
                     "iteration": iteration, "G": run.G_eval.state_dict(), "metrics": result,
                     "summary": {"data": train_data.source, "features": features.label, "features_key": features.key,
                                 "validation_sha256": validation_hash, "ema": run.G_ema is not None,
                                 "selected_by": "lowest validation " + result["metric"]}},
                    run.out_dir / "best.pt")
    write_json_atomic(run.history, run.out_dir / "history.json")
    if on_eval is not None:
        on_eval(run.history)


def _step_function(run: _Run, train_data: ImageSet, say: Callable[[str], None]) -> Callable[[float], dict[str, Tensor]]:
    """The training step as a function of the EMA decay: eager (through torch.compile when cfg.compile names a
    backend), or recorded as a CUDA graph (cfg.compile="cudagraph"; eager, saying why, where it cannot be)."""
    cfg = run.cfg
    capture = cfg.compile == "cudagraph"
    G_run, D_run = (run.G, run.D) if capture else (compiled(run.G, cfg.compile), compiled(run.D, cfg.compile))
    batch = lambda: train_data.batch(cfg.batch_size, cfg.hflip)   # noqa: E731
    eager = lambda decay: train_step(cfg, G_run, D_run, run.G_ema, run.opt_g, run.opt_d, batch, decay,  # noqa: E731
                                     run.prec)
    if not capture:
        return eager
    why = capture_unsupported(cfg, device_of(run.G), run.prec)
    if why is not None:
        say(f"compile='cudagraph': training eagerly, since {why}")
        return eager
    models = [m for m in (run.G, run.D, run.G_ema) if m is not None]
    return CapturedStep(eager, models, [run.opt_g, run.opt_d], device_of(run.G))


def train(cfg: Config, out_dir: str | Path, train_data: ImageSet, val_data: ImageSet, features: FeatureNet,
          device: torch.device | str = "cpu", resume: bool = False, progress: bool = True,
          on_eval: Callable[[dict[str, list]], None] | None = None,
          stats_dir: str | Path | None = None, time_limit: float | None = None,
          fork_from: str | Path | None = None) -> dict[str, list]:
    """Train G and D for cfg.iters iterations (in total, counting resumed ones), or until `time_limit`
    seconds have passed (then last.pt is written and resume=True continues; e.g. a Colab or batch session).

    fork_from: a training state (another run's last.pt, or a compact state such as model/states/<name>.pt) to
    start from when out_dir holds none: its weights, EMA and optimizer states at its iteration, with cfg's
    resumable settings (RESUMABLE_FIELDS, e.g. a lower learning rate), its own name and seed: the random stream
    (data order, latents) starts from cfg.seed, so forks of one state with one seed see the same batches and differ only in their settings. The fork's
    history starts at that iteration with an evaluation (its curve's starting point) and records the state
    it came from (history["forked_from"]); its training time counts from the fork.

    Writes to `out_dir`: last.pt (full state, every cfg.checkpoint_every iterations and at the end),
    best.pt (generator at its best validation metric, evaluated every cfg.eval_every iterations and at
    the end on cfg.eval_samples images), history.json (every iteration's losses and mean logits, which reach
    the host LOG_CHUNK iterations at a time), and at every evaluation snapshots/iter_NNNNNN.png
    (save_snapshot: the same latents and labels every time). Each evaluation logs the Frechet distance, KID,
    IS and class accuracy (where the feature network gives them) and validation_losses(). Returns the
    history; each evaluation also records `seconds`, the wall-clock time spent in training steps so far
    (evaluations and checkpoints excluded; carried across resumes), and `cpu_seconds`, this process's CPU time
    in them (on a shared CPU, what the steps cost without the waiting). `on_eval(history)` is called after each
    evaluation (e.g. a live plot)."""
    cfg.validate()
    check_data(cfg, train_data)
    out_dir, device = Path(out_dir), torch.device(device)
    out_dir.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    run = _setup(cfg, out_dir, device, resume)
    resuming, changed = resume and run.last_path.is_file(), {}
    if resuming or fork_from is not None:
        changed = _resume(run, run.last_path if resuming else Path(fork_from), resuming)
    run.history["segments"].append(
        {"from_iter": run.start, "code": code_version(), "device": device_name(device),
         "started": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
         **({"changed": changed} if changed else {})})   # resumable fields set differently: [before, now]
    train_data = train_data.to(device)
    real = real_stats(val_data, "val", features, stats_dir or out_dir)
    evaluate = lambda done: _evaluate(run, done, (train_data, val_data), real, features, on_eval)  # noqa: E731
    if not run.history["eval"]:
        evaluate(run.start)   # the validation curve's starting point (iteration 0, or the state a fork starts from)
    deadline = None if time_limit is None else started + time_limit
    _step_loop(run, _step_function(run, train_data, print), evaluate, val_data, deadline, progress)
    if run.start >= cfg.iters:
        write_json_atomic(run.history, out_dir / "history.json")
    return run.history


def _step_loop(run: _Run, step: Callable[[float], dict[str, Tensor]], evaluate: Callable[[int], None],
               val_data: ImageSet, deadline: float | None, progress: bool) -> None:
    """Iterations run.start..cfg.iters: the step, its values kept on the device and moved to the history a chunk
    at a time (checked for divergence there), evaluations and checkpoints on schedule, the time limit."""
    from tqdm.auto import tqdm
    cfg, history = run.cfg, run.history
    bar = tqdm(total=cfg.iters, initial=run.start, disable=not progress, desc=cfg.name, dynamic_ncols=True)
    pending: list[Tensor] = []   # (len(LOG_KEYS),) per iteration, on the device
    clock = [time.perf_counter(), time.process_time()]

    def flush(done: int) -> None:
        """The pending iterations' values to the history in one transfer; their time to the run's clock."""
        rows = torch.stack(pending).tolist() if pending else []   # (n, 4): the loop's one wait for the device
        run.seconds += time.perf_counter() - clock[0]
        run.cpu_seconds += time.process_time() - clock[1]
        for i, row in enumerate(rows):
            logs, it = dict(zip(LOG_KEYS, row)), done - len(rows) + i + 1
            if diverged(logs, cfg.diverged_above):
                _stop_diverged(run, it, logs)
            history["iter"].append(it)
            for key, value in logs.items():
                history[key].append(round(value, 6))
        pending.clear()
        if rows:
            bar.update(len(rows))
            last = history["eval"][-1]
            bar.set_postfix(d=f"{rows[-1][0]:.3f}", g=f"{rows[-1][1]:.3f}", fd=f"{last['fd']:.3g}@{last['iter']}",
                            refresh=False)

    for it in range(run.start, cfg.iters):
        pending.append(stack_logs(step(ema_decay(cfg, it))))
        done = it + 1
        out_of_time = deadline is not None and time.monotonic() > deadline
        evaluating = done % cfg.eval_every == 0 or done == cfg.iters
        saving = done % cfg.checkpoint_every == 0 or done == cfg.iters or out_of_time
        if len(pending) == LOG_CHUNK or evaluating or saving:
            flush(done)
            if evaluating:
                evaluate(done)
            if saving:
                _checkpoint(run, done, val_data)
            clock[:] = time.perf_counter(), time.process_time()
        if out_of_time:
            bar.write(f"time limit reached at iteration {done}: state saved to {run.last_path}; "
                      f"continue with resume=True (--resume)")
            break
    bar.close()


def _stop_diverged(run: _Run, iteration: int, logs: dict[str, float]) -> None:
    """Raise TrainingDiverged for `iteration`, naming the last good state (last.pt is never written after it)."""
    last = run.last_path
    kept = f"{last} (iteration {load_checkpoint(last)['iteration']})" if last.is_file() else "no checkpoint yet"
    shown = ", ".join(f"{k}={v:.3g}" for k, v in logs.items())
    raise TrainingDiverged(f"training diverged at iteration {iteration} ({shown}; the limit is non-finite or "
                           f"|value| > diverged_above={run.cfg.diverged_above:g}); training stopped, last good "
                           f"state kept: {kept}. Lower the learning rates or resume with another seed")
