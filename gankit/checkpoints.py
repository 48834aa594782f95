"""Checkpoints: loading (clear errors for missing, corrupt or foreign files), generators from them, RNG states."""
from __future__ import annotations

import gzip
import json
import random
from pathlib import Path
from typing import Any
import numpy as np
import torch
import torch.nn as nn

from .core import GanError
from .files import atomic_path
from .device import to_device
from .config import Config
from .build import build_models
from .sampling import standing_batch_norm, standing_batches

__all__ = ['RUN_FIELDS', 'TRAINING_FIELDS', 'RESUMABLE_FIELDS', 'FORK_FIELDS', 'migrate_record', 'HISTORY_FILES',
           'history_file', 'read_history', 'write_history', 'compress_history', 'load_checkpoint',
           'generator_from_checkpoint', 'load_generator', 'load_discriminator', 'rng_state', 'set_rng_state']


# fields that may change between a run and its resumption (or fork, train(fork_from=...)); train() logs every
# change in the history's segments. How long and how often, and the EMA of G (it only samples; it never feeds
# back into training): G and D learn exactly as they would have.
RUN_FIELDS = ("iters", "eval_every", "eval_samples", "checkpoint_every", "amp", "compile", "diverged_above",
              "ema_decay", "ema_start")


# Training hyperparameters that leave every tensor's shape alone (learning rates, loss weights, steps per
# round, batch size, augmentation): a change alters what G and D learn from that iteration on, like a schedule.
TRAINING_FIELDS = ("g_lr", "d_lr", "n_critic", "n_gen", "batch_size", "acgan_weight", "info_weight", "drift",
                   "gp_weight", "clip_value", "cr_weight", "ms_weight", "diffaug", "hflip")


RESUMABLE_FIELDS = RUN_FIELDS + TRAINING_FIELDS


FORK_FIELDS = ("name", "seed")   # a fork is a new run: its own name, and its own seed for the random stream


def _migrate_eval(evaluation: dict[str, Any]) -> dict[str, Any]:
    """An evaluation logged before CPU time was kept: its wall-clock "seconds" stand in for "cpu_seconds" (what
    a study then compares CPU runs by, STUDY_TIME). Evaluations without clocks (the reference report's) stay."""
    if "cpu_seconds" in evaluation or "seconds" not in evaluation:
        return evaluation
    return {**evaluation, "cpu_seconds": evaluation["seconds"]}


def migrate_record(kind: str, record: dict[str, Any]) -> dict[str, Any]:
    """A record of `kind` as written by any version of the kit -> today's format: the one place that reads old
    formats of checkpoints and histories (configs: migrate_config, which Config.from_dict applies).
    - "history" (history.json, a training state's history): a history from before training segments were logged
      has none (-> []); evaluations from before CPU time was kept get it (_migrate_eval);
    - "train_state", "compact_state" (last.pt, model/states/*.pt): a state from before its clocks were kept
      starts them at "seconds" 0 and "cpu_seconds" = "seconds"; its history as above;
    - "generator" (best.pt, model/*_best.pt): a summary from before the validation images' hash and the feature
      network's key were recorded lacks them (-> None: publish_refusal then compares data sources), or is
      missing (-> an unnamed data source); a generator without a validation score has "metrics" {}.
    Returns a new dict; the record given is left as it was."""
    if kind == "history":
        return {**record, "segments": record.get("segments", []), "eval": [_migrate_eval(e) for e in record["eval"]]}
    if kind in ("train_state", "compact_state"):
        seconds = record.get("seconds", 0.0)
        return {**record, "seconds": seconds, "cpu_seconds": record.get("cpu_seconds", seconds),
                "history": migrate_record("history", record["history"])}
    if kind == "generator":
        summary = {"data": "", "features_key": None, "validation_sha256": None, **(record.get("summary") or {})}
        return {**record, "summary": summary, "metrics": record.get("metrics") or {}}
    raise GanError(f"no migration for records of kind {kind!r}: use history, train_state, compact_state or generator")


# a run folder's history: as train() writes it while the run goes on; as a study run keeps it once trained
# (compress_history: gzip, about 2.4 times smaller, for the histories committed under model/; publish writes the
# shipped models' histories compressed too)
HISTORY_FILES = ("history.json", "history.json.gz")


def history_file(folder: str | Path) -> Path | None:
    """The history of run folder `folder`: its history.json when there is one (train() writes it as it goes, so it is
    the newest), else its history.json.gz; None when it has neither."""
    return next((Path(folder) / name for name in HISTORY_FILES if (Path(folder) / name).is_file()), None)


def read_history(path: str | Path) -> dict[str, Any]:
    """A run's history (train()'s per-iteration losses, evaluations and segments), in today's format. `path`: a
    history.json, a history.json.gz, or a run folder holding one (history_file)."""
    path = Path(path)
    if path.is_dir():
        found = history_file(path)
        if found is None:
            raise GanError(f"no {' or '.join(HISTORY_FILES)} in {path}: it holds no run (or one not started)")
        path = found
    data = path.read_bytes()
    return migrate_record("history", json.loads(gzip.decompress(data) if path.suffix == ".gz" else data))


def _gzip(data: bytes) -> bytes:
    """gzip without a timestamp inside, so that the same history gives the same bytes (and no change for git)."""
    return gzip.compress(data, compresslevel=9, mtime=0)


def write_history(history: dict[str, Any], path: str | Path) -> Path:
    """Write a history to `path` atomically: as JSON, gzip-compressed when the name ends in .gz. Returns `path`."""
    path, data = Path(path), json.dumps(history).encode()
    with atomic_path(path) as tmp:
        tmp.write_bytes(_gzip(data) if path.suffix == ".gz" else data)
    return path


def compress_history(folder: str | Path) -> Path:
    """Replace run folder `folder`'s history.json by history.json.gz (its bytes gzipped as they are, written
    atomically before the JSON is removed). Returns the .gz file's path."""
    source, target = (Path(folder) / name for name in HISTORY_FILES)
    with atomic_path(target) as tmp:
        tmp.write_bytes(_gzip(source.read_bytes()))
    source.unlink()
    return target


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Read a checkpoint written by this kit (a generator, a training state or a compact one, gankit/states.py);
    GanError if missing, unreadable or foreign; in today's format (migrate_record)."""
    path = Path(path)
    if not path.is_file():
        raise GanError(f"checkpoint {path} not found")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise GanError(f"{path} is not a readable checkpoint ({type(exc).__name__}: {str(exc)[:120]}); "
                       f"it may be truncated or corrupt: use another file or retrain") from exc
    if not isinstance(ckpt, dict) or ckpt.get("kind") not in ("generator", "train_state", "compact_state"):
        raise GanError(f"{path} is not a gan_helpers checkpoint (no generator or training state in it)")
    return migrate_record(ckpt["kind"], ckpt)


def generator_from_checkpoint(ckpt: dict[str, Any], path: str | Path = "checkpoint",
                              device: torch.device | str = "cpu") -> nn.Module:
    """Rebuild G from a checkpoint's config and load its weights, in eval mode on `device` (in train()'s memory
    layout, to_device): a generator as saved (best.pt, model/*.pt), or a training state's EMA generator (its
    trained G when the run has no EMA) as train() scores it, with standing BatchNorm statistics: the statistics a
    state's EMA carries are copied from the trained G, whose weights differ."""
    cfg = Config.from_dict(ckpt["config"])
    G, _ = build_models(cfg)
    ema = ckpt["kind"] != "generator" and bool(ckpt["G_ema"])
    try:
        G.load_state_dict(ckpt["G_ema"] if ema else ckpt["G"])
    except RuntimeError as exc:
        raise GanError(f"{path}: generator weights do not match its config (arch={cfg.arch}): "
                       f"{str(exc).splitlines()[0]}") from exc
    G = to_device(G, device)
    if ema:
        standing_batch_norm(G, standing_batches(cfg.eval_samples))
    return G.eval()


def load_generator(path: str | Path, device: torch.device | str = "cpu") -> nn.Module:
    """G in eval mode from best.pt, last.pt or model/*.pt (see generator_from_checkpoint); `G.config` is set."""
    return generator_from_checkpoint(load_checkpoint(path), path, device)


def load_discriminator(path: str | Path, device: torch.device | str = "cpu") -> nn.Module:
    """D in eval mode from a training state (last.pt); best.pt and model/*.pt hold only the generator."""
    ckpt = load_checkpoint(path)
    if ckpt["kind"] != "train_state":
        raise GanError(f"{path} holds only a generator; the discriminator is in the run's last.pt")
    _, D = build_models(Config.from_dict(ckpt["config"]))
    D.load_state_dict(ckpt["D"])
    return to_device(D.eval(), device)


def rng_state() -> dict[str, Any]:
    mt, keys, pos, has_gauss, cached = np.random.get_state()
    return {"torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
            "numpy": [mt, torch.from_numpy(keys.astype(np.int64)), pos, has_gauss, cached],
            "python": random.getstate()}


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    mt, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((mt, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    random.setstate(tuple(tuple(x) if isinstance(x, list) else x for x in state["python"]))
