"""Counting what a GPU would pay for, on any device: the aten operations a piece of code runs (each one a kernel
launch on a GPU, give or take views) and its host syncs (aten._local_scalar_dense: .item(), float(tensor),
bool(tensor), each of which makes the host wait for the device)."""
from collections import Counter
from typing import Any, Callable

import torch
from torch.utils._python_dispatch import TorchDispatchMode

SYNC = torch.ops.aten._local_scalar_dense.default


class OpCounter(TorchDispatchMode):
    """Counts every aten operation dispatched while active (forward, backward and optimizer alike)."""

    def __init__(self) -> None:
        super().__init__()
        self.ops: Counter = Counter()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.ops[func] += 1
        return func(*args, **(kwargs or {}))

    @property
    def total(self) -> int:
        return sum(self.ops.values())

    @property
    def syncs(self) -> int:
        return self.ops[SYNC]


def count(fn: Callable[[], Any]) -> OpCounter:
    """The operations and syncs of one call of fn()."""
    with OpCounter() as counter:
        fn()
    return counter
