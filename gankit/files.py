"""Atomic writes: a crash never leaves half a checkpoint or half a JSON file."""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any
import torch

__all__ = ['save_atomic', 'write_json_atomic']


def save_atomic(obj: Any, path: str | Path) -> None:
    """torch.save to a temporary file in the same folder, then rename: a crash never leaves half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    os.close(fd)
    try:
        torch.save(obj, tmp)
        os.chmod(tmp, 0o644)  # mkstemp creates 0600; checkpoints are meant to be shared
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def write_json_atomic(obj: Any, path: str | Path) -> None:
    """Write obj as JSON to path (its folder made if missing) through a temporary file and a rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)   # e.g. a study whose only finished runs are shared ones
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")   # per process, so concurrent writers never share one
    tmp.write_text(json.dumps(obj))
    os.replace(tmp, path)
