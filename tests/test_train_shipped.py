"""tools/train_shipped.py in its --dry-run: each shipped run continues from the newest state there is, a run already
training is left alone, and --pack writes a compact state only once the run moved on by --min-advance."""
import importlib.util
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers import tiny

import gan_helpers as gh

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("train_shipped", ROOT / "tools" / "train_shipped.py")
ts = importlib.util.module_from_spec(spec)
spec.loader.exec_module(ts)


def run(tmp: Path, capsys, *argv: str) -> list[str]:
    assert ts.main(["--runs-dir", str(tmp / "runs"), "--states-dir", str(tmp / "states"), *argv]) == 0
    return capsys.readouterr().out.splitlines()


def test_each_run_starts_from_the_newest_state_and_a_running_one_is_left_alone(tmp_path, capsys):
    (tmp_path / "states").mkdir()
    (tmp_path / "states" / "sagan.pt").write_bytes(b"")
    sagan, dcgan = run(tmp_path, capsys, "--dry-run")
    assert sagan.startswith("sagan: would start: OMP_NUM_THREADS=1 nice -n 19 gan_helpers.py train sagan")
    assert sagan.endswith(f"--device cpu --set g_ch=64 d_ch=64 ema_decay=0.999 ema_start=500 drift=0.01 g_lr=2.5e-5 "
                          f"d_lr=1e-4 --resume-from {tmp_path / 'states' / 'sagan.pt'}")
    assert "--iters 100000 --eval-every 1000 --eval-samples 5000" in dcgan and dcgan.endswith(
        "--device cpu --set ema_decay=0.999 ema_start=500 g_lr=5e-5 d_lr=5e-5 diffaug=translation,cutout --resume")
    out = tmp_path / "runs" / "dcgan"
    out.mkdir(parents=True)
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)", "gan_helpers.py", "train",
                                "--out", str(out)])
    try:
        deadline = time.monotonic() + 10
        while ts.training_pid(out) is None and time.monotonic() < deadline:   # until it has exec'd
            time.sleep(0.05)
        assert ts.training_pid(out) == sleeper.pid
        assert run(tmp_path, capsys, "--dry-run", "--names", "dcgan") == [
            f"dcgan: already training in {out} (process {sleeper.pid}); left alone"]
    finally:
        sleeper.kill()
        sleeper.wait()


def test_pack_writes_a_state_once_and_then_waits_for_the_run_to_move_on(tmp_path, capsys):
    data = gh.train_val_split(gh.synthetic_images(200), val_size=40)
    features = gh.load_feature_net(gh.RandomFeatures(), classifier="none")
    gh.train(tiny(iters=2), tmp_path / "runs" / "sagan", *data, features, progress=False)
    target = tmp_path / "states" / "sagan.pt"
    assert run(tmp_path, capsys, "--pack", "--dry-run") == [f"sagan: would write {target}",
                                                            f"dcgan: no {tmp_path / 'runs' / 'dcgan' / 'last.pt'} yet; "
                                                            f"nothing to pack"]
    assert not target.exists()
    assert run(tmp_path, capsys, "--pack", "--names", "sagan")[0].startswith(f"sagan: wrote {target} (iteration 2,")
    refused = run(tmp_path, capsys, "--pack", "--names", "sagan")
    assert refused[0].startswith(f"sagan: not replacing {target}") and "by at least 2,000 iterations" in refused[0]
    assert run(tmp_path, capsys, "--pack", "--dry-run", "--names", "sagan", "--min-advance", "0") == [
        f"sagan: would write {target}"]


@pytest.mark.parametrize("name", ["sagan", "dcgan"])
def test_the_shipped_recipes_are_valid_configs(name):
    assert getattr(gh.Config, name)().with_overrides(list(ts.SHIPPED[name])).validate().name == name


def test_a_started_run_takes_only_the_cpu_others_leave():
    """A child in its own session is its own scheduling group where Linux has autogroups: yield_cpu gives that group
    nice 19 (the process's own nice alone would not hold it back against other sessions)."""
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"], start_new_session=True)
    try:
        group = Path(f"/proc/{child.pid}/autogroup")
        if not group.exists():
            assert ts.yield_cpu(child.pid) is False
            pytest.skip("this kernel has no autogroups")
        if not ts.yield_cpu(child.pid):
            pytest.skip(f"{group} is not writable here")
        assert group.read_text().split()[-1] == "19"
    finally:
        child.kill()
        child.wait()
    assert ts.yield_cpu(child.pid) is False                                  # gone: refused, no error
