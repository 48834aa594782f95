"""Keep the two shipped runs (model/states/: sagan, dcgan) training on this machine's CPU, in the background, one
thread and the lowest priority each (nice 19, and autogroup nice 19 where Linux has autogroups), so that other work
goes on beside them; and pack their states for git.

Each run trains in RUNS/<name>/ (last.pt every 1,000 iterations, best.pt, history.json; its output appended to
RUNS/<name>.log) from the newest state there is: its own last.pt when that is as far as model/states/<name>.pt or
further, else the compact state (`train --resume-from`). A run already training in RUNS/<name>/ is left alone.

    python tools/train_shipped.py              # start (or resume) both; one line each
    python tools/train_shipped.py --pack       # their states into model/states/ once moved on by 2,000 iterations
    python tools/train_shipped.py --dry-run [--pack]    # say what would be done, do nothing
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

# the shipped recipes: the preset and its --set overrides (the SAGAN at a quarter of the preset's G width, with ten
# times its drift weight: the critic study, docs/studies.md, found that keeps D's output level on the scale of its gap;
# both sample from an EMA of G's weights, which never feeds back into training; past their plateaus both train at a
# quarter of the preset's learning rates (TTUR's ratio kept), and the DCGAN's D sees every image through DiffAugment,
# against D's growing lead on training over validation images: the history's segments record each change and from
# where)
SHIPPED = {"sagan": ("g_ch=64", "d_ch=64", "ema_decay=0.999", "ema_start=500", "drift=0.01", "g_lr=2.5e-5",
                     "d_lr=1e-4"),
           "dcgan": ("ema_decay=0.999", "ema_start=500", "g_lr=5e-5", "d_lr=5e-5", "diffaug=translation,cutout")}
EVAL_EVERY, EVAL_SAMPLES = 1000, 5000      # a validation score every 1,000 iterations, on 5,000 generated images
SCHEDULE = ("--iters", "100000", "--eval-every", str(EVAL_EVERY), "--eval-samples", str(EVAL_SAMPLES))


def train_argv(name: str, out: Path, state: Path, data_dir: Path, feature_net: Path) -> list[str]:
    """The command that continues shipped run `name` in `out` on the CPU: from compact `state` when there is one
    (train keeps out/last.pt when that is further on), else from out/last.pt (or from the start)."""
    source = ["--resume-from", str(state)] if state.is_file() else ["--resume"]
    return [sys.executable, "gan_helpers.py", "train", name, "--data-dir", str(data_dir), "--feature-net",
            str(feature_net), "--out", str(out), *SCHEDULE, "--device", "cpu",
            *(["--set", *SHIPPED[name]] if SHIPPED[name] else []), *source]


def training_pid(out: Path) -> int | None:
    """The process id of a `gan_helpers.py train ... --out OUT` process on this machine (Linux /proc), or None."""
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            argv = [a.decode(errors="replace") for a in (proc / "cmdline").read_bytes().split(b"\0")]
            cwd = Path(os.readlink(proc / "cwd"))
        except OSError:    # gone meanwhile, or another user's
            continue
        if any(a.endswith("gan_helpers.py") for a in argv) and "train" in argv and "--out" in argv[:-1] \
                and (cwd / argv[argv.index("--out") + 1]).resolve() == out.resolve():
            return int(proc.name)
    return None


def yield_cpu(pid: int) -> bool:
    """Give process `pid`'s scheduling group the lowest weight (Linux autogroup nice 19), so that it takes only the CPU
    that other work leaves: with autogroups on, every session is one group and `nice` alone ranks processes only
    within their own group. False where the kernel has no autogroups (then `nice -n 19` is what holds it back)."""
    try:
        Path(f"/proc/{pid}/autogroup").write_text("19")
    except OSError:
        return False
    return True


def start(args: argparse.Namespace, name: str) -> str:
    out, state = args.runs_dir / name, args.states_dir / f"{name}.pt"
    pid = training_pid(out)
    if pid is not None:
        return f"{name}: already training in {out} (process {pid}); left alone"
    argv = train_argv(name, out, state, args.data_dir, args.feature_net)
    command = "OMP_NUM_THREADS=1 nice -n 19 " + " ".join(argv[1:])
    if args.dry_run:
        return f"{name}: would start: {command}"
    args.runs_dir.mkdir(parents=True, exist_ok=True)
    with (args.runs_dir / f"{name}.log").open("a") as log:
        child = subprocess.Popen(["nice", "-n", "19", *argv], cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
                                 env={**os.environ, "OMP_NUM_THREADS": "1"}, start_new_session=True)
    yield_cpu(child.pid)
    return f"{name}: started (process {child.pid}; log {args.runs_dir / f'{name}.log'}): {command}"


def pack(args: argparse.Namespace, name: str) -> str:
    from gankit import states   # here, not at the top: tools/device_check.py reads this file's recipes before torch
    from gankit.core import GanError
    out, target = args.runs_dir / name, args.states_dir / f"{name}.pt"
    min_advance = states.MIN_ADVANCE if args.min_advance is None else args.min_advance
    if not (out / "last.pt").is_file():
        return f"{name}: no {out / 'last.pt'} yet; nothing to pack"
    try:
        if args.dry_run:
            reason = states.pack_refusal(states.load_state(out), target, min_advance)
            return f"{name}: {'would not write ' + str(target) + ': ' + reason if reason else 'would write ' + str(target)}"
        return f"{name}: {states.write_compact_state(out, target, min_advance)}"
    except GanError as exc:
        return f"{name}: {exc}"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--pack", action="store_true", help="write the runs' compact states instead of starting them")
    p.add_argument("--dry-run", action="store_true", help="say what would be done, do nothing")
    p.add_argument("--names", nargs="+", choices=tuple(SHIPPED), default=list(SHIPPED))
    p.add_argument("--runs-dir", type=Path, default=ROOT / "runs" / "shipped")
    p.add_argument("--states-dir", type=Path, default=ROOT / "model" / "states")
    p.add_argument("--data-dir", type=Path, default=ROOT / "data")
    p.add_argument("--feature-net", type=Path, default=ROOT.parent / "shared" / "eval" / "cifar10_features.pt")
    p.add_argument("--min-advance", type=int, help="--pack: replace a state only when its run moved on by this many "
                                                  "iterations (default gankit.states.MIN_ADVANCE, 2,000)")
    args = p.parse_args(argv)
    for name in args.names:
        print(pack(args, name) if args.pack else start(args, name), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
