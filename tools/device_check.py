"""One prepared command for the GPU machine (docs/gpu.md). Phases in order of value, each under its own time budget and
writing its results under --out ($OUT) as it goes, so that a call stopped at its limit still returns what it finished:
env (unpack the carried CIFAR-10 archive; torch, the device, pytest, pytorch-fid, nbclient), train (the two shipped
runs resumed from their compact states in model/states/ for the time the later phases leave, one `train
--resume-from` process each, side by side -> training.log), pack (each run's new compact state, history and best
generator -> shipped_<name>.tar.gz), notebooks (the four notebooks in smoke mode on the GPU, each passed or its failing
cell, in device_check.json), tests (pytest -m cuda tests/test_cuda.py -> cuda_tests.txt), speed (our step vs a DataLoader reference loop, DCGAN and full-width SAGAN, float32 vs AMP, eager vs
torch.compile; proxy features of 10,000 images -> speed_cuda.json/.md). device_check.json says of every phase: done,
stopped (budget spent; what it finished is kept), failed or skipped. --dry-run runs it all at tiny sizes on the CPU.

    python tools/device_check.py --out "$OUT"                 # on the GPU machine, from the repository root
    python tools/device_check.py --dry-run --out /tmp/dc      # anywhere (tests/test_device_check.py)
"""
from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests" / "benchmarks")]
from train_shipped import EVAL_EVERY, EVAL_SAMPLES, SHIPPED  # noqa: E402  (tools/, this file's folder)
PHASES = ("env", "train", "pack", "notebooks", "tests", "speed")   # in order of value; each runs after those before
BUDGETS: dict[str, float | None] = {"env": 60, "train": None, "pack": 30, "notebooks": 90, "tests": 40, "speed": 60}
CARRY, STATES = ROOT / "device_carry", ROOT / "model" / "states"   # what docs/gpu.md carries; the shipped runs' states
NOTEBOOKS = ("DCGAN_train.ipynb", "SAGAN_train.ipynb", "final_evaluation.ipynb", "more_gans.ipynb")
FEATURE_IMAGES = 10_000            # images of the feature-extraction timing (as many as a test-set score uses)
PACK_LIMIT = 15.5 * 2 ** 20        # bytes per archive: the device tool returns files of at most 16 MiB
STOPPED = 3                        # exit code of a child phase that stopped at its deadline
START = time.monotonic()


def log(message: str) -> None:
    print(f"[{time.monotonic() - START:6.1f} s] {message}", flush=True)


def write_json(data: Any, path: Path) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=1, default=str))
    os.replace(tmp, path)


def inputs(args: argparse.Namespace) -> tuple[Path, Path, Path]:
    """(archive, feature network, folder of compact states): the carried ones and the tree's, or the dry run's
    stand-ins in --work."""
    if args.dry_run:
        return args.work / "synthetic.tar.gz", args.work / "random_features.pt", args.work / "states"
    return CARRY / "cifar10-jpeg.tar.gz", CARRY / "cifar10_features.pt", STATES


def start(argv: list[str], out: Any = None, env: dict[str, str] | None = None) -> subprocess.Popen:
    """argv from the repository root in its own process group (stopping it stops its children too)."""
    return subprocess.Popen(argv, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT if out else None,
                            env={**os.environ, **(env or {})}, start_new_session=True)


def wait_all(children: list[subprocess.Popen], deadline: float) -> list[int | None]:
    """Exit codes of the children, None for those still running at `deadline` (time.monotonic()): they get SIGINT
    (KeyboardInterrupt: pytest prints its summary; checkpoints are written atomically), then SIGKILL 10 s later."""
    while any(c.poll() is None for c in children) and time.monotonic() < deadline:
        time.sleep(0.2)
    stopped = [c for c in children if c.poll() is None]
    for sig, wait in ((signal.SIGINT, 10.0), (signal.SIGKILL, 5.0)):
        for c in (c for c in stopped if c.poll() is None):
            os.killpg(c.pid, sig)
        end = time.monotonic() + wait
        while any(c.poll() is None for c in stopped) and time.monotonic() < end:
            time.sleep(0.2)
    return [None if c in stopped else c.returncode for c in children]


def make_dry_inputs(args: argparse.Namespace) -> None:
    """Synthetic images packed like the carried archive (cifar10-jpeg/{train,test}/<class>/) and a scripted
    RandomFeatures."""
    import torch

    import gan_helpers as gh
    archive, features, _ = inputs(args)
    for part, n, seed in (("train", 300, 0), ("test", 100, 1)):
        images = gh.synthetic_images(n, seed=seed)
        for c, name in enumerate(images.classes):
            sel = images.y == c
            gh.save_pngs(gh.to_float(images.x[sel]), args.work / "synthetic" / part / name,
                         [f"{i:04d}" for i in range(int(sel.sum()))])
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(args.work / "synthetic", arcname="cifar10-jpeg")
    with gh.warnings_ignored():   # TorchScript's deprecation warning (torch >= 2.14)
        torch.jit.script(gh.RandomFeatures()).save(str(features))


def make_dry_states(args: argparse.Namespace) -> None:
    """Compact states of the shipped recipes at test size (width 8, batch 8), trained 2 iterations on the unpacked
    synthetic images: what the train phase resumes in a dry run."""
    import gan_helpers as gh
    from gankit.states import write_compact_state
    _, features, states = inputs(args)
    tiny = {"g_ch": 8, "d_ch": 8, "batch_size": 8, "val_size": 60, "ema_start": 1, "iters": 2, "eval_every": 2,
            "eval_samples": 40}
    for name, sets in SHIPPED.items():
        cfg = dataclasses.replace(getattr(gh.Config, name)().with_overrides(list(sets)), **tiny)
        run = args.work / "dry_states" / name
        shutil.rmtree(run, ignore_errors=True)   # a dry run starts from nothing, however many ran before
        gh.train(cfg, run, *gh.load_dataset(cfg, args.work / "data"), gh.load_feature_net(features, classifier="none"),
                 progress=False)
        write_compact_state(run, states / f"{name}.pt", min_advance=0)


def phase_env(args: argparse.Namespace, budget: float) -> tuple[str, str]:
    import importlib.util

    import torch
    args.work.mkdir(parents=True, exist_ok=True)
    if args.dry_run:
        make_dry_inputs(args)
    archive, features, _ = inputs(args)
    for path, what in ((archive, "CIFAR-10 archive"), (features, "feature network")):
        if not path.is_file():
            raise RuntimeError(f"{what} {path} not found: copy it into device_carry/ and carry that folder (docs/gpu.md)")
    data = args.work / "data"
    if not (data / "cifar10-jpeg" / "train").is_dir():
        data.mkdir(parents=True, exist_ok=True)
        subprocess.run(["tar", "xzf", str(archive), "-C", str(data)], check=True, timeout=budget)
    if args.dry_run:
        make_dry_states(args)
    found = {m: importlib.util.find_spec(m) is not None
             for m in ("pytest", "pytorch_fid", "triton", "nbclient", "ipykernel")}
    cuda = torch.cuda.is_available()
    env = args.report["env"] = {
        "python": sys.version.split()[0], "torch": torch.__version__, "cuda": torch.version.cuda, "cuda_available": cuda,
        "device": torch.cuda.get_device_name() if cuda else "cpu", "cpus": os.cpu_count(),
        "capability": torch.cuda.get_device_capability() if cuda else None, "cudnn": torch.backends.cudnn.version(),
        "bf16": torch.cuda.is_bf16_supported(including_emulation=False) if cuda else None, **found,
        "train_images": sum(1 for _ in (data / "cifar10-jpeg" / "train").rglob("*.*"))}
    if not cuda and not args.dry_run:
        raise RuntimeError("no CUDA device here (torch.cuda.is_available() is False); --dry-run runs on the CPU")
    return "done", (f"{env['device']}, torch {env['torch']}, pytest {'yes' if found['pytest'] else 'NO'}, pytorch-fid "
                    f"{'yes' if found['pytorch_fid'] else 'no (proxy features)'}, nbclient and ipykernel "
                    f"{'yes' if found['nbclient'] and found['ipykernel'] else 'NO'}, {env['train_images']} train images")


def phase_tests(args: argparse.Namespace, budget: float) -> tuple[str, str]:
    if not args.report["env"]["pytest"]:
        return "skipped", "pytest is not importable here; carry its wheel (device README) to run the CUDA tests"
    path = args.out / "cuda_tests.txt"
    with path.open("w") as out:
        rc, = wait_all([start([sys.executable, "-m", "pytest", "-m", "cuda", "tests/test_cuda.py", "-v", "-rs",
                               "-p", "no:cacheprovider", "--durations=0"], out)], time.monotonic() + budget)
    last = ([line.strip("= ") for line in path.read_text().splitlines() if line.strip()] or ["no output"])[-1]
    if rc is None:
        return "stopped", f"killed at its budget of {budget:g} s; what it printed is in cuda_tests.txt"
    return ("done" if rc == 0 else "failed"), last


def speed_child(args: argparse.Namespace, result: dict[str, Any]) -> int:
    """The speed phase in its own process: rows in order of value, each saved as soon as it is measured; past
    args.deadline (time.time()) the rest is recorded as not measured."""
    import torch
    import train_speed as ts

    import gan_helpers as gh
    device = torch.device("cpu" if args.dry_run else "cuda")
    full = gh.load_cifar10(args.work / "data", train=True)
    train, val = gh.train_val_split(full, val_size=min(5000, len(full) // 5))
    small = {"g_ch": 8, "d_ch": 8, "batch_size": 8} if args.dry_run else {}
    configs = {name: dataclasses.replace(getattr(gh.Config, name)().with_overrides(list(SHIPPED[name])), **small)
               for name in SHIPPED}                                              # the recipes that ship
    amp, backend = ("bf16", "aot_eager") if args.dry_run else ("auto", "inductor")
    n_feat = min(48 if args.dry_run else FEATURE_IMAGES, len(full))    # the dry run: a few, fp16 is slow on a CPU
    result.update(device=gh.device_name(device), torch=torch.__version__, date=datetime.date.today().isoformat(),
                  iters=args.iters, warmup=args.warmup, amp=f"{amp} -> {gh.precision(amp, device).dtype}",
                  compile=backend, reference="DataLoader over a TensorDataset (float images in [-1, 1] on the host), a "
                                             "host-to-device copy per batch, NCHW float32 eager, no EMA")
    captured = () if args.dry_run else (("ours", "off", "cudagraph"), ("ours", amp, "cudagraph"))   # CUDA only
    plan: list[tuple[str, tuple]] = [("train", (m, loop, a, comp)) for m in configs for loop, a, comp in
                                     (("reference", "off", "off"), ("ours", "off", "off"), *captured, ("ours", amp, "off"))]
    plan += [("evaluation", (EVAL_SAMPLES,))]
    plan += [("features", (half, bs)) for half, bs in ((True, 500), (True, 50), (False, 500))]
    plan += [("train", (m, "ours", a, backend)) for m in configs for a in ("off", amp)][:1 if args.dry_run else None]
    for i, (kind, spec) in enumerate(plan):
        if time.time() > args.deadline:
            result["stopped"] = f"budget reached; not measured: {[s for _, s in plan[i:]]}"
            return STOPPED
        if kind == "evaluation":   # one validation evaluation of the SAGAN, real statistics cached
            net = gh.load_feature_net(inputs(args)[1], device=device)
            G = gh.to_device(gh.build_models(configs["sagan"])[0], device)
            real = gh.real_stats(val, "val", net, args.work / "stats")
            n = min(spec[0], len(full)) if args.dry_run else spec[0]
            tick = time.perf_counter()
            gh.evaluate_generator(G, real, net, n)
            result["evaluation"] = {"samples": n, "seconds": round(time.perf_counter() - tick, 3), "label": net.label}
        elif kind == "features":   # what every evaluation runs: the features and the classifier's logits, one pass
            half, bs = spec
            net = gh.load_feature_net(inputs(args)[1], device=device, half=half)
            net.features(full.x[:min(bs, n_feat)])                              # warm-up
            tick = time.perf_counter()
            net.features(full.x[:n_feat], batch_size=bs)
            sec = time.perf_counter() - tick
            result["features"].append({"images": n_feat, "half": half, "batch": bs, "seconds": round(sec, 3),
                                       "img_s": round(n_feat / sec, 1), "label": net.label})
        else:
            model, loop, a, comp = spec
            cfg = configs[model]
            row = {"model": model, "batch": cfg.batch_size, "loop": loop, "amp": a, "compile": comp}
            try:
                torch.backends.cudnn.benchmark = device.type == "cuda"   # as in train() and pytorch/examples' dcgan
                torch.compiler.reset()   # each row compiles afresh: earlier rows' graphs count to dynamo's recompile limit
                sec = (ts.time_reference(cfg, ts.tensor_loader(train, cfg.batch_size), device, args.iters, args.warmup)
                       if loop == "reference" else
                       ts.time_ours(cfg, train, device, args.iters, args.warmup, amp=a, compile=comp))
                ref = next((r["sec_per_it"] for r in result["rows"] if r["model"] == model
                            and r["loop"] == "reference" and "sec_per_it" in r), sec if loop == "reference" else None)
                row.update(sec_per_it=sec, it_s=round(1 / sec, 2), img_s=round(cfg.batch_size / sec, 1),
                           vs_reference=round(ref / sec, 3) if ref else None)
            except Exception as exc:   # noqa: BLE001  one failing option (a compiler error) leaves the others to run
                row["error"] = f"{type(exc).__name__}: {(str(exc).splitlines() or [''])[0][:200]}"
            result["rows"].append(row)
        log(f"speed: {kind} {spec}")
        save_speed(args, result)
    return 0


def save_speed(args: argparse.Namespace, r: dict[str, Any]) -> None:
    write_json(r, args.out / "speed_cuda.json")

    def cells(x: dict[str, Any]) -> str:
        if "it_s" not in x:
            return f"error: {x['error']} | | |"
        vs = f"{x['vs_reference']:.2f}x" if x["vs_reference"] is not None else "(no reference)"
        return f"{x['it_s']:.2f} | {x['img_s']:.0f} | {vs} |"
    first = r["features"][0] if r["features"] else {"images": 0, "label": ""}
    (args.out / "speed_cuda.md").write_text("\n".join([
        f"# Training speed on {r.get('device')} ({r.get('date')})", "",
        (f"torch {r.get('torch')}; `python tools/device_check.py` (speed phase): {r.get('iters')} timed iterations "
         f"after {r.get('warmup')} warm-up ones (compilation happens there); amp {r.get('amp')}; reference: "
         f"{r.get('reference')}."), "",
        "| model | batch | loop | amp | compile | it/s | images/s | vs reference |", "|---|---|---|---|---|---|---|---|",
        *(f"| {x['model']} | {x['batch']} | {x['loop']} | {x['amp']} | {x['compile']} | {cells(x)}" for x in r["rows"]),
        "", (f"Feature extraction of {first['images']} images, {first['label']} (with the classifier's logits in the "
             "same pass, as every evaluation runs it):"), "", "| precision | batch | seconds | images/s |",
        "|---|---|---|---|", *(f"| {'fp16 autocast' if f['half'] else 'float32'} | {f['batch']} | {f['seconds']:.2f} | "
                               f"{f['img_s']:.0f} |" for f in r["features"]),
        *(["", f"One validation evaluation ({r['evaluation']['label']}, the SAGAN, {r['evaluation']['samples']} "
               f"generated images, real statistics cached): {r['evaluation']['seconds']:.2f} s."]
          if r.get("evaluation") else []),
        "", *(f"{k.title()}: {r[k]}" for k in ("stopped", "error") if r.get(k))]) + "\n")


def phase_speed(args: argparse.Namespace, budget: float) -> tuple[str, str]:
    grace = min(15.0, budget / 4)   # a row may run this long past the deadline before the phase is killed
    argv = [sys.executable, __file__, *sys.argv[1:], "--phase", "speed", "--deadline", str(time.time() + budget - grace)]
    rc, = wait_all([start(argv)], time.monotonic() + budget)
    path = args.out / "speed_cuda.json"
    done = json.loads(path.read_text()) if path.is_file() else {"rows": [], "features": []}
    kept = f"{len(done['rows'])} training rows, {len(done['features'])} feature rows"
    if rc is None or rc == STOPPED:
        return "stopped", f"at its budget of {budget:g} s; kept {kept}"
    return ("done", kept) if rc == 0 else ("failed", f"exit code {rc}: {done.get('error')}; kept {kept}")


def phase_train(args: argparse.Namespace, budget: float) -> tuple[str, str]:
    """Both shipped runs resumed from their compact states, each its own `train --resume-from` process, side by side
    on the GPU until the time limit (then each writes last.pt), evaluated every 1,000 iterations on 5,000 images."""
    import gan_helpers as gh
    _, feature_net, states = inputs(args)
    minutes = max(budget - 45.0, 10.0) / 60     # imports, CUDA start and reading the images come before its clock
    schedule = ["--iters", "4", "--eval-every", "2", "--eval-samples", "40"] if args.dry_run else \
        ["--eval-every", str(EVAL_EVERY), "--eval-samples", str(EVAL_SAMPLES)]
    env = {"OMP_NUM_THREADS": "1" if args.dry_run else "4", "PYTHONUNBUFFERED": "1"}
    runs = args.report["runs"] = {}
    with (args.out / "training.log").open("a") as out:
        children = []
        for name in SHIPPED:
            state = states / f"{name}.pt"
            if not state.is_file():
                out.write(f"[{name}] no compact state {state}: not trained\n")
                continue
            runs[name] = {"from_iteration": gh.load_checkpoint(state)["iteration"]}
            argv = [sys.executable, "gan_helpers.py", "train", name, "--resume-from", str(state), "--out",
                    str(args.work / "shipped" / name), "--data-dir", str(args.work / "data"), "--feature-net",
                    str(feature_net), *schedule, "--device", "cpu" if args.dry_run else "cuda",
                    "--time-limit", f"{minutes:.2f}"]
            out.write(f"[{name}] {' '.join(argv[1:])}\n")
            out.flush()
            children.append(start(argv, out, env))
        log(f"train: {len(children)} shipped runs side by side, time limit {minutes:.2f} min each")
        codes = wait_all(children, time.monotonic() + budget)
    for name, run in runs.items():
        folder = args.work / "shipped" / name
        if (folder / "last.pt").is_file():
            history = json.loads((folder / "history.json").read_text())
            run.update(iteration=history["iter"][-1] if history["iter"] else run["from_iteration"],
                       best_fd=min((e["fd"] for e in history["eval"]), default=None), new_best=(folder / "best.pt").is_file())
    reached = "; ".join(f"{n} {r['from_iteration']:,} -> {r.get('iteration', r['from_iteration']):,}"
                        for n, r in runs.items()) or "no compact state to resume"
    if not runs or any(c not in (0, None) for c in codes):
        return "failed", f"exit codes {codes} (messages in training.log); {reached}"
    return ("done" if all(c == 0 for c in codes) else "stopped"), reached


def phase_pack(args: argparse.Namespace, budget: float) -> tuple[str, str]:
    """Each trained run's new compact state (state.pt), history.json and best.pt (when it beat the state's best) ->
    shipped_<name>.tar.gz, under PACK_LIMIT: history.json, then best.pt are left out if it would not fit."""
    from gankit.states import write_compact_state
    notes = []
    for name in SHIPPED:
        folder = args.work / "shipped" / name
        if not (folder / "last.pt").is_file():
            continue
        write_compact_state(folder, folder / "state.pt", min_advance=0)
        path = args.out / f"shipped_{name}.tar.gz"
        for files in (("state.pt", "best.pt", "history.json"), ("state.pt", "best.pt"), ("state.pt",)):
            with tarfile.open(path, "w:gz") as tar:
                for file in (f for f in files if (folder / f).is_file()):
                    tar.add(folder / file, arcname=f"{name}/{file}")
            if path.stat().st_size <= PACK_LIMIT:
                break
        left_out = [f for f in ("best.pt", "history.json") if f not in files and (folder / f).is_file()]
        notes.append(f"{path.name} {path.stat().st_size / 2 ** 20:.2f} MiB" + (
            f" without {' and '.join(left_out)} (over {PACK_LIMIT / 2 ** 20:g} MiB with them)" if left_out else ""))
    return ("done" if notes else "skipped"), "; ".join(notes) or "no run was trained"


def phase_notebooks(args: argparse.Namespace, budget: float) -> tuple[str, str]:
    """The notebooks top to bottom in smoke mode (GAN_SMOKE=1; tests/test_notebooks.py) on this machine's device,
    each in a copy of the kit (a smoke run publishes nothing), in a fresh kernel; args.report["notebooks"] says of
    each: passed, failed (its failing cell), or not run (budget spent)."""
    env_ok = args.report["env"]
    if not (env_ok["nbclient"] and env_ok["ipykernel"]):
        return "skipped", "nbclient or ipykernel is not importable here; carry their wheels (docs/gpu.md)"
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    repo, tmp = args.work / "notebooks_kit", args.work / "notebooks_tmp"
    shutil.rmtree(repo, ignore_errors=True)
    (repo / "notebooks").mkdir(parents=True)
    tmp.mkdir(parents=True, exist_ok=True)
    shutil.copy(ROOT / "gan_helpers.py", repo)
    shutil.copytree(ROOT / "gankit", repo / "gankit", ignore=shutil.ignore_patterns("__pycache__"))
    results = ROOT / "model" / "studies" / "attention" / "results.json"   # the final notebook's studies section
    (repo / results.relative_to(ROOT)).parent.mkdir(parents=True)
    shutil.copy(results, repo / results.relative_to(ROOT))
    env = {**os.environ, "GAN_SMOKE": "1", "TMPDIR": str(tmp), "OMP_NUM_THREADS": "1" if args.dry_run else "4",
           "MPLBACKEND": "module://matplotlib_inline.backend_inline"}
    report = args.report["notebooks"] = {}
    end = time.monotonic() + budget
    for name in args.notebooks:
        left = end - time.monotonic()
        if left < 5:
            report[name] = "not run: the phase's budget was spent"
            continue
        nb = nbformat.read(ROOT / "notebooks" / name, as_version=4)
        tick = time.monotonic()
        try:
            NotebookClient(nb, kernel_name="python3", timeout=int(left),
                           resources={"metadata": {"path": str(repo / "notebooks")}}).execute(env=env)
            report[name] = f"passed in {time.monotonic() - tick:.0f} s"
        except CellExecutionError as exc:
            cell = next((i for i, c in enumerate(nb.cells) if any(o.get("output_type") == "error"
                                                                  for o in c.get("outputs", []))), None)
            report[name] = f"failed at cell {cell}: {exc.ename}: {str(exc.evalue).splitlines()[0][:200] if exc.evalue else ''}"
        except Exception as exc:   # noqa: BLE001  a cell past the time left, a kernel that died: recorded, next one
            report[name] = f"stopped: {type(exc).__name__}: {(str(exc).splitlines() or [''])[0][:200]}"
        log(f"notebooks: {name}: {report[name]}")
    passed = sum(r.startswith("passed") for r in report.values())
    status = "done" if passed == len(report) else "failed" if any(r.startswith("failed") for r in report.values()) \
        else "stopped"
    return status, f"{passed}/{len(report)} passed" + "".join(f"; {n}: {r}" for n, r in report.items()
                                                            if not r.startswith("passed"))


def run_phase(args: argparse.Namespace, name: str) -> None:
    phases, left = args.report["phases"], args.total - (time.monotonic() - START)
    later = args.phases[args.phases.index(name) + 1:]
    reserve = sum(args.budgets[ph] or 0.0 for ph in later)     # the budgets of the phases still to come
    budget = min(args.budgets[name] if args.budgets[name] is not None else float("inf"), left - reserve)
    if name != "env" and phases.get("env", {}).get("status") != "done":
        phases[name] = {"status": "skipped", "note": "the environment phase did not finish"}
    elif budget <= 0:
        phases[name] = {"status": "skipped", "note": f"no time left ({left:.0f} s of --total)"}
    else:
        phases[name] = {"status": "running", "budget": round(budget, 1)}
        write_json(args.report, args.out / "device_check.json")
        log(f"{name}: started, budget {budget:.0f} s")
        tick = time.monotonic()
        try:
            status, note = globals()[f"phase_{name}"](args, budget)
        except Exception as exc:   # noqa: BLE001  a failed phase is recorded; the later ones still run
            status, note = "failed", f"{type(exc).__name__}: {(str(exc).splitlines() or [''])[0]}"
        phases[name].update(status=status, note=note, seconds=round(time.monotonic() - tick, 1))
    log(f"{name}: {phases[name]['status']}: {phases[name].get('note', '')}")
    write_json(args.report, args.out / "device_check.json")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", type=Path, default=os.environ.get("OUT"), help="results folder (default $OUT)")
    p.add_argument("--dry-run", action="store_true", help="every phase at tiny sizes on the CPU")
    p.add_argument("--work", type=Path, help="data and run folders (default: device_check[_dry] in the temp dir)")
    p.add_argument("--total", type=float, default=480.0, help="seconds for all phases together")
    p.add_argument("--budget", nargs="*", default=[], metavar="PHASE=SECONDS",
                   help=f"a phase's own budget (defaults {BUDGETS}; train: what is left)")
    p.add_argument("--phases", default=",".join(PHASES), help="comma-separated phases to run")
    p.add_argument("--notebooks", nargs="+", default=list(NOTEBOOKS), choices=NOTEBOOKS,
                   help="the notebooks phase's notebooks (default: all four)")
    p.add_argument("--phase", help=argparse.SUPPRESS)                 # a child process running one phase
    p.add_argument("--deadline", type=float, help=argparse.SUPPRESS)  # its deadline, time.time()
    args = p.parse_args()
    if args.out is None:
        p.error("no results folder: pass --out DIR or set $OUT")
    args.out.mkdir(parents=True, exist_ok=True)
    args.work = args.work or Path(tempfile.gettempdir()) / ("device_check_dry" if args.dry_run else "device_check")
    args.iters, args.warmup = (2, 1) if args.dry_run else (30, 5)   # timed and warm-up iterations per speed row
    if args.dry_run:
        os.environ["OMP_NUM_THREADS"] = "1"
    if args.phase == "speed":
        result: dict[str, Any] = {"rows": [], "features": [], "stopped": None, "error": None}
        try:
            return speed_child(args, result)
        except KeyboardInterrupt:   # the parent stops a row that ran past the budget
            result["stopped"] = "killed at the phase budget while measuring the next row"
            return STOPPED
        except Exception as exc:
            result["error"] = f"{type(exc).__name__}: {(str(exc).splitlines() or [''])[0]}"
            raise
        finally:
            save_speed(args, result)
    try:
        args.budgets = dict(BUDGETS, **{k: float(v) for k, _, v in (b.partition("=") for b in args.budget)})
    except ValueError:
        p.error(f"--budget takes PHASE=SECONDS, got {args.budget}")
    args.phases = [ph for ph in args.phases.split(",") if ph]
    unknown = (set(args.budgets) | set(args.phases)) - set(PHASES)
    if unknown:
        p.error(f"unknown phases {sorted(unknown)}; the phases are {', '.join(PHASES)}")
    args.report = {"command": " ".join(sys.argv), "dry_run": args.dry_run, "total_budget": args.total, "phases": {}}
    args.phases = [ph for ph in PHASES if ph in args.phases]
    for name in args.phases:
        run_phase(args, name)
    files = sorted(f.name for f in args.out.iterdir())
    args.report.update(seconds=round(time.monotonic() - START, 1), files=files)
    write_json(args.report, args.out / "device_check.json")
    log(f"done in {args.report['seconds']:.0f} s; {len(files)} files in {args.out}: {', '.join(files)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
