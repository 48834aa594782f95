"""Score a training state's generators on the validation split the way train() does (same samples, same
seed), three ways: the EMA generator with the BatchNorm statistics it carries (copied from the trained G,
as evaluations did before standing statistics were added), the EMA generator with standing statistics
(what train() does now), and the trained G itself. Writes the three scores as JSON.

    python tools/rescore_ema.py runs/sagan_cpu_iter4000.pt --data-dir data \
        --feature-net ../shared/eval/cifar10_features.pt --json model/rescore_sagan_4000.json
"""
import argparse
import copy
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import gan_helpers as gh  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("state", help="a run's last.pt (training state with an EMA generator)")
    p.add_argument("--data-dir", default="data")
    p.add_argument("--stats-dir", help="real-statistics cache (default <data-dir>/fid_stats)")
    p.add_argument("--feature-net")
    p.add_argument("--fid-weights")
    p.add_argument("--json", required=True)
    args = p.parse_args()
    device = gh.setup(0, "cpu")
    state = gh.load_checkpoint(args.state)
    if state["kind"] != "train_state" or not state.get("G_ema"):
        raise SystemExit(f"{args.state} is not a training state with an EMA generator")
    cfg = gh.Config.from_dict(state["config"])
    features = gh.load_feature_net(args.feature_net, args.fid_weights, device)
    real = gh.validation_stats(args.data_dir, features, args.stats_dir)
    G_ema = gh.generator_from_checkpoint(state)                    # EMA weights, BN statistics as saved
    G = gh.build_models(cfg)[0]
    G.load_state_dict(state["G"])
    scores = {"copied_bn_stats": gh.evaluate_generator(G_ema, real, features, cfg.eval_samples),
              "standing_bn_stats": gh.evaluate_generator(gh.standing_batch_norm(copy.deepcopy(G_ema)), real,
                                                         features, cfg.eval_samples),
              "trained_G": gh.evaluate_generator(G.eval(), real, features, cfg.eval_samples)}
    for name, s in scores.items():
        print(f"{name:18s} {gh.format_score(s)}")
    gh.write_json_atomic({"state": args.state, "iteration": state["iteration"], "run": cfg.name, **scores}, args.json)


if __name__ == "__main__":
    main()
