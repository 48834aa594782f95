"""The Ray engine (study run --engine ray): the local engine's runs and numbers, bit for bit; a run whose worker dies
retried from its last.pt; refusals before any task starts; diverged runs recorded. The Ray tests share one local
cluster of 2 CPUs (started once per module: slow)."""
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from unittest import mock

import pytest
import torch

import gan_helpers as gh
import gankit
from gankit.checkpoints import read_history
from test_studies import ARMS, ITERS, assert_diverged_runs_recorded, write_study

TIME_KEYS = {"seconds", "cpu_seconds", "time", "at_time", "sec_per_iter", "equal_seconds", "segments"}


def untimed(value):
    """A results file or history without what depends on the clock (training times, the equal-time score) or the
    session (segments: when and where each stretch of training started)."""
    if isinstance(value, dict):
        return {k: untimed(v) for k, v in value.items() if k not in TIME_KEYS}
    if isinstance(value, list):
        return [untimed(v) for v in value]
    return value


def run_files(runs: Path, arm: str, seed: int) -> tuple[dict, dict]:
    folder = runs / "tiny" / f"{arm}_s{seed}"
    return json.loads((folder / "run.json").read_text()), untimed(read_history(folder))


@pytest.fixture(scope="module")
def cluster():
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False)
    yield ray
    ray.shutdown()


@pytest.fixture(scope="module")
def data() -> tuple[gh.ImageSet, gh.ImageSet]:
    return gh.train_val_split(gh.synthetic_images(200), val_size=40)


@pytest.fixture(scope="module")
def local(tmp_path_factory, data) -> tuple[gh.Study, Path, dict]:
    """The tiny study (2 arms x 2 seeds) through the local engine with one torch thread, as each Ray run has."""
    root = tmp_path_factory.mktemp("local")
    study = gh.load_study(write_study(root))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        gankit.studies.run_study(study, data, gh.load_feature_net(gh.RandomFeatures()), root / "runs", stats_dir=root / "stats",
                     progress=False)
    finally:
        torch.set_num_threads(threads)
    return study, root / "runs", gankit.study_results.collect_study(study, root / "runs")


def assert_same_runs(study: gh.Study, runs: Path, local_runs: Path, expected: dict) -> None:
    """Every run's run.json, its history and the results equal the local engine's, all but the clock's part."""
    for arm, seed in study.runs():
        assert run_files(runs, arm, seed) == run_files(local_runs, arm, seed), (arm, seed)
    assert untimed(gankit.study_results.collect_study(study, runs)) == untimed(expected)


@pytest.mark.slow
def test_ray_runs_give_the_local_engines_files_and_numbers_bit_for_bit(tmp_path, cluster, data, local):
    study, local_runs, expected = local
    runs = tmp_path / "runs"
    lines = gankit.engines.run_study_ray(study, data, gh.RandomFeatures(), runs, stats_dir=tmp_path / "stats", progress=False)
    assert lines == [f"{runs / 'tiny' / f'{arm}_s{seed}'}: trained to iteration {ITERS}" for arm, seed in study.runs()]
    assert run_files(runs, "a8", 1)[0]["device"] == "cpu (1 thread)"
    assert_same_runs(study, runs, local_runs, expected)
    again = gankit.engines.run_study_ray(study, data, gh.RandomFeatures(), runs, stats_dir=tmp_path / "stats")
    assert [line.split(": ")[1] for line in again] == ["finished earlier"] * len(study.runs())


def dying_features(folder: Path, marker: Path) -> torch.nn.Module:
    """RandomFeatures (the same name and weights, so the same metric) whose first call once `folder` holds a
    last.pt ends its process, as a worker dies when it is killed or runs out of memory; `marker` makes it once.
    Defined in a function, so Ray ships the class itself to the worker."""
    class RandomFeatures(gh.RandomFeatures):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            if (folder / "last.pt").is_file() and not marker.exists():
                marker.touch()
                os._exit(1)
            return super().forward(x)
    return RandomFeatures()


@pytest.mark.slow
def test_a_run_whose_worker_dies_is_retried_from_its_last_checkpoint_with_the_same_numbers(tmp_path, cluster, data,
                                                                                          local):
    study, local_runs, expected = local
    runs, marker, folder = tmp_path / "runs", tmp_path / "killed", tmp_path / "runs" / "tiny" / "a8_s1"
    features = dying_features(folder, marker)             # dies evaluating iteration 4, after its last.pt at 2
    lines = gankit.engines.run_study_ray(study, data, features, runs, only=lambda arm, seed: (arm, seed) == ("a8", 1),
                             stats_dir=tmp_path / "stats", progress=False)
    assert lines == [f"{folder}: trained to iteration {ITERS}"] and marker.exists()
    lines = gankit.engines.run_study_ray(study, data, gh.RandomFeatures(), runs, stats_dir=tmp_path / "stats", progress=False)
    assert lines.count(f"{folder}: finished earlier") == 1
    segments = read_history(runs / "tiny" / "a8_s1")["segments"]
    assert [s["from_iter"] for s in segments] == [0, 2]          # the retry resumed from the checkpoint
    assert_same_runs(study, runs, local_runs, expected)


@pytest.mark.slow
def test_a_diverged_ray_run_is_recorded_and_stops_no_other_run(tmp_path, cluster, data, local):
    study = gh.load_study(write_study(tmp_path, arms={**ARMS, "blowup": ["diverged_above=1e-9"]}))
    lines = gankit.engines.run_study_ray(study, data, gh.RandomFeatures(), tmp_path / "runs", stats_dir=tmp_path / "stats",
                             progress=False)
    assert_diverged_runs_recorded(study, tmp_path / "runs", lines, local[2], gankit.engines.run_study_ray)


@pytest.mark.slow
def test_runs_asking_for_more_than_the_cluster_has_are_refused(tmp_path, cluster, data):
    study = gh.load_study(write_study(tmp_path))
    with pytest.raises(gh.GanError, match="each run asks for 3 CPUs and 0 GPUs, the Ray cluster has 2 and 0"):
        gankit.engines.run_study_ray(study, data, gh.RandomFeatures(), tmp_path / "runs", stats_dir=tmp_path, cpus_per_run=3)
    assert not (tmp_path / "runs").exists()


def test_a_bad_study_file_or_unknown_arm_is_refused_in_one_line_before_any_task(tmp_path, capsys):
    pytest.importorskip("ray")
    good = write_study(tmp_path)
    (tmp_path / "bad").mkdir()
    bad = write_study(tmp_path / "bad", arms={"x": ["loss='mse'"]})
    cases = [([str(bad)], "arm 'x': config loss='mse' is not one of"),
             ([str(good), "--arm", "nope"], "--arm/--seed ['nope'] not in study tiny (arms: none, a8; seeds: 0, 1)"),
             ([str(good), "--seed", "7"], "--arm/--seed [7] not in study tiny"),
             ([str(good), "--device", "cuda"], "device 'cuda' with the Ray engine needs GPUs per run"),
             ([str(good), "--threads", "2"], "use --cpus-per-run, not --threads")]
    with mock.patch("ray.init") as init, mock.patch("ray.remote") as remote:
        for args, message in cases:
            assert gh.main(["study", "run", *args, "--engine", "ray", "--runs-dir", str(tmp_path / "runs")]) == 2
            err = capsys.readouterr().err
            assert err.count("\n") == 1 and message in err, err
    init.assert_not_called()
    remote.assert_not_called()
    assert gh.main(["study", "run", str(good), "--cpus-per-run", "2"]) == 2    # a Ray option needs --engine ray
    assert "add --engine ray" in capsys.readouterr().err


def test_an_address_where_nothing_answers_is_refused_in_one_line_before_ray_starts(tmp_path, capsys):
    with socket.socket() as s:                         # a local port that was free a moment ago: nothing listens
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    study = str(write_study(tmp_path))
    start = time.perf_counter()
    with mock.patch.dict(sys.modules, {"ray": None}):  # Ray cannot start: the address is refused before it
        assert gh.main(["study", "run", study, "--engine", "ray", "--address", f"127.0.0.1:{port}"]) == 2
    assert time.perf_counter() - start < gankit.engines.ADDRESS_TIMEOUT
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"no Ray cluster answers at --address 127.0.0.1:{port}" in err, err
    with pytest.raises(gh.GanError, match="not HOST:PORT"):
        gankit.engines.check_address("head-node")
    gankit.engines.check_address("auto")               # Ray's own search: not checked here


def test_without_ray_the_kit_imports_and_the_ray_engine_says_how_to_install_it(tmp_path, capsys):
    r = subprocess.run([sys.executable, "-c", "import sys; sys.modules['ray'] = None; import gan_helpers"],
                       cwd=Path(gh.__file__).parent, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    with mock.patch.dict(sys.modules, {"ray": None}):
        assert gh.main(["study", "run", str(write_study(tmp_path)), "--engine", "ray"]) == 2
    assert capsys.readouterr().err == "error: --engine ray needs the ray package: pip install -r requirements-ray.txt\n"
    assert gankit.engines.RAY_INSTALL in (Path(gh.__file__).parent / "docs" / "distributed.md").read_text()
