"""Score generator checkpoints (best.pt or model/<name>_best.pt) again on their own validation split, as train()
scored them (the same sample count and sampling seed), and with further sampling seeds: whether a stored score
is reproduced by today's code, and how much it moves with other samples. Writes the scores as JSON.

    python tools/rescore_validation.py model/sagan_best.pt OTHER/best.pt --data-dir data \
        --feature-net ../shared/eval/cifar10_features.pt --json model/rescore_sagan_validation.json
"""
import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import gan_helpers as gh  # noqa: E402
from gankit.measures import EVAL_SEED  # noqa: E402  (the sampling seed of train()'s evaluations)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("checkpoints", nargs="+", help="generator checkpoints")
    p.add_argument("--data-dir", default="data")
    p.add_argument("--stats-dir", help="real-statistics cache (default <data-dir>/fid_stats)")
    p.add_argument("--feature-net")
    p.add_argument("--fid-weights")
    p.add_argument("--seeds", type=int, nargs="+", default=[EVAL_SEED, 1], help="sampling seeds (first: train()'s)")
    p.add_argument("--json", required=True)
    args = p.parse_args()
    device = gh.setup(0, "cpu")
    features = gh.load_feature_net(args.feature_net, args.fid_weights, device)
    out = {"command": "python tools/rescore_validation.py " + " ".join(sys.argv[1:]), "seeds": args.seeds, "scores": {}}
    for path in args.checkpoints:
        ckpt, G = gh.load_checkpoint(path), gh.load_generator(path, device)
        real = gh.validation_stats(args.data_dir, features, args.stats_dir, cfg=G.config)
        n = ckpt["metrics"]["n_fake"]
        scores = [gh.evaluate_generator(G, real, features, n, seed=s)["fd"] for s in args.seeds]
        out["scores"][path] = {"iteration": ckpt["iteration"], "stored": ckpt["metrics"]["fd"], "n_fake": n,
                               "metric": ckpt["metrics"]["metric"], "fd": scores}
        print(f"{path}: stored {ckpt['metrics']['fd']:.4f}, today {', '.join(f'{s:.4f}' for s in scores)} "
              f"(seeds {args.seeds})", flush=True)
    gh.write_json_atomic(out, args.json)


if __name__ == "__main__":
    main()
