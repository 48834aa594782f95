"""tools/continue_runs.sh: starts the studies (in order, each stopped by the time left; STUDY_WORKERS processes)
and the shipped models' long runs named by LONG_RUNS (resumed) in the background, one thread each."""
import shutil
import subprocess
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_every_background_job_starts_with_the_time_left(tmp_path):
    repo = tmp_path / "repo"
    (repo / "tools").mkdir(parents=True)
    shutil.copy(ROOT / "tools" / "continue_runs.sh", repo / "tools")
    calls = tmp_path / "calls.txt"
    stub = tmp_path / "python"               # stands in for python: records each call's arguments and thread count
    stub.write_text(f'#!/bin/bash\necho "OMP=$OMP_NUM_THREADS $*" >> {calls}\n')
    stub.chmod(0o755)
    r = subprocess.run(["bash", "tools/continue_runs.sh", "30", "DATA", "FEAT.pt"], cwd=repo, capture_output=True,
                       text=True, env={"PYTHON": str(stub), "PATH": "/usr/bin:/bin"})
    assert r.returncode == 0 and "started" in r.stdout
    for _ in range(100):                      # the jobs run in the background
        if calls.is_file() and len(calls.read_text().splitlines()) == 9:   # 8 studies and the DCGAN's long run
            break
        time.sleep(0.1)
    lines = calls.read_text().splitlines()
    studies = [line for line in lines if " study run " in line]
    assert [line.split()[4] for line in studies] == [f"studies/{s}.json" for s in (
        "dcgan_recipe", "attention", "loss", "stabilisers", "conditioning", "update_ratio", "sagan_long",
        "sagan_recipe")]
    assert all(line.startswith("OMP=1 gan_helpers.py") and "--data-dir DATA --feature-net FEAT.pt --threads 1"
               in line and line.split("--time-limit ")[1] in ("29", "30") for line in studies)
    assert not any(" train sagan " in line for line in lines)   # the SAGAN's waits for studies/sagan_long.json
    for model in ("dcgan",):
        train = [line for line in lines if f" train {model} " in line]
        assert len(train) == 1 and f"--out model/runs/{model}" in train[0] and "--resume" in train[0]
        assert train[0].startswith("OMP=1 ") and train[0].endswith("--time-limit 30")
        assert (repo / "runs" / "logs" / f"{model}.log").is_file()
    assert (repo / "runs" / "logs" / "studies1.log").is_file()


def test_study_workers_and_long_runs_are_chosen_by_environment(tmp_path):
    repo = tmp_path / "repo"
    (repo / "tools").mkdir(parents=True)
    shutil.copy(ROOT / "tools" / "continue_runs.sh", repo / "tools")
    calls = tmp_path / "calls.txt"
    stub = tmp_path / "python"
    stub.write_text(f'#!/bin/bash\necho "$*" >> {calls}\n')
    stub.chmod(0o755)
    env = {"PYTHON": str(stub), "PATH": "/usr/bin:/bin", "STUDY_WORKERS": "2", "LONG_RUNS": "sagan"}
    r = subprocess.run(["bash", "tools/continue_runs.sh", "30"], cwd=repo, capture_output=True, text=True, env=env)
    assert r.returncode == 0
    for _ in range(100):
        if calls.is_file() and len(calls.read_text().splitlines()) == 2 * 8 + 1:
            break
        time.sleep(0.1)
    lines = calls.read_text().splitlines()
    assert len(lines) == 17 and sum(" study run studies/attention.json " in line for line in lines) == 2
    assert [line.split()[2] for line in lines if " train " in line] == ["sagan"]
    assert all((repo / "runs" / "logs" / f"studies{n}.log").is_file() for n in (1, 2))
    r = subprocess.run(["bash", "tools/continue_runs.sh", "30"], cwd=repo, capture_output=True, text=True,
                       env={**env, "STUDY_WORKERS": "0", "LONG_RUNS": "biggan"})
    assert r.returncode == 2 and "unknown long run biggan" in r.stderr
