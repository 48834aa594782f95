"""Compact training states: a run's last.pt in bf16 where exactness is not needed, small enough to keep in git
(model/states/<name>.pt), and expanded back into a last.pt that train(resume=True) continues on any device.

Stored in bf16: the weights of G, its EMA and D, and the optimizers' moments (Adam's exp_avg, exp_avg_sq): bf16 keeps
float32's range, so the tiny second moments do not underflow as they would in fp16, and its 8-bit mantissa changes a
weight by at most 2**-9 of itself. Kept exact: the models' buffers (spectral norm's u and v, BatchNorm's running
statistics), the optimizers' step counters and settings, the gradient scalers, the RNG state, the config, the split,
the iteration and the clocks. The history's per-iteration series become one float32 (losses, logits) or int32
(iterations) tensor each, 4 bytes an entry instead of about 10 characters of JSON; its evaluations and segments stay
as they are."""
from __future__ import annotations

from pathlib import Path
from typing import Any
import torch
from torch import Tensor

from .core import GanError
from .config import Config
from .files import save_atomic
from .build import build_models
from .checkpoints import load_checkpoint

__all__ = ['COMPACT_DTYPE', 'MIN_ADVANCE', 'pack_state', 'expand_state', 'load_state', 'state_history',
           'pack_refusal', 'write_compact_state', 'resume_from_state']

COMPACT_DTYPE = torch.bfloat16   # weights and optimizer moments in a compact state
MIN_ADVANCE = 2000               # iterations a run must have moved on before its compact state is replaced


def _buffers(cfg: Config) -> dict[str, set[str]]:
    """Names of the buffers (kept exact) in the state dicts of G (and its EMA) and D of a run of cfg."""
    G, D = build_models(cfg)
    names = {"G": {n for n, _ in G.named_buffers()}, "D": {n for n, _ in D.named_buffers()}}
    return {**names, "G_ema": names["G"]}


def _pack_weights(weights: dict[str, Tensor], exact: set[str]) -> dict[str, Tensor]:
    return {k: v if k in exact or not v.is_floating_point() else v.to(COMPACT_DTYPE) for k, v in weights.items()}


def _pack_optimizer(state: dict[str, Any]) -> dict[str, Any]:
    """An optimizer's state dict with its per-parameter moments in bf16; step counters (0-d) and settings as they are."""
    moments = {i: {k: v.to(COMPACT_DTYPE) if isinstance(v, Tensor) and v.is_floating_point() and v.dim() > 0 else v
                   for k, v in per_param.items()} for i, per_param in state["state"].items()}
    return {**state, "state": moments}


def _unpack(obj: Any) -> Any:
    """Every bf16 tensor in nested dicts and lists back to float32 (what the networks and optimizers hold)."""
    if isinstance(obj, Tensor):
        return obj.float() if obj.dtype == COMPACT_DTYPE else obj
    if isinstance(obj, dict):
        return {k: _unpack(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_unpack(v) for v in obj]
    return obj


def _is_series(values: Any) -> bool:
    return isinstance(values, list) and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)


def _pack_history(history: dict[str, Any]) -> dict[str, Any]:
    """The per-iteration series (lists of numbers: `iter`, losses, mean logits) as tensors (N,): int32 for whole
    numbers, float32 otherwise; everything else (evaluations, segments) as it is."""
    return {k: (torch.tensor(v, dtype=torch.int32 if all(isinstance(x, int) for x in v) else torch.float32)
                if _is_series(v) and k not in ("eval", "segments") else v) for k, v in history.items()}


def _unpack_history(history: dict[str, Any]) -> dict[str, Any]:
    """Inverse of _pack_history: lists again, floats rounded to 6 decimals as train() logs them."""
    return {k: ((v.tolist() if not v.is_floating_point() else [round(x, 6) for x in v.tolist()])
                if isinstance(v, Tensor) else v) for k, v in history.items()}


def pack_state(state: dict[str, Any]) -> dict[str, Any]:
    """A training state (a last.pt as loaded) -> its compact form (kind "compact_state"); see the module docstring."""
    if state.get("kind") != "train_state":
        raise GanError("only a training state (a run's last.pt) can be packed; best.pt holds only a generator")
    exact = _buffers(Config.from_dict(state["config"]))
    compact = {**state, "kind": "compact_state", "compact_dtype": str(COMPACT_DTYPE).removeprefix("torch."),
               "opt_g": _pack_optimizer(state["opt_g"]), "opt_d": _pack_optimizer(state["opt_d"]),
               "history": _pack_history(state["history"])}
    for key in ("G", "G_ema", "D"):
        compact[key] = None if state[key] is None else _pack_weights(state[key], exact[key])
    return compact


def expand_state(compact: dict[str, Any]) -> dict[str, Any]:
    """A compact state -> a training state that train(resume=True) continues (weights and moments in float32)."""
    state = {k: v for k, v in compact.items() if k != "compact_dtype"}
    state.update({key: _unpack(compact[key]) for key in ("G", "G_ema", "D", "opt_g", "opt_d")},
                 kind="train_state", history=_unpack_history(compact["history"]))
    return state


def load_state(path: str | Path) -> dict[str, Any]:
    """A training state from a compact state (expanded), a run's last.pt, or a run folder holding one."""
    path = Path(path)
    state = load_checkpoint(path / "last.pt" if path.is_dir() else path)
    if state["kind"] == "compact_state":
        return expand_state(state)
    if state["kind"] != "train_state":
        raise GanError(f"{path} holds only a generator: give a run folder, its last.pt or a compact state")
    return state


def state_history(path: str | Path) -> dict[str, Any]:
    """The history of a compact state or training state, as train() writes it to history.json."""
    return load_state(path)["history"]


def pack_refusal(state: dict[str, Any], target: str | Path, min_advance: int = MIN_ADVANCE) -> str | None:
    """Why training state `state` must not be written to the compact state `target` (None when it may): a state
    kept there is replaced only by the same run (config name) at least `min_advance` iterations further on, so
    that a state kept in git is replaced rarely."""
    target = Path(target)
    if not target.is_file():
        return None
    old = load_checkpoint(target)
    if old["config"]["name"] != state["config"]["name"]:
        return f"it holds run {old['config']['name']!r}, not {state['config']['name']!r}; write to another file"
    if state["iteration"] < old["iteration"] + min_advance:
        return (f"it is at iteration {old['iteration']:,} and this state at {state['iteration']:,}: the run must "
                f"move on by at least {min_advance:,} iterations first (--min-advance)")
    return None


def write_compact_state(source: str | Path, target: str | Path, min_advance: int = MIN_ADVANCE) -> str:
    """Write the compact form of `source` (a run folder, its last.pt, or a compact state) to `target`, unless
    pack_refusal() says no (GanError). Returns one line saying what was written."""
    target = Path(target)
    state = load_state(source)
    reason = pack_refusal(state, target, min_advance)
    if reason is not None:
        raise GanError(f"not replacing {target} with {source}: {reason}")
    iteration = state["iteration"]
    save_atomic(pack_state(state), target)
    return f"wrote {target} (iteration {iteration:,}, {target.stat().st_size / 1e6:.1f} MB)"


def resume_from_state(path: str | Path, out_dir: str | Path, name: str) -> tuple[Config, str]:
    """Prepare out_dir to continue run `name` from its compact state `path` with train(resume=True): expand the
    state into out_dir/last.pt, unless that already holds the same run at the same or a later iteration (then it is
    kept). Returns the config of the state that will be resumed and one line saying which."""
    path, last = Path(path), Path(out_dir) / "last.pt"
    compact = load_checkpoint(path)
    if compact["kind"] != "compact_state":
        raise GanError(f"{path} is not a compact state (model/states/<name>.pt); a run's last.pt resumes with "
                       f"--resume --out ITS_FOLDER")
    if compact["config"]["name"] != name:
        raise GanError(f"{path} holds run {compact['config']['name']!r}: train {compact['config']['name']} "
                       f"--resume-from {path}")
    replaced = ""
    if last.is_file():
        current = load_checkpoint(last)
        if current["config"]["name"] != compact["config"]["name"]:
            raise GanError(f"{last} holds run {current['config']['name']!r}, not {compact['config']['name']!r} of "
                           f"{path}: choose another --out")
        if current["iteration"] >= compact["iteration"]:
            return (Config.from_dict(current["config"]), f"resuming from {last} (iteration {current['iteration']:,}), "
                    f"not {path} (iteration {compact['iteration']:,}): it is as far or further")
        replaced = f", replacing its iteration {current['iteration']:,}"
    save_atomic(expand_state(compact), last)
    return (Config.from_dict(compact["config"]),
            f"resuming from {path} (iteration {compact['iteration']:,}), expanded into {last}{replaced}")
