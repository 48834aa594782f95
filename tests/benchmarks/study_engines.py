"""Study-engine benchmark: one small synthetic study (2 arms x 2 seeds, width 16) trained by the local engine (one
run after another, one thread) and by the Ray engine (a local cluster of 2 CPUs: two runs at a time, one thread
each), in one run; prints both wall-clock times and their ratio. Starting Ray is timed apart (a cluster outlives
one study). The runs of both engines are checked to give the same validation scores.

    python tests/benchmarks/study_engines.py                 # 60 iterations
    python tests/benchmarks/study_engines.py --iters 200

Needs ray (pip install -r requirements-ray.txt). Not collected by pytest (the file name does not start with test_).
"""
import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
import gan_helpers as gh  # noqa: E402
import gankit  # noqa: E402
from gankit.checkpoints import read_history  # noqa: E402


def write_study(folder: Path, iters: int) -> Path:
    spec = {"description": "engine benchmark", "preset": "sagan", "width": 16, "set": ["batch_size=16", "z_dim=32"],
            "arms": {"none": ["g_attn=()", "d_attn=()"], "a8": ["g_attn=(8,)", "d_attn=(8,)"]}, "seeds": [0, 1],
            "iters": iters, "eval_every": iters // 2, "eval_samples": 200}
    path = folder / "bench.json"
    path.write_text(json.dumps(spec))
    return path


def scores(runs: Path) -> dict[str, list[float]]:
    return {d.name: [e["fd"] for e in read_history(d)["eval"]]
            for d in sorted((runs / "bench").iterdir()) if d.is_dir()}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--iters", type=int, default=60, help="iterations of every run")
    args = p.parse_args()
    import ray
    root = Path(tempfile.mkdtemp())
    study = gh.load_study(write_study(root, args.iters))
    data = gh.train_val_split(gh.synthetic_images(600), val_size=200)

    torch.set_num_threads(1)
    start = time.perf_counter()
    gankit.studies.run_study(study, data, gh.load_feature_net(gh.RandomFeatures()), root / "local",
                             stats_dir=root / "stats", progress=False)
    local = time.perf_counter() - start

    start = time.perf_counter()
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    cluster = time.perf_counter() - start
    start = time.perf_counter()
    gankit.engines.run_study_ray(study, data, gh.RandomFeatures(), root / "ray", stats_dir=root / "stats",
                                 progress=False, cpus_per_run=1)
    distributed = time.perf_counter() - start
    ray.shutdown()

    same = scores(root / "local") == scores(root / "ray")
    runs = len(study.runs())
    print(f"study: 2 arms x 2 seeds, width 16, {args.iters} iterations, validation every {args.iters // 2} on 200 "
          f"images; torch {torch.__version__}, ray {ray.__version__}")
    print(f"local engine (one run at a time, 1 thread):      {local:7.1f} s ({local / runs:.1f} s per run)")
    print(f"ray engine (2 workers, 1 thread each):           {distributed:7.1f} s (+ {cluster:.1f} s to start Ray)")
    print(f"local / ray: {local / distributed:.2f}x (with Ray's start: {local / (distributed + cluster):.2f}x); "
          f"same validation scores: {same}")


if __name__ == "__main__":
    main()
