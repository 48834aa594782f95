"""How spread out each run's samples are, for every finished run of a study: the nearest-neighbour ratio of its best
generator (best.pt) or its last (last.pt: the EMA generator with standing BatchNorm statistics, as train() scores
it; for runs that fork a state, whose best may be the state itself) (gankit.measures.nearest_neighbour_ratio: the
median pixel distance from each sample to its nearest other sample, over that of as many validation images; 1 = as
spread out as real images) on N samples (classes in turn, the test-set score's sampling seed) against N validation
images of the run's own split, shuffled, and the same with the samples' pixel mean and spread set to the real images'
(contrast-matched). Per arm and measure: mean and spread over seeds, and Welch's test of every arm against
the first with Holm's correction (gankit.study_results.study_tests, as `study collect` tests the scores). Writes
RUNS_DIR/<study>/spread_<best|last>.json.

    python tools/study_spread.py studies/dcgan_class_weight.json --data-dir data --generator last
"""
import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import gan_helpers as gh  # noqa: E402
from gankit.data import to_uint8  # noqa: E402
from gankit.measures import EVAL_SEED, nearest_neighbour_ratio  # noqa: E402
from gankit.study_results import study_tests  # noqa: E402

CHECKPOINTS = {"best": "best.pt", "last": "last.pt"}
# the ratio as the test-set score has it, and with the samples' pixel mean and spread set to the real images' (a
# generator that only exaggerates contrast spreads its samples in pixels without spreading what they show)
MEASURES = {"ratio": False, "contrast_matched": True}


def run_spread(path: Path, data_dir: str, n: int, loaded: dict[tuple, gh.ImageSet]) -> dict[str, float]:
    """The nearest-neighbour ratios (plain and contrast-matched, MEASURES) of the generator of checkpoint `path`
    against n shuffled validation images; `loaded` (split fields -> validation images) keeps the splits read so
    far for the next runs."""
    G = gh.load_generator(path)          # last.pt: its EMA as train() scores it
    split = tuple(getattr(G.config, k) for k in gh.SPLIT_FIELDS)
    if split not in loaded:
        (loaded[split],) = gh.load_dataset(G.config, data_dir, ("val",))
    val = loaded[split]
    if len(val) < n:
        raise SystemExit(f"{path}: its validation split has {len(val)} images, fewer than --n {n}; pass --n {len(val)}")
    shuffled = torch.randperm(len(val), generator=torch.Generator().manual_seed(0))[:n]
    fake, real = to_uint8(gh.sample(G, n, seed=EVAL_SEED)), val.x[shuffled]
    return {key: nearest_neighbour_ratio(fake, real, match_contrast=matched) for key, matched in MEASURES.items()}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("study", help="a study file (studies/NAME.json)")
    p.add_argument("--data-dir", default="data")
    p.add_argument("--runs-dir", default="model/studies")
    p.add_argument("--n", type=int, default=5000, help="generated and validation images per run (default 5,000)")
    p.add_argument("--generator", choices=sorted(CHECKPOINTS), default="best",
                   help="each run's best generator (default) or its last one")
    args = p.parse_args()
    gh.setup(0, "cpu")
    study = gh.load_study(args.study)
    runs: dict[str, list[dict[str, float]]] = {}
    loaded: dict[tuple, gh.ImageSet] = {}
    for arm, seed in study.runs():
        folder = gh.study_run_dir(study, arm, seed, args.runs_dir)
        path = folder / CHECKPOINTS[args.generator]
        if gh.run_record(folder) is None or not path.is_file():
            print(f"{folder}: not finished here (no run.json or {path.name}); left out")
            continue
        runs.setdefault(arm, []).append(run_spread(path, args.data_dir, args.n, loaded))
        print(f"{arm} seed {seed}: nearest-neighbour ratio {runs[arm][-1]['ratio']:.4f}, contrast matched "
              f"{runs[arm][-1]['contrast_matched']:.4f}", flush=True)
    if not runs:
        raise SystemExit(f"no finished run of {study.name} in {args.runs_dir}: run `python gan_helpers.py study run "
                         f"{args.study}` first")
    first = next(iter(runs))
    arms: dict[str, dict] = {arm: {} for arm in runs}
    for key in MEASURES:
        scores = {arm: gh.mean_std([r[key] for r in values]) for arm, values in runs.items()}
        tests = study_tests({"arms": {arm: {key: s} for arm, s in scores.items()}, "baseline": first}, key=key)
        for arm, s in scores.items():
            arms[arm][key] = {**s, "vs_first": tests.get(arm)}
            spread = "" if s["std"] is None else f" +- {s['std']:.4f}"
            test = tests.get(arm)
            versus = "" if test is None else (f"; minus {first}: {test['diff']:+.4f} (95% CI {test['low']:+.4f} to "
                                              f"{test['high']:+.4f}, Welch p {test['p']:.3g}, Holm "
                                              f"{test['p_holm']:.3g}: {test['verdict']})")
            print(f"{key} {arm}: {s['mean']:.4f}{spread} over {s['n']} seed{'s' if s['n'] > 1 else ''}{versus}")
    out = Path(args.runs_dir) / study.name / f"spread_{args.generator}.json"
    gh.write_json_atomic({"command": "python tools/study_spread.py " + " ".join(sys.argv[1:]), "n": args.n,
                          "generator": args.generator, "sampling_seed": EVAL_SEED,
                          "metric": "nearest-neighbour ratio (pixels, vs validation): as the test-set score has it "
                                    "(ratio) and with the samples' pixel mean and spread set to the real images' "
                                    "(contrast_matched)", "arms": arms}, out)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
