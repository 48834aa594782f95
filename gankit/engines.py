"""The Ray engine of `study run --engine ray`: every unfinished run of a study is one Ray task, on one machine or a
cluster. Ray is optional (requirements-ray.txt) and imported only here, inside run_study_ray."""
from __future__ import annotations

import os
import socket
import time
from pathlib import Path
from typing import Callable

import torch
import torch.nn as nn

from .core import GanError
from .data import ImageSet
from .features import load_feature_net
from .studies import RunOutcome, Study, done_earlier, study_run_dir, study_stats_dir, train_study_run

__all__ = ['RAY_INSTALL', 'RAY_RETRIES', 'ADDRESS_TIMEOUT', 'check_address', 'run_study_ray']

RAY_INSTALL = "pip install -r requirements-ray.txt"
# further attempts of a run whose worker dies (killed, out of memory, a lost node); each resumes from its last.pt
RAY_RETRIES = 3
# the folder holding gankit/: on every worker's PYTHONPATH, so that workers import this checkout's code (on a
# cluster the checkout must sit at the same path on every node, like the data and the runs folder)
CODE_ROOT = Path(__file__).resolve().parents[1]
# seconds a cluster address has to accept a TCP connection before run_study_ray gives up on it (ray.init itself
# retries for minutes, printing connection warnings)
ADDRESS_TIMEOUT = 5.0


def check_address(address: str | None, timeout: float = ADDRESS_TIMEOUT) -> None:
    """GanError in one line unless something accepts a TCP connection at a cluster address "HOST:PORT" (or
    "ray://HOST:PORT") within `timeout` seconds; None and "auto" (Ray finds its own cluster) pass unchecked."""
    if address in (None, "auto"):
        return
    host, sep, port = address.rpartition("://")[2].rpartition(":")
    if not sep or not host or not port.isdigit():
        raise GanError(f"--address {address!r} is not HOST:PORT or auto")
    try:
        socket.create_connection((host, int(port)), timeout=timeout).close()
    except OSError as exc:
        raise GanError(f"no Ray cluster answers at --address {address} ({exc.strerror or type(exc).__name__}): "
                       f"start one there (ray start --head --port {port}), give the head's HOST:PORT, or leave "
                       f"--address out to start Ray on this machine") from None


def _train_task(study: Study, arm: str, seed: int, data: str | Path | tuple[ImageSet, ImageSet],
                feature_net: str | Path | nn.Module | None, fid_weights: str | Path | None, runs_dir: str | Path,
                stats_dir: Path, device: str, threads: int, cwd: str, deadline: float | None,
                progress: bool) -> RunOutcome:
    """One run in a Ray worker: the driver's working directory (relative paths mean the same), `threads` torch
    threads, the data and the feature network loaded here, then train_study_run; `deadline` (time.time()) is the
    study's time limit."""
    os.chdir(cwd)
    torch.set_num_threads(threads)
    left = None if deadline is None else deadline - time.time()
    if left is not None and left <= 0:
        return RunOutcome("stopped", f"{study_run_dir(study, arm, seed, runs_dir)}: not started (time limit); "
                                     f"run again to continue")
    here = torch.device(device)   # on a GPU: the one Ray reserved for this task (the only one it shows)
    features = load_feature_net(feature_net, fid_weights, here)
    return train_study_run(study, arm, seed, data, features, runs_dir, here, stats_dir, progress, left)


def _cause(error: Exception) -> str:
    """The first line of what made a Ray task fail (the task's own exception where there is one)."""
    cause = getattr(error, "cause", None) or error
    return (str(cause).strip().splitlines() or [type(cause).__name__])[0]


def run_study_ray(study: Study, data: str | Path | tuple[ImageSet, ImageSet],
                  feature_net: str | Path | nn.Module | None = None, runs_dir: str | Path = "model/studies",
                  device: str | None = None, only: Callable[[str, int], bool] | None = None,
                  stats_dir: str | Path | None = None, progress: bool = True, time_limit: float | None = None,
                  address: str | None = None, gpus_per_run: float = 0.0, cpus_per_run: int = 1,
                  fid_weights: str | Path | None = None) -> list[str]:
    """Train every run of `study` (those `only(arm, seed)` accepts) that has not ended, each as a Ray task
    reserving `cpus_per_run` CPUs (and as many torch threads) and `gpus_per_run` GPUs (0.25: four runs share a
    GPU), all at once as far as the cluster's resources go. Each task does what the local engine (run_study)
    does for a run: the same folders and files, so collect_study gives the same results.json. A task whose
    worker dies is retried (RAY_RETRIES) and resumes exactly from its last.pt; a run that diverges is recorded
    and stops no other. `feature_net`, `fid_weights`: load_feature_net's, loaded in each worker; `device`:
    by default cuda with GPUs per run, else cpu. `address`: a running cluster ("auto", "HOST:PORT"); None starts a
    local one for this call (or uses the one this process started, e.g. with ray.init()). `time_limit`
    (seconds): runs in progress then save their state and stop, runs not yet started are left. Returns one
    line per run in study order; a run that fails otherwise makes a one-line GanError once all have ended.
    An `address` where nothing answers is refused at once (check_address)."""
    check_address(address)
    try:
        import ray
    except ImportError:
        raise GanError(f"--engine ray needs the ray package: {RAY_INSTALL}") from None
    device = device or ("cuda" if gpus_per_run > 0 else "cpu")
    try:
        kind = torch.device(device).type
    except RuntimeError:
        raise GanError(f"{device!r} is not a device name (cpu, cuda)") from None
    if kind == "cuda" and not gpus_per_run > 0:
        raise GanError(f"device {device!r} with the Ray engine needs GPUs per run: --gpus-per-run 1 (0.25: four "
                       f"runs share one GPU)")
    stats_dir = study_stats_dir(data, stats_dir)
    runs = [(arm, seed) for arm, seed in study.runs() if only is None or only(arm, seed)]
    earlier = {run: done_earlier(study, *run, runs_dir) for run in runs}
    lines = {run: line for run, line in earlier.items() if line is not None}
    todo = [run for run in runs if run not in lines]
    if not todo:
        return [lines[run] for run in runs]
    started_here = not ray.is_initialized()
    if started_here:
        ray.init(address=address)
    failed: list[str] = []
    try:
        resources = ray.cluster_resources()
        if cpus_per_run > resources.get("CPU", 0) or gpus_per_run > resources.get("GPU", 0):
            raise GanError(f"each run asks for {cpus_per_run} CPUs and {gpus_per_run:g} GPUs, the Ray cluster has "
                           f"{resources.get('CPU', 0):g} and {resources.get('GPU', 0):g}: lower --cpus-per-run / "
                           f"--gpus-per-run or add nodes")
        path = os.pathsep.join(p for p in (str(CODE_ROOT), os.environ.get("PYTHONPATH")) if p)
        task = ray.remote(_train_task).options(num_cpus=cpus_per_run, num_gpus=gpus_per_run, max_retries=RAY_RETRIES,
                                               runtime_env={"env_vars": {"PYTHONPATH": path}})
        deadline = None if time_limit is None else time.time() + time_limit
        refs = {run: task.remote(study, *run, data, feature_net, fid_weights, runs_dir, stats_dir, device,
                                 cpus_per_run, os.getcwd(), deadline, progress) for run in todo}
        for run, ref in refs.items():
            try:
                lines[run] = ray.get(ref).line
            except ray.exceptions.RayError as error:
                failed.append(f"{study_run_dir(study, *run, runs_dir)}: {_cause(error)}")
    finally:
        if started_here:
            ray.shutdown()
    if failed:
        raise GanError(f"{len(failed)} of {len(todo)} runs failed, the others ended (run again to continue): "
                       + "; ".join(failed))
    return [lines[run] for run in runs]
