"""tools/keep_study_state.sh: unfinished runs' last.pt are staged past .gitignore, finished runs' are unstaged."""
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True, text=True).stdout


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_unfinished_runs_keep_their_state_and_finished_runs_drop_it(tmp_path):
    repo = tmp_path / "repo"
    (repo / "tools").mkdir(parents=True)
    shutil.copy(ROOT / "tools" / "keep_study_state.sh", repo / "tools")
    shutil.copy(ROOT / ".gitignore", repo / ".gitignore")
    git(repo, "init", "-q")
    runs = repo / "model" / "studies" / "s"
    for name, finished in (("a_s0", True), ("b_s0", False)):
        (runs / name).mkdir(parents=True)
        for f in ("last.pt", "best.pt", "history.json") + (("run.json",) if finished else ()):
            (runs / name / f).write_text(f)
    git(repo, "add", "-f", str(runs / "a_s0" / "last.pt"))          # kept while it was unfinished
    git(repo, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "state")
    subprocess.run(["bash", "tools/keep_study_state.sh"], cwd=repo, check=True, capture_output=True)
    staged = set(git(repo, "diff", "--cached", "--name-only", "--no-renames").split())
    assert staged == {
        "model/studies/s/a_s0/last.pt",                               # its removal from git
        "model/studies/s/a_s0/history.json", "model/studies/s/a_s0/run.json",
        "model/studies/s/b_s0/history.json", "model/studies/s/b_s0/last.pt"}
