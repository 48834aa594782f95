"""tools/device_check.py, the one command for the GPU machine, in its --dry-run: every phase at tiny sizes on the CPU
(the shipped runs resumed from tiny compact states, trained on and packed; a notebook in smoke mode), its files under
--out, and a phase past its budget recorded as stopped (what it finished kept), not lost."""
import json
import math
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

import gan_helpers as gh

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow   # about 80 s of CPU time: the whole dry run, then a short stopped one


def device_check(tmp: Path, *extra: str) -> tuple[subprocess.CompletedProcess, dict]:
    done = subprocess.run([sys.executable, str(ROOT / "tools" / "device_check.py"), "--dry-run", "--out",
                           str(tmp / "out"), "--work", str(tmp / "work"), *extra],
                          capture_output=True, text=True, timeout=300, check=False, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    return done, json.loads((tmp / "out" / "device_check.json").read_text())


@pytest.fixture(scope="module")
def dry_run(tmp_path_factory) -> tuple[Path, dict]:
    tmp = tmp_path_factory.mktemp("device_check")
    # one notebook (the others run alike); speed's GPU budget is too short for the whole table on a busy CPU
    _, report = device_check(tmp, "--notebooks", "DCGAN_train.ipynb", "--budget", "speed=240", "--total", "900")
    return tmp / "out", report


def test_every_phase_runs_and_writes_its_files(dry_run):
    out, report = dry_run
    assert {name: phase["status"] for name, phase in report["phases"].items()} == dict.fromkeys(
        ("env", "tests", "speed", "train", "pack", "notebooks"), "done")
    assert report["files"] == ["cuda_tests.txt", "device_check.json", "shipped_dcgan.tar.gz", "shipped_sagan.tar.gz",
                               "speed_cuda.json", "speed_cuda.md", "training.log"]   # the device tool returns <= 8
    assert report["env"]["train_images"] == 300 and report["env"]["device"] == "cpu"
    assert "skipped" in report["phases"]["tests"]["note"]       # on the CPU every CUDA test skips, with its reason
    assert "needs a CUDA GPU" in (out / "cuda_tests.txt").read_text()


def test_speed_table_has_every_loop_and_the_feature_timing(dry_run):
    out, _ = dry_run
    speed = json.loads((out / "speed_cuda.json").read_text())
    rows = {(r["model"], r["loop"], r["amp"], r["compile"]): r for r in speed["rows"]}
    assert set(rows) == {(m, loop, a, "off") for m in ("dcgan", "sagan")
                         for loop, a in (("reference", "off"), ("ours", "off"), ("ours", "bf16"))} \
        | {("sagan", "ours", "off", "aot_eager")}   # the captured rows are CUDA's only
    for (model, *_), r in rows.items():
        assert "error" not in r, r
        ref = rows[(model, "reference", "off", "off")]
        assert r["vs_reference"] == pytest.approx(ref["sec_per_it"] / r["sec_per_it"], abs=5e-4)   # 3 decimals
        assert r["img_s"] == pytest.approx(r["batch"] / r["sec_per_it"], rel=1e-2)
    assert [(f["half"], f["batch"], f["images"]) for f in speed["features"]] == [(True, 500, 48), (True, 50, 48),
                                                                                  (False, 500, 48)]
    assert speed["evaluation"]["samples"] == 300 and speed["evaluation"]["seconds"] > 0   # one validation evaluation
    assert speed["stopped"] is None and "| sagan | 8 | reference | off | off |" in (out / "speed_cuda.md").read_text()


def test_the_shipped_runs_resume_from_their_states_train_on_and_come_back_compact(dry_run, tmp_path):
    out, report = dry_run
    runs = report["runs"]
    assert {name: (r["from_iteration"], r["iteration"]) for name, r in runs.items()} == {"sagan": (2, 4),
                                                                                         "dcgan": (2, 4)}
    assert all(math.isfinite(r["best_fd"]) for r in runs.values())      # validated with the (stand-in) proxy
    for name in ("sagan", "dcgan"):
        with tarfile.open(out / f"shipped_{name}.tar.gz") as tar:
            names = set(tar.getnames())
            assert {f"{name}/state.pt", f"{name}/history.json"} <= names
            assert (f"{name}/best.pt" in names) == runs[name]["new_best"]   # only a generator better than the state's
            tar.extractall(tmp_path, filter="data")
        state = gh.load_checkpoint(tmp_path / name / "state.pt")
        assert state["kind"] == "compact_state" and state["iteration"] == 4 and state["config"]["name"] == name
        history = json.loads((tmp_path / name / "history.json").read_text())
        assert history["iter"] == [1, 2, 3, 4] and [s["from_iter"] for s in history["segments"]] == [0, 2]
    assert report["notebooks"] == {"DCGAN_train.ipynb": report["notebooks"]["DCGAN_train.ipynb"]}
    assert report["notebooks"]["DCGAN_train.ipynb"].startswith("passed in")


def test_a_phase_past_its_budget_is_recorded_as_stopped_and_the_next_still_runs(tmp_path):
    """The tests phase is killed at 0.5 s (mid-import), the speed phase at 1 s: both are "stopped", not lost, and
    speed_cuda.json says what was not measured."""
    done, report = device_check(tmp_path, "--phases", "env,tests,speed", "--budget", "tests=0.5", "speed=1")
    phases = report["phases"]
    assert [phases[p]["status"] for p in ("env", "tests", "speed")] == ["done", "stopped", "stopped"]
    assert phases["tests"]["budget"] == 0.5 and "killed at its budget" in phases["tests"]["note"]
    assert json.loads((tmp_path / "out" / "speed_cuda.json").read_text())["stopped"]
    assert "speed: stopped" in done.stdout and set(report["files"]) == {"cuda_tests.txt", "device_check.json",
                                                                          "speed_cuda.json", "speed_cuda.md"}
