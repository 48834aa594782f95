"""Seeds, devices, mixed precision and torch.compile: the one place where a run meets its hardware."""
from __future__ import annotations

import contextlib
import random
import sys
from dataclasses import dataclass
from typing import Any, Iterator
import numpy as np
import torch
import torch.nn as nn
from torch import Tensor

from .core import GanError

__all__ = ['setup', 'to_device', 'PRECISIONS', 'Precision', 'precision', 'compiled', 'device_of', 'RUNTIME_PACKAGES', 'colab_installs', 'eval_mode', 'device_name']


def setup(seed: int = 0, device: str | None = None) -> torch.device:
    """Seed python, numpy and torch; return `device` or the best available one (cuda > mps > cpu)."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)  # also seeds every CUDA device
    if device is not None:
        return torch.device(device)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def to_device(model: nn.Module, device: torch.device | str) -> nn.Module:
    """Move `model` to `device` with its conv weights in channels_last (NHWC) memory format, the layout the
    oneDNN (CPU) and cuDNN (GPU) convolution kernels run fastest in; activations follow the weights' layout.
    tests/benchmarks/train_speed.py times a training step both ways."""
    return model.to(device, memory_format=torch.channels_last)


PRECISIONS = ("auto", "bf16", "fp16", "off")


@dataclass
class Precision:
    """How a training step runs G and D: autocast to `dtype` (None = plain float32) and, for fp16, one
    gradient scaler per optimizer (fp16 gradients underflow without it; bf16 has float32's range)."""
    device_type: str
    dtype: torch.dtype | None = None
    scaler_g: Any = None             # torch.amp.GradScaler for fp16, else None
    scaler_d: Any = None

    def autocast(self) -> contextlib.AbstractContextManager:
        return torch.autocast(self.device_type, dtype=self.dtype, enabled=self.dtype is not None)

    def step(self, loss: Tensor, opt: torch.optim.Optimizer, scaler: Any, inputs: list[Tensor] | None = None) -> None:
        """backward + optimizer step, through the gradient scaler when there is one. `inputs`: the only tensors
        that receive gradients (the G step's loss passes through D, whose weight gradients it does not need)."""
        if scaler is None:
            loss.backward(inputs=inputs)
            opt.step()
            return
        scaler.scale(loss).backward(inputs=inputs)
        scaler.step(opt)
        scaler.update()


def precision(amp: str, device: torch.device | str) -> Precision:
    """Resolve Config.amp on `device`. "auto": bf16 on CUDA GPUs with native bf16 (Ampere and later), fp16
    with gradient scaling on older ones (e.g. Colab's T4), float32 elsewhere: on the CPU, bf16 autocast is
    slower than float32 for these convolutions (tests/benchmarks/train_speed.py)."""
    device = torch.device(device)
    if amp == "auto":
        amp = "off" if device.type != "cuda" else ("bf16" if torch.cuda.is_bf16_supported(including_emulation=False)
                                                  else "fp16")
    if amp == "off":
        return Precision(device.type)
    if amp == "bf16":
        return Precision(device.type, torch.bfloat16)
    if device.type != "cuda":
        raise GanError(f"amp='fp16' needs a CUDA device (got {device}); use amp='bf16' or 'off'")
    return Precision(device.type, torch.float16, torch.amp.GradScaler("cuda"), torch.amp.GradScaler("cuda"))


def compiled(model: nn.Module, backend: str) -> nn.Module:
    """`model` through torch.compile with `backend` ("off": the model itself). The compiled module shares the
    model's parameters and buffers, so optimizers, the EMA and checkpoints keep using the model."""
    return model if backend == "off" else torch.compile(model, backend=backend)


def device_of(model: nn.Module) -> torch.device:
    """The device a model's parameters live on."""
    return next(model.parameters()).device


# The runtime packages of requirements.txt by the module each provides (tests keep the two in agreement).
# ipywidgets: 7.7 and 8 both work; Colab ships 7.7 and does not render every ipywidgets 8 widget without
# its custom widget manager (googlecolab/colabtools #3020, #4525), so Colab's own copy is never replaced.
RUNTIME_PACKAGES = {"torch": "torch>=2.1", "torchvision": "torchvision>=0.16", "pytorch_fid": "pytorch-fid>=0.3.0",
                    "numpy": "numpy>=1.24", "scipy": "scipy>=1.10", "PIL": "pillow>=9.0",
                    "matplotlib": "matplotlib>=3.7", "ipywidgets": "ipywidgets>=7.7,<9", "tqdm": "tqdm>=4.60"}


def colab_installs() -> list[str]:
    """What the notebooks' setup cell pip-installs: nothing outside Colab; on Colab the requirements of
    the runtime packages it lacks (usually only pytorch-fid), keeping its own torch and ipywidgets."""
    import importlib.util
    if "google.colab" not in sys.modules:
        return []
    return [spec for module, spec in RUNTIME_PACKAGES.items() if importlib.util.find_spec(module) is None]


@contextlib.contextmanager
def eval_mode(model: nn.Module) -> Iterator[nn.Module]:
    """Put `model` in eval mode (BN running statistics, spectral norm without power iteration), then back."""
    was_training = model.training
    model.eval()
    try:
        yield model
    finally:
        model.train(was_training)


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"{device.type} ({torch.get_num_threads()} thread{'s' if torch.get_num_threads() > 1 else ''})"
