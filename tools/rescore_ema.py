"""Score a training state's generators on the validation split the way train() does (its sample count, its
sampling seed first, then any others), three ways: the EMA generator with the BatchNorm statistics it carries
(copied from the trained G, as evaluations did before standing statistics were added), the EMA generator with
standing statistics (what train() scores), and the trained G itself (what a run without an EMA scores: the EMA
never feeds back into training). Each pair of scores shares its samples' latents and labels, so the paired
difference "trained G minus EMA" is what sampling from the EMA buys at this point of the run. Writes the scores
as JSON.

    python tools/rescore_ema.py runs/shipped/dcgan/last.pt --seeds 12345 1 2 --data-dir data \
        --feature-net ../shared/eval/cifar10_features.pt --json /tmp/rescore_dcgan_ema.json
"""
import argparse
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import gan_helpers as gh  # noqa: E402
from gankit.measures import EVAL_SEED  # noqa: E402  (the sampling seed of train()'s evaluations)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("state", help="a run's last.pt (training state with an EMA generator)")
    p.add_argument("--data-dir", default="data")
    p.add_argument("--stats-dir", help="real-statistics cache (default <data-dir>/fid_stats)")
    p.add_argument("--feature-net")
    p.add_argument("--fid-weights")
    p.add_argument("--seeds", type=int, nargs="+", default=[EVAL_SEED], help="sampling seeds (first: train()'s)")
    p.add_argument("--json", required=True)
    args = p.parse_args()
    device = gh.setup(0, "cpu")
    state = gh.load_checkpoint(args.state)
    if state["kind"] != "train_state" or not state.get("G_ema"):
        raise SystemExit(f"{args.state} is not a training state with an EMA generator; pass the last.pt of a run "
                         f"with ema_decay > 0")
    cfg = gh.Config.from_dict(state["config"])
    features = gh.load_feature_net(args.feature_net, args.fid_weights, device)
    real = gh.validation_stats(args.data_dir, features, args.stats_dir, cfg=cfg)
    copied, G = gh.build_models(cfg)[0], gh.build_models(cfg)[0]
    copied.load_state_dict(state["G_ema"])                                # EMA weights, BN statistics as saved
    G.load_state_dict(state["G"])
    generators = {"copied_bn_stats": gh.to_device(copied, device).eval(),   # train()'s memory layout: its scores
                  "standing_bn_stats": gh.generator_from_checkpoint(state, args.state, device),   # as train() has it
                  "trained_G": gh.to_device(G, device).eval()}
    scores = {name: [gh.evaluate_generator(g, real, features, cfg.eval_samples, seed=s) for s in args.seeds]
              for name, g in generators.items()}
    for name, runs in scores.items():
        print(f"{name:18s} " + "; ".join(gh.format_score(s) for s in runs))
    gain = [g["fd"] - e["fd"] for g, e in zip(scores["trained_G"], scores["standing_bn_stats"])]
    print(f"trained G minus EMA (standing statistics), FD: {', '.join(f'{d:+.4f}' for d in gain)} "
          f"(mean {statistics.mean(gain):+.4f}; seeds {args.seeds}; iteration {state['iteration']:,}, "
          f"EMA decay {cfg.ema_decay:g})")
    gh.write_json_atomic({"command": "python tools/rescore_ema.py " + " ".join(sys.argv[1:]), "state": args.state,
                          "iteration": state["iteration"], "run": cfg.name, "ema_decay": cfg.ema_decay,
                          "seeds": args.seeds, **scores, "trained_G_minus_ema_fd": gain}, args.json)


if __name__ == "__main__":
    main()
