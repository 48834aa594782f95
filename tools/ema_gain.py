"""What sampling from the EMA of G's weights buys at one point of a run: score a training state's raw G and its
EMA generator (standing BatchNorm statistics, as train() scores it) on the validation split with the same sample
seeds, so each pair differs only in the weights. Writes both lists of scores and their paired differences as JSON.

    python tools/ema_gain.py runs/shipped/dcgan/last.pt --data-dir data \
        --feature-net ../shared/eval/cifar10_features.pt --json /tmp/ema_gain.json
"""
import argparse
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import gan_helpers as gh  # noqa: E402
from gankit.measures import EVAL_SEED  # noqa: E402  (the sampling seed of train()'s evaluations)
from gankit.sampling import standing_batches  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("state", help="a training state (last.pt) whose run samples from an EMA of G")
    p.add_argument("--data-dir", default="data")
    p.add_argument("--stats-dir", help="real-statistics cache (default <data-dir>/fid_stats)")
    p.add_argument("--feature-net")
    p.add_argument("--fid-weights")
    p.add_argument("--seeds", type=int, nargs="+", default=[EVAL_SEED, 1, 2], help="sampling seeds")
    p.add_argument("--json", required=True)
    args = p.parse_args()
    device = gh.setup(0, "cpu")
    state = gh.load_checkpoint(args.state)
    if state["kind"] != "train_state" or state["G_ema"] is None:
        raise SystemExit(f"{args.state} is no training state with an EMA of G; pass a last.pt of a run with "
                         f"ema_decay > 0")
    cfg = gh.Config.from_dict(state["config"])
    generators = {}
    for key in ("G", "G_ema"):
        G, _ = gh.build_models(cfg)
        G.load_state_dict(state[key])
        G.config = cfg
        generators[key] = gh.to_device(G, device).eval()
    gh.standing_batch_norm(generators["G_ema"], standing_batches(cfg.eval_samples))
    features = gh.load_feature_net(args.feature_net, args.fid_weights, device)
    real = gh.validation_stats(args.data_dir, features, args.stats_dir, cfg=cfg)
    fd = {key: [gh.evaluate_generator(G, real, features, cfg.eval_samples, seed=s)["fd"] for s in args.seeds]
          for key, G in generators.items()}
    gain = [raw - ema for raw, ema in zip(fd["G"], fd["G_ema"])]
    print(f"{args.state} (iteration {state['iteration']:,}, EMA decay {cfg.ema_decay:g}): FD raw G "
          f"{', '.join(f'{s:.4f}' for s in fd['G'])}; EMA {', '.join(f'{s:.4f}' for s in fd['G_ema'])}; "
          f"raw minus EMA {statistics.mean(gain):+.4f} on average (seeds {args.seeds})")
    gh.write_json_atomic({"command": "python tools/ema_gain.py " + " ".join(sys.argv[1:]), "state": args.state,
                          "iteration": state["iteration"], "ema_decay": cfg.ema_decay, "seeds": args.seeds,
                          "n_fake": cfg.eval_samples, "fd_raw": fd["G"], "fd_ema": fd["G_ema"],
                          "raw_minus_ema": gain}, args.json)


if __name__ == "__main__":
    main()
