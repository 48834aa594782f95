"""Checkpoints: loading (clear errors for missing, corrupt or foreign files), generators from them, RNG states."""
from __future__ import annotations

import random
from pathlib import Path
from typing import Any
import numpy as np
import torch
import torch.nn as nn

from .core import GanError
from .device import to_device
from .config import Config
from .build import build_models

__all__ = ['RUN_FIELDS', 'TRAINING_FIELDS', 'RESUMABLE_FIELDS', 'FORK_FIELDS', 'load_checkpoint', 'generator_from_checkpoint', 'load_generator', 'load_discriminator', 'rng_state', 'set_rng_state']


# fields that may change between a run and its resumption (or fork, train(fork_from=...)); train() logs every
# change in the history's segments. How long and how often, and the EMA of G (it only samples; it never feeds
# back into training): G and D learn exactly as they would have.
RUN_FIELDS = ("iters", "eval_every", "eval_samples", "checkpoint_every", "amp", "compile", "diverged_above",
              "ema_decay", "ema_start")


# Training hyperparameters that leave every tensor's shape alone (learning rates, loss weights, steps per
# round, batch size, augmentation): a change alters what G and D learn from that iteration on, like a schedule.
TRAINING_FIELDS = ("g_lr", "d_lr", "n_critic", "n_gen", "batch_size", "acgan_weight", "info_weight", "drift", "gp_weight",
                   "clip_value", "cr_weight", "diffaug", "hflip")


RESUMABLE_FIELDS = RUN_FIELDS + TRAINING_FIELDS


FORK_FIELDS = ("name", "seed")   # a fork is a new run: its own name, and its own seed for the random stream


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Read a checkpoint written by this kit (a generator, a training state or a compact one, gankit/states.py);
    GanError if missing, unreadable or foreign."""
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
    return ckpt


def generator_from_checkpoint(ckpt: dict[str, Any], path: str | Path = "checkpoint") -> nn.Module:
    """Rebuild G from a checkpoint's config and load its weights (EMA weights when the run had an EMA)."""
    cfg = Config.from_dict(ckpt["config"])
    G, _ = build_models(cfg)
    weights = ckpt["G"] if ckpt["kind"] == "generator" else (ckpt["G_ema"] or ckpt["G"])
    try:
        G.load_state_dict(weights)
    except RuntimeError as exc:
        raise GanError(f"{path}: generator weights do not match its config (arch={cfg.arch}): "
                       f"{str(exc).splitlines()[0]}") from exc
    return G.eval()


def load_generator(path: str | Path, device: torch.device | str = "cpu") -> nn.Module:
    """G in eval mode from best.pt, last.pt or model/*.pt (EMA weights when present); `G.config` is set."""
    return to_device(generator_from_checkpoint(load_checkpoint(path), path), device)


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
