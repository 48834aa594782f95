"""How much the validation metric moves when only the generated samples change: score one generator with
several sample seeds (the protocol of train(): eval_samples images vs the validation split) and write
the scores, their mean and standard deviation as JSON.

    python tools/eval_noise.py model/sagan_best.pt --data-dir data \
        --feature-net ../shared/eval/cifar10_features.pt --json model/eval_noise_sagan.json
"""
import argparse
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import gan_helpers as gh  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("ckpt")
    p.add_argument("--data-dir", default="data")
    p.add_argument("--stats-dir", help="real-statistics cache (default <data-dir>/fid_stats)")
    p.add_argument("--feature-net")
    p.add_argument("--fid-weights")
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument("--json", required=True)
    args = p.parse_args()
    device = gh.setup(0, "cpu")
    G = gh.load_generator(args.ckpt, device)
    features = gh.load_feature_net(args.feature_net, args.fid_weights, device)
    real = gh.validation_stats(args.data_dir, features, args.stats_dir)
    scores = [gh.evaluate_generator(G, real, features, G.config.eval_samples, seed=1000 + s) for s in range(args.seeds)]
    fds = [s["fd"] for s in scores]
    mean, std = statistics.mean(fds), statistics.stdev(fds)
    print(f"{scores[0]['metric']} over {args.seeds} sample seeds: {mean:.4f} ± {std:.4f} "
          f"({100 * std / mean:.1f}% relative), {scores[0]['n_fake']} generated vs {scores[0]['n_real']} real")
    gh.write_json_atomic({"checkpoint": args.ckpt, "fd": fds, "mean": mean, "std": std,
                          "n_fake": scores[0]["n_fake"], "n_real": scores[0]["n_real"], "metric": scores[0]["metric"]},
                         args.json)


if __name__ == "__main__":
    main()
