"""publish(): a run's best generator to model/, only when its validation score is lower and measured alike."""
from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from .core import GanError, SELECTION_KEY
from .files import save_atomic
from .data import image_files
from .checkpoints import generator_from_checkpoint, load_checkpoint, read_history, write_history
from .images import save_class_samples

__all__ = ['published_history', 'publish_refusal', 'publish']


def _validation_set(ckpt: dict[str, Any], by_hash: bool) -> str:
    """What a generator checkpoint was validated on: the hash of its validation images (by_hash), else its
    data source with the path cut to its last two folders (checkpoints written before the hash was
    recorded: migrate_record), so the same data read through another path still matches."""
    summary = ckpt["summary"]
    if by_hash:
        return summary["validation_sha256"]
    kind, _, path = summary["data"].rpartition(" ")
    return f"{kind} {'/'.join(Path(path.strip('()')).parts[-2:])}"


def publish_refusal(new: dict[str, Any], old: dict[str, Any]) -> str | None:
    """Why generator checkpoint `new` must not replace `old` (None when it may): their validation scores
    were measured differently (metric, feature network, sample counts, validation images), or new's
    is not lower. Both as load_checkpoint() returns them (migrate_record's format)."""
    a, b = new["metrics"], old["metrics"]
    if not a or not b:
        return "one of them has no validation score to compare"
    keys = {"metric": (a["metric"], b["metric"]), "generated images": (a["n_fake"], b["n_fake"]),
            "validation images": (a["n_real"], b["n_real"])}
    sa, sb = new["summary"], old["summary"]
    if sa["features_key"] is not None and sb["features_key"] is not None:
        keys["feature network"] = (sa["features_key"], sb["features_key"])
    by_hash = sa["validation_sha256"] is not None and sb["validation_sha256"] is not None
    keys["validation set"] = (_validation_set(new, by_hash), _validation_set(old, by_hash))
    differ = [f"{k} {x!r} vs {y!r}" for k, (x, y) in keys.items() if x != y]
    if differ:
        return f"their validation scores were measured differently ({'; '.join(differ)}), so they are not comparable"
    if not a[SELECTION_KEY] < b[SELECTION_KEY]:
        return (f"its validation {a['metric']} {a['fd']:.4g} (iteration {new['iteration']}) is not lower than the "
                f"published {b['fd']:.4g} (iteration {old['iteration']})")
    return None


def published_history(model_dir: str | Path, name: str) -> Path:
    """Where publish keeps published model `name`'s training history: model/<name>_history.json.gz (gzip: the
    per-iteration log of a long run is megabytes of JSON; read it with read_history)."""
    return Path(model_dir) / f"{name}_history.json.gz"


def publish(run_dir: str | Path, name: str, model_dir: str | Path = "model", sample_dir: str | Path | None = None,
            force: bool = False) -> Path:
    """Copy a run's best generator and history to model/<name>_best.pt and model/<name>_history.json.gz and,
    with `sample_dir`, write its one-image-per-class PNGs there. An existing published model is replaced
    only when the new one's validation score is lower and was measured the same way (publish_refusal),
    or with force=True; whatever is replaced is moved to model/replaced/<time>/, never deleted."""
    run_dir, model_dir = Path(run_dir), Path(model_dir)
    ckpt = load_checkpoint(run_dir / "best.pt")
    history_src = run_dir / "history.json"
    if not history_src.is_file():
        raise GanError(f"{history_src} not found: publish a run folder written by train()")
    target, history = model_dir / f"{name}_best.pt", published_history(model_dir, name)
    if target.is_file() and not force:
        reason = publish_refusal(ckpt, load_checkpoint(target))
        if reason is not None:
            raise GanError(f"not publishing {run_dir / 'best.pt'} over {target}: {reason}; to replace it anyway, "
                           f"pass --force (force=True; FORCE_PUBLISH = True in a notebook): the old files are "
                           f"then moved to {model_dir / 'replaced'}/")
    uncompressed = history.with_suffix("")   # where versions before gzip kept it
    old = [p for p in (target, history, uncompressed) if p.is_file()]
    old += image_files(Path(sample_dir)) if sample_dir is not None and Path(sample_dir).is_dir() else []
    if old:
        stamp = time.strftime("%Y%m%d-%H%M%S")
        keep, n = model_dir / "replaced" / stamp, 1
        while keep.exists():                                # two publishes within one second
            n += 1
            keep = model_dir / "replaced" / f"{stamp}-{n}"
        for p in old:
            dest = keep / (p.name if p.parent == model_dir else f"{p.parent.name}/{p.name}")
            dest.parent.mkdir(parents=True, exist_ok=True)
            os.replace(p, dest)
        print(f"moved the replaced files to {keep}")
    save_atomic(ckpt, target)
    write_history(read_history(history_src), history)
    if sample_dir is not None:
        save_class_samples(generator_from_checkpoint(ckpt, target), sample_dir)
    return target
