"""What every layer of the kit shares: the user-facing error, the CIFAR-10 class names, the image sizes and file
types, the two evaluation decisions made once for the whole kit (how many images the test-set scores use, and
which validation score selects a checkpoint), and batched inference."""
from __future__ import annotations

from typing import Callable
import torch
from torch import Tensor

__all__ = ['CIFAR10_CLASSES', 'IMAGE_EXTENSIONS', 'IMG_SIZES', 'TEST_SAMPLES', 'SELECTION_KEY', 'GanError', 'batched']

CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer",
                   "dog", "frog", "horse", "ship", "truck")
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp")
IMG_SIZES = (32, 64, 128)     # Config.img_size: every architecture builds for each of these
TEST_SAMPLES = 10_000         # generated images of a test-set score (against CIFAR-10's 10,000 test images)
SELECTION_KEY = "fd"          # the evaluation entry a run's best checkpoint minimises: the Frechet distance


class GanError(Exception):
    """An error with a message meant for the user (bad input, missing file); the CLI prints it in one line."""


Outputs = Tensor | tuple[Tensor | None, ...]


@torch.no_grad()
def batched(fn: Callable[..., Outputs], *inputs: Tensor | None, batch_size: int, device: torch.device | str) -> Outputs:
    """fn over consecutive batches of `inputs` (each (N, ...), or None, passed on as None), without gradients:
    each batch goes to `device`, each output comes back to the CPU, and the outputs are concatenated along the
    first dimension. fn returns a tensor, or a tuple of tensors (entries may be None: they stay None) -> the same
    structure, each tensor (N, ...). The one loop of the kit's inference (generation, encoding, features)."""
    n = len(next(t for t in inputs if t is not None))
    parts = [fn(*(None if t is None else t[i:i + batch_size].to(device) for t in inputs))
             for i in range(0, n, batch_size)]
    if isinstance(parts[0], Tensor):
        return torch.cat([p.cpu() for p in parts])
    return tuple(None if column[0] is None else torch.cat([p.cpu() for p in column]) for column in zip(*parts))
