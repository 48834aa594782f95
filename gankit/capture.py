"""The whole training step recorded once as a CUDA graph and replayed every iteration (Config.compile="cudagraph"):
one launch per iteration instead of thousands of small kernels, each waiting on the host (PyTorch's "whole-network
capture", torch.cuda.graphs)."""
from __future__ import annotations

from typing import Callable
import torch
import torch.nn as nn
from torch import Tensor

from .device import Precision
from .config import Config

__all__ = ['CAPTURE_WARMUP', 'capture_unsupported', 'CapturedStep']


CAPTURE_WARMUP = 3   # eager steps before recording (cuDNN picks its kernels, optimizers create their state); undone


def capture_unsupported(cfg: Config, device: torch.device, prec: Precision) -> str | None:
    """Why the training step of `cfg` cannot be recorded as a CUDA graph on `device`, in one line; None if it can.
    Supported: every loss, spectral norm, attention, the EMA, DiffAugment, bCR, weight clipping, class conditioning,
    in float32 or bf16 (the `dcgan` and `sagan` presets and the shipped recipes among them)."""
    if device.type != "cuda":
        return f"CUDA graphs need a CUDA device, not {device.type}"
    if prec.scaler_d is not None:
        return "fp16's gradient scaler checks every step's gradients on the host; set amp='bf16' or amp='off'"
    if cfg.lipschitz == "gp":
        return "the gradient penalty's double backward is not recorded; use spectral_norm or lipschitz='clip'"
    return None


class CapturedStep:
    """`step(decay)` (a train_step with everything but the EMA decay bound) recorded as one CUDA graph on its first
    call and replayed on every call. The decay is a device tensor filled before each replay, the real batches and
    latents are drawn inside the graph from the CUDA generator (each replay advances it as the eager step would),
    and the optimizers are capturable. The eager warm-up steps before recording are undone (weights, buffers,
    optimizer state and random generators restored), so the captured run trains on the same sequence of
    iterations as an eager one. Returns the step's outputs: tensors the next replay overwrites (copy them)."""

    def __init__(self, step: Callable[[Tensor], dict[str, Tensor]], models: list[nn.Module],
                 optimizers: list[torch.optim.Optimizer], device: torch.device):
        self.step, self.models, self.optimizers = step, models, optimizers
        self.decay = torch.zeros((), device=device)
        self.graph: torch.cuda.CUDAGraph | None = None
        self.out: dict[str, Tensor] = {}

    def __call__(self, decay: float) -> dict[str, Tensor]:
        self.decay.fill_(decay)
        if self.graph is None:
            self._record()
        self.graph.replay()
        return self.out

    def _state(self) -> list[Tensor]:
        """Every tensor a step changes in place: weights, buffers (BatchNorm statistics, spectral norm's u and v)
        and optimizer state (moments, step counters)."""
        tensors = [t for m in self.models for t in (*m.parameters(), *m.buffers())]
        return tensors + [v for opt in self.optimizers for s in opt.state.values() for v in s.values()
                          if isinstance(v, Tensor)]

    def _record(self) -> None:
        before = [t.detach().clone() for t in self._state()]
        n_before = len(before)
        rng = torch.get_rng_state(), torch.cuda.get_rng_state()
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for _ in range(CAPTURE_WARMUP):
                self.step(self.decay)
        torch.cuda.current_stream().wait_stream(side)
        with torch.no_grad():
            state = self._state()
            for t, saved in zip(state[:n_before], before):
                t.copy_(saved)
            for t in state[n_before:]:   # optimizer state the warm-up created: a new optimizer's is all zeros
                t.zero_()
        torch.set_rng_state(rng[0])
        torch.cuda.set_rng_state(rng[1])
        self.graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.graph):
            self.out = self.step(self.decay)
