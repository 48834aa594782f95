"""Atomic writes: a crash never leaves half a checkpoint or half a JSON file."""
from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Iterator
import torch

__all__ = ['atomic_path', 'save_atomic', 'write_json_atomic']


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """A temporary file beside `path` (its folder made if missing, its name unique to this writer) for the block
    to write; renamed to `path` when the block ends, removed if it raises: a crash never leaves half a file, and
    readers see the old file or the new one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)   # e.g. a study whose only finished runs are shared ones
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, 0o644)  # mkstemp creates 0600; checkpoints and results are meant to be shared
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def save_atomic(obj: Any, path: str | Path) -> None:
    """torch.save obj to path through a temporary file and a rename (atomic_path)."""
    with atomic_path(path) as tmp:
        torch.save(obj, tmp)


def write_json_atomic(obj: Any, path: str | Path) -> None:
    """Write obj as JSON to path through a temporary file and a rename (atomic_path)."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj))
