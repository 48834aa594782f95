"""Study runner: description files, identical starting weights across arms, the results file (values and
mean/std over seeds), resuming a killed study without redoing finished runs, diverged runs, the command line,
the table and the plot. The Ray engine: tests/test_engines.py."""
import dataclasses
import json
import shutil
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Callable
from unittest import mock

import numpy as np
import pytest
import torch

import gan_helpers as gh
import gankit
from gankit.checkpoints import read_history

ARMS = {"none": ["g_attn=()", "d_attn=()"], "a8": ["g_attn=(8,)", "d_attn=(8,)"]}
SEEDS = [0, 1]
ITERS = 4


def write_study(folder: Path, **changes) -> Path:
    spec = {"description": "tiny test study", "preset": "sagan", "width": 8,
            "set": ["batch_size=4", "ema_decay=0", "z_dim=16"], "arms": ARMS, "seeds": SEEDS, "iters": ITERS,
            "eval_every": 2, "eval_samples": 20, **changes}
    spec = {k: v for k, v in spec.items() if v is not None}   # None removes a key
    path = folder / "tiny.json"
    path.write_text(json.dumps(spec))
    return path


@pytest.fixture(scope="module")
def data() -> tuple[gh.ImageSet, gh.ImageSet]:
    return gh.train_val_split(gh.synthetic_images(200), val_size=40)


@pytest.fixture(scope="module")
def features() -> gankit.features.FeatureNet:
    return gh.load_feature_net(gh.RandomFeatures())


@pytest.fixture(scope="module")
def finished(tmp_path_factory, data, features) -> tuple[gh.Study, Path, dict]:
    """The tiny study (2 arms x 2 seeds, 4 iterations) run straight through, and its results."""
    root = tmp_path_factory.mktemp("study")
    study = gh.load_study(write_study(root))
    gankit.studies.run_study(study, data, features, root / "runs", stats_dir=root / "stats", progress=False)
    return study, root / "runs", gankit.study_results.collect_study(study, root / "runs")


def history(runs: Path, arm: str, seed: int) -> dict:
    return read_history(runs / "tiny" / f"{arm}_s{seed}")


# ---------------------------------------------------------------------------------------------- description

def test_grid_arms_are_every_combination_in_order(tmp_path):
    study = gh.load_study(write_study(tmp_path, arms=None, grid=[{"nc1": ["n_critic=1"], "nc2": ["n_critic=2"]},
                                                                {"bce": ["loss='bce'"], "hinge": ["loss='hinge'"]}]))
    assert list(study.arms) == ["nc1-bce", "nc1-hinge", "nc2-bce", "nc2-hinge"]
    cfg = study.config("nc2-hinge", 1)
    assert (cfg.n_critic, cfg.loss, cfg.g_ch, cfg.d_ch, cfg.seed, cfg.iters, cfg.name) == (2, "hinge", 8, 8, 1, 4,
                                                                                         "tiny-nc2-hinge")
    assert study.runs()[:4] == [("nc1-bce", 0), ("nc1-hinge", 0), ("nc2-bce", 0), ("nc2-hinge", 0)]


@pytest.mark.parametrize("changes, message", [
    ({"arms": {"x": ["seed=3"]}}, "set by the study's own keys"),
    ({"arms": {"x": ["no_such_field=1"]}}, "--set expects key=value"),
    ({"arms": {"x": ["loss='mse'"]}}, "config loss='mse' is not one of"),
    ({"itres": 4}, r"unknown keys \['itres'\]"),
    ({"preset": "stylegan"}, "preset 'stylegan' is not one of"),
    ({"seeds": [1, 1]}, "seeds must be distinct"),
])
def test_bad_study_files_are_refused_before_training(tmp_path, changes, message):
    path = write_study(tmp_path, **changes)
    with pytest.raises(gh.GanError, match=message):
        gh.load_study(path)


def test_both_or_neither_of_arms_and_grid_is_refused(tmp_path):
    with pytest.raises(gh.GanError, match="exactly one of 'arms' and 'grid'"):
        gh.load_study(write_study(tmp_path, grid=[{"a": []}]))


# ---------------------------------------------------------------------------------------------- starting weights

def _equal_where_shared(a: dict, b: dict) -> set[str]:
    """Assert that tensors named alike in two state dicts are equal; return the names only `a` has."""
    for name in set(a) & set(b):
        assert torch.equal(a[name], b[name]), name
    return set(a) - set(b)


def test_arms_of_one_seed_start_from_the_same_weights():
    base = dict(g_ch=16, d_ch=16, seed=3)
    arms = [gh.Config.sagan(**base, g_attn=(), d_attn=()), gh.Config.sagan(**base, g_attn=(8, 32), d_attn=(32,)),
            gh.Config.sagan(**base, loss="hinge", drift=0.0), gh.Config.sagan(**base, num_classes=0, cond="none")]
    G0, D0 = gh.build_models(arms[0])
    for cfg in arms[1:]:
        G, D = gh.build_models(cfg)
        # every tensor of the first arm is in the others and equal there, but the class embeddings of an
        # unconditional arm (G's conditional BN gains and biases, D's projection)
        only_g = _equal_where_shared(G0.state_dict(), G.state_dict())
        only_d = _equal_where_shared(D0.state_dict(), D.state_dict())
        assert all(n.endswith((".gain.weight", ".bias.weight")) for n in only_g) and len(only_g) == 12 * (
            cfg.num_classes == 0)
        assert only_d == ({"embed.parametrizations.weight.original", "embed.parametrizations.weight.0._u",
                           "embed.parametrizations.weight.0._v"} if cfg.num_classes == 0 else set())
    # attention starts as the identity (gamma = 0), so G's first images are the same with and without it (up to
    # float rounding: the convolutions after it may see another memory layout and sum in another order)
    z, y = torch.randn(4, 128), torch.arange(4)
    G_attn = gh.build_models(arms[1])[0]
    torch.testing.assert_close(G0.eval()(z, y), G_attn.eval()(z, y))
    # another seed starts elsewhere
    G_other = gh.build_models(gh.Config.sagan(g_ch=16, d_ch=16, seed=4, g_attn=(), d_attn=()))[0]
    assert not torch.equal(G_other.linear.parametrizations.weight.original, G0.linear.parametrizations.weight.original)


def test_building_models_leaves_the_global_random_stream_alone():
    gh.setup(5)
    expected = torch.rand(3)
    for cfg in (gh.Config.sagan(g_ch=8, d_ch=8), gh.Config.sagan(g_ch=8, d_ch=8, g_attn=(8, 16, 32))):
        gh.setup(5)
        gh.build_models(cfg)
        assert torch.equal(torch.rand(3), expected)


# ---------------------------------------------------------------------------------------------- results file

def test_results_hold_every_arm_and_seed_with_values_from_the_histories(finished):
    study, runs, results = finished
    assert json.loads((runs / "tiny" / "results.json").read_text()) == results
    assert list(results["arms"]) == ["none", "a8"] and results["missing"] == [] and results["diverged"] == []
    p = results["protocol"]
    assert (p["metric"], p["n_fake"], p["n_real"], p["iters"], p["eval_every"], p["equal_iter"]) == (
        "FD (proxy: RandomFeatures features)", 20, 40, ITERS, 2, ITERS)
    for arm, a in results["arms"].items():
        assert a["seeds"] == SEEDS and a["set"] == ARMS[arm]
        assert a["images_seen"] == ITERS * 4
        for run, seed in zip(a["runs"], SEEDS):
            evals = history(runs, arm, seed)["eval"]
            assert [e["iter"] for e in evals] == [0, 2, 4]
            assert run["best"] == min(e["fd"] for e in evals) and run["final"] == evals[-1]["fd"]
            assert run["at_iter"] == evals[-1]["fd"]
            assert run["last"] == pytest.approx(np.mean([e["fd"] for e in evals[-3:]]))
            assert run["sec_per_iter"] == pytest.approx(evals[-1]["cpu_seconds"] / ITERS)   # CPU runs: CPU time
            within = [e for e in evals if e["cpu_seconds"] <= p["equal_seconds"]]
            assert run["at_time"] == within[-1]["fd"]
            logged = history(runs, arm, seed)
            real, fake = np.array(logged["d_real"]), np.array(logged["d_fake"])
            assert run["critic_level_std"] == pytest.approx(real.std(ddof=1))      # all ITERS < CRITIC_WINDOW
            assert run["critic_gap"] == pytest.approx((real - fake).mean())
        curves = np.array([[e["fd"] for e in history(runs, arm, s)["eval"]] for s in SEEDS])
        np.testing.assert_allclose(a["curve"]["mean"], curves.mean(0))
        np.testing.assert_allclose(a["curve"]["std"], curves.std(0, ddof=1))
        assert a["critic_gap"]["mean"] == pytest.approx(np.mean([r["critic_gap"] for r in a["runs"]]))


def test_critic_scale_by_hand():
    """D(x) batch means 1, 3, 5, 7 and D(G(z)) 0, 0, 4, 4 over iterations 1-4: level std of (1, 3, 5, 7) is
    sqrt(20/3), the gap is the mean of (1, 3, 1, 3) = 2; a window and an end iteration pick the logged rows."""
    h = {"iter": [1, 2, 3, 4], "d_real": [1.0, 3.0, 5.0, 7.0], "d_fake": [0.0, 0.0, 4.0, 4.0]}
    s = gankit.study_results.critic_scale(h)
    assert s["level_std"] == pytest.approx((20 / 3) ** 0.5) and s["gap"] == 2.0
    assert s["ratio"] == pytest.approx((20 / 3) ** 0.5 / 2)
    assert gankit.study_results.critic_scale(h, window=2) == {"level_std": pytest.approx(2 ** 0.5), "gap": 2.0,
                                                             "ratio": pytest.approx(2 ** 0.5 / 2)}
    assert gankit.study_results.critic_scale(h, until=2)["gap"] == 2.0       # rows 1-2: gaps 1, 3
    with pytest.raises(gh.GanError, match="at least 2 logged iterations"):
        gankit.study_results.critic_scale(h, until=1)


def test_mean_and_std_over_seeds_are_the_sample_statistics(finished):
    _, _, results = finished
    for a in results["arms"].values():
        for key in ("best", "final", "last", "at_iter", "at_time", "sec_per_iter"):
            values = [r[key] for r in a["runs"]]
            assert a[key]["values"] == values
            assert a[key]["mean"] == pytest.approx(statistics.mean(values))
            assert a[key]["std"] == pytest.approx(statistics.stdev(values))
    assert gh.mean_std([1.0, 2.0, 4.0]) == {"mean": pytest.approx(7 / 3), "std": pytest.approx(1.5275252316519468),
                                            "n": 3, "values": [1.0, 2.0, 4.0]}
    assert gh.mean_std([2.5])["std"] is None
    assert gh.mean_std([0.1, 0.1, 0.1])["std"] == 0.0   # not the residue of rounding the mean (1.7e-17)


def test_arms_of_one_seed_start_from_the_same_score(finished):
    _, runs, _ = finished
    for seed in SEEDS:
        first = [history(runs, arm, seed)["eval"][0] for arm in ARMS]
        assert first[0]["iter"] == 0 and first[0]["fd"] == pytest.approx(first[1]["fd"], rel=1e-5)
    assert history(runs, "none", 0)["eval"][0]["fd"] != history(runs, "none", 1)["eval"][0]["fd"]


def test_training_time_is_recorded_per_evaluation_and_carried_across_resume(tmp_path, data, features):
    cfg = gh.Config.sagan(g_ch=8, d_ch=8, z_dim=16, batch_size=4, iters=2, eval_every=1, eval_samples=20,
                          checkpoint_every=1, g_attn=(), d_attn=(), ema_decay=0)
    gh.train(cfg, tmp_path, *data, features, progress=False)
    h = gh.train(dataclasses.replace(cfg, iters=3), tmp_path, *data, features, progress=False, resume=True)
    for key in ("seconds", "cpu_seconds"):
        seconds = [e[key] for e in h["eval"]]
        assert seconds[0] == 0 and all(b > a for a, b in zip(seconds, seconds[1:])) and len(seconds) == 4


def test_study_time_is_cpu_time_on_the_cpu_and_wall_clock_elsewhere_or_when_not_logged():
    """A study compares CPU runs by their CPU time (other jobs on the machine do not inflate it), evaluations
    logged before CPU time was kept by their wall-clock time, and GPU runs by wall-clock time."""
    old = {"iter": [], "eval": [{"iter": 0, "seconds": 0.0}, {"iter": 2, "seconds": 9.0, "cpu_seconds": 4.0}]}
    evals = gankit.checkpoints.migrate_record("history", old)["eval"]
    assert [e["time"] for e in gankit.study_results._with_training_time(evals, "cpu (1 thread)")] == [0.0, 4.0]
    assert [e["time"] for e in gankit.study_results._with_training_time(evals, "cuda (NVIDIA H100)")] == [0.0, 9.0]


# ---------------------------------------------------------------------------------------------- resume, divergence

def test_killed_study_resumes_without_redoing_finished_runs_and_gives_the_same_numbers(
        tmp_path, data, features, finished):
    _, _, straight = finished
    study = gh.load_study(write_study(tmp_path))
    runs, real_step, calls = tmp_path / "runs", gh.train_step, []

    def step_until_killed(*args):
        calls.append(1)
        if len(calls) == 2 * ITERS + 3:      # third run (none, seed 1), iteration 3: after its checkpoint at 2
            raise KeyboardInterrupt
        return real_step(*args)

    with mock.patch.object(gankit.training, "train_step", step_until_killed), pytest.raises(KeyboardInterrupt):
        gankit.studies.run_study(study, data, features, runs, stats_dir=tmp_path / "stats", progress=False)
    assert gh.load_checkpoint(runs / "tiny" / "none_s1" / "last.pt")["iteration"] == 2
    calls.clear()
    with mock.patch.object(gankit.training, "train_step", step_until_killed):
        lines = gankit.studies.run_study(study, data, features, runs, stats_dir=tmp_path / "stats", progress=False)
    assert len(calls) == (ITERS - 2) + ITERS          # the rest of the killed run, then the last run
    assert [line.split(": ")[1] for line in lines] == ["finished earlier"] * 2 + [f"trained to iteration {ITERS}"] * 2
    resumed = gankit.study_results.collect_study(study, runs)
    for arm in ARMS:
        for key in ("best", "final", "at_iter", "best_iter"):
            assert resumed["arms"][arm][key]["values"] == straight["arms"][arm][key]["values"], (arm, key)
        assert resumed["arms"][arm]["curve"]["mean"] == straight["arms"][arm]["curve"]["mean"]


def test_a_diverged_run_is_recorded_left_out_of_the_results_and_stops_no_other_run(tmp_path, data, features,
                                                                                  finished):
    _, _, straight = finished
    study = gh.load_study(write_study(tmp_path, arms={**ARMS, "blowup": ["diverged_above=1e-9"]}))
    lines = gankit.studies.run_study(study, data, features, tmp_path / "runs", stats_dir=tmp_path / "stats",
                                     progress=False)
    assert_diverged_runs_recorded(study, tmp_path / "runs", lines, straight)


def assert_diverged_runs_recorded(study: gh.Study, runs: Path, lines: list[str], straight: dict,
                                  engine: Callable[..., list[str]] = gankit.studies.run_study) -> None:
    """What every engine must leave after training `study`, the tiny one plus an arm "blowup" that diverges at
    its first step: run.json of a diverged run holds the message, the other runs are those of the straight study,
    collect lists the diverged runs apart, a second call of the engine trains nothing, and status tells them."""
    blown = [line for line in lines if "blowup" in line]
    assert len(blown) == len(SEEDS) and all("diverged, left out of the results (training diverged at iteration 1"
                                            in line for line in blown)
    assert sum(line.endswith(f"trained to iteration {ITERS}") for line in lines) == len(ARMS) * len(SEEDS)
    for seed in SEEDS:
        record = json.loads((runs / "tiny" / f"blowup_s{seed}" / "run.json").read_text())
        assert record["diverged"].startswith("training diverged at iteration 1") and record["seed"] == seed
    results = gankit.study_results.collect_study(study, runs)
    assert results["diverged"] == ["blowup_s0", "blowup_s1"] and results["missing"] == []
    assert list(results["arms"]) == list(ARMS)
    for arm in ARMS:
        for key in ("best", "final", "at_iter"):
            assert results["arms"][arm][key]["values"] == straight["arms"][arm][key]["values"], (arm, key)
    again = engine(study, (None, None), None, runs, stats_dir=runs, progress=False)   # nothing left to train
    assert [line.split(": ", 1)[1] for line in again] == [
        "diverged earlier" if arm == "blowup" else "finished earlier" for arm, _ in study.runs()]
    for line, (arm, _) in zip(gh.study_status(study, runs), study.runs()):
        assert ("): diverged (training diverged" in line) if arm == "blowup" else line.endswith("): finished")


def test_changed_study_file_does_not_reuse_a_finished_run_without_its_state(tmp_path, finished, data, features):
    study, runs, _ = finished
    copy = tmp_path / "runs" / "tiny" / "none_s0"
    copy.mkdir(parents=True)
    for name in ("run.json", "history.json.gz"):      # what a fresh clone has: the committed files, no .pt
        (copy / name).write_bytes((runs / "tiny" / "none_s0" / name).read_bytes())
    changed = gh.load_study(write_study(tmp_path, iters=6, arms={"none": ARMS["none"]}, seeds=[0]))
    with pytest.raises(gh.GanError, match="another config and no last.pt"):
        gankit.studies.run_study(changed, data, features, tmp_path / "runs", stats_dir=tmp_path / "stats",
                                 progress=False)
    assert gankit.study_results.collect_study(study, tmp_path / "runs")["missing"] == ["a8_s0", "none_s1", "a8_s1"]


# ---------------------------------------------------------------------------------------------- command line

def test_commands_are_one_standalone_line_per_run(tmp_path, capsys):
    path = write_study(tmp_path)
    assert gh.main(["study", "commands", str(path), "--data-dir", "d", "--feature-net", "f.pt", "--threads", "1",
                    "--device", "cuda"]) == 0
    out = capsys.readouterr()
    lines = out.out.splitlines()
    assert len(lines) == len(ARMS) * len(SEEDS) and "study collect" in out.err
    parsed = [gankit.cli.build_parser().parse_args(line.split()[2:]) for line in lines]
    assert [(a.arm, a.seed) for a in parsed] == [([arm], [seed]) for seed in SEEDS for arm in ARMS]
    assert all((a.action, a.data_dir, a.feature_net, a.threads, a.device, a.runs_dir, a.quiet)
               == ("run", "d", "f.pt", 1, "cuda", "model/studies", True) for a in parsed)


def test_each_study_sub_command_has_its_handler_and_only_its_options(capsys):
    parse = gankit.cli.build_parser().parse_args
    handlers = {action: parse(["study", action, "s.json"]).func for action in ("run", "commands", "collect", "status",
                                                                                "time")}
    assert handlers == {"run": gankit.cli._cmd_study_run, "commands": gankit.cli._cmd_study_commands,
                        "collect": gankit.cli._cmd_study_collect, "status": gankit.cli._cmd_study_status,
                        "time": gankit.cli._cmd_study_time}
    assert parse(["study", "collect", "s.json", "--at", "500"]).at == 500
    with pytest.raises(SystemExit):
        parse(["study", "status", "s.json", "--engine", "ray"])      # a Ray option only `study run` takes
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "unrecognized arguments: --engine ray" in err


def test_run_stopped_before_any_run_finished_says_so_instead_of_failing_to_collect(tmp_path, capsys):
    path = write_study(tmp_path)
    stopped = [f"{tmp_path}/runs/tiny/none_s0: stopped at iteration 1 (time limit); run again to continue"]
    with mock.patch.object(gankit.cli, "run_study", return_value=stopped), \
            mock.patch.object(gankit.cli, "load_feature_net", return_value=None):
        assert gh.main(["study", "run", str(path), "--data-dir", "d", "--feature-net", "f.pt", "--time-limit", "1",
                        "--runs-dir", str(tmp_path / "runs"), "--device", "cpu"]) == 0
    assert capsys.readouterr().out.splitlines() == [
        *stopped, "no run of study tiny has finished yet: run the same command again to continue"]


def test_collect_rebuilds_results_and_prints_the_table(finished, capsys, tmp_path):
    study, runs, results = finished
    (runs / "tiny" / "results.json").unlink()
    path = write_study(tmp_path)
    assert gh.main(["study", "collect", str(path), "--runs-dir", str(runs)]) == 0
    assert json.loads((runs / "tiny" / "results.json").read_text()) == results
    out = capsys.readouterr().out
    assert "| none | 2 |" in out and "| a8 | 2 |" in out and "missing runs: none" in out
    assert "each arm against none (best score, two-sided Welch t-test over seeds, Holm's correction over 1 tests" in out
    assert f"a8 {results['tests']['a8']['diff']:+.3g} (95% CI" in out and results["baseline"] == "none"


def test_cli_study_errors_are_one_line(tmp_path):
    path = write_study(tmp_path, arms={"x": ["loss='mse'"]})
    r = subprocess.run([sys.executable, str(Path(gh.__file__)), "study", "run", str(path)], capture_output=True,
                       text=True, env={"PYTHONPATH": str(Path(gh.__file__).parent), "PATH": ""})
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "arm 'x': config loss='mse'" in r.stderr


def test_cli_study_time_writes_the_timing_file(tmp_path):
    r = subprocess.run([sys.executable, str(Path(gh.__file__)), "study", "time", str(write_study(tmp_path)),
                        "--runs-dir", str(tmp_path / "runs"), "--timed-iters", "1", "--threads", "1",
                        "--device", "cpu"],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    timing = json.loads((tmp_path / "runs" / "tiny" / "timing.json").read_text())
    assert set(timing["sec_per_iter"]) == set(ARMS) and timing["iters"] == 1
    assert "a8: " in r.stdout and "x the first arm" in r.stdout


# ---------------------------------------------------------------------------------------------- table and plot

def fake_results(bests: dict[str, list[float]]) -> dict:
    arms = {}
    for arm, values in bests.items():
        s = gh.mean_std(values)
        arms[arm] = {"seeds": list(range(len(values))), "best": s, "final": s, "last": s, "at_iter": s, "at_time": s,
                     "sec_per_iter": gh.mean_std([0.5] * len(values)), "images_seen": 64_000,
                     "curve": {"iter": [0, 500, 1000], "mean": [9.0, s["mean"] + 1, s["mean"]],
                               "std": [0.0, 0.2, s["std"]], "seconds": [0.0, 250.0, 500.0]}}
    return {"study": "fake", "arms": arms, "baseline": next(iter(arms)),
            "protocol": {"metric": "FD (proxy)", "n_fake": 2000, "n_real": 5000, "equal_iter": 1000,
                         "equal_seconds": 500.0}}


def test_table_gives_each_arms_gap_to_the_baseline_with_raw_and_holm_p_values():
    table = gh.study_table(fake_results({"a": [1.0, 1.1, 0.9], "b": [1.5, 1.6, 1.4], "c": [1.1, 1.5, 0.7]}))
    rows = {line.split(" | ")[0][2:]: line for line in table.splitlines()[2:]}
    assert rows["a"].endswith("| baseline |") and "1 ± 0.1 |" in rows["a"] and "best vs a" in table
    # b - a: t = 0.5 / sqrt(0.01/3 + 0.01/3) = 6.12 on 4 df, p 0.0036; c - a: t 0.42 on 2.25 df, p 0.71;
    # Holm over the two: 2 x 0.0036 = 0.0072, then max(0.0072, 1 x 0.71) = 0.71
    assert rows["b"].endswith("| +0.5 (p 0.0036, Holm 0.0072)* |")
    assert rows["c"].endswith("| +0.1 (p 0.71, Holm 0.71) |")
    assert "64,000" in rows["a"] and "last 3" in table.splitlines()[0]
    latex = gh.study_table(fake_results({"a_1": [1.0, 1.1]}), "latex")
    assert r"a\_1 & 2 & 1.05 $\pm$ 0.071" in latex and latex.startswith(r"\begin{tabular}{lrrrrrrrrr}")
    single = gh.study_table(fake_results({"a": [1.0], "b": [2.0]}))
    assert single.splitlines()[-1].endswith("| +1 |")     # one seed: no spread, so no test
    with pytest.raises(gh.GanError, match="choose 'markdown' or 'latex'"):
        gh.study_table(fake_results({"a": [1.0]}), "html")


def test_holm_adjusts_by_hand():
    """Holm (1979) by hand: p sorted 0.01 < 0.02 < 0.03 < 0.2 of m = 4 tests -> 4 x 0.01 = 0.04,
    3 x 0.02 = 0.06, max(0.06, 2 x 0.03) = 0.06, max(0.06, 1 x 0.2) = 0.2, in the order given; capped at 1."""
    holm = gankit.study_results.holm
    assert holm([0.03, 0.2, 0.01, 0.02]) == pytest.approx([0.06, 0.2, 0.04, 0.06])
    assert holm([0.5, 0.4]) == pytest.approx([0.8, 0.8]) and holm([0.7, 0.6]) == [1.0, 1.0]
    assert holm([0.04]) == [0.04] and holm([]) == []


@pytest.mark.parametrize("p", [[0.03, 0.2, 0.01, 0.02], [0.001, 0.04, 0.04, 0.5, 0.049], [0.3, 0.7, 0.02]])
def test_holm_agrees_with_statsmodels(p):
    multitest = pytest.importorskip("statsmodels.stats.multitest")   # a test-only reference (requirements-dev)
    reject, adjusted, _, _ = multitest.multipletests(p, alpha=0.05, method="holm")
    assert gankit.study_results.holm(p) == pytest.approx(adjusted.tolist())
    assert [q < 0.05 for q in gankit.study_results.holm(p)] == reject.tolist()


def test_each_arm_is_tested_against_the_baseline_only_holm_corrected():
    results = fake_results({"a": [1.0, 1.1, 0.9], "b": [1.5, 1.6, 1.4], "c": [1.1, 1.5, 0.7], "d": [3.0]})
    # a (the baseline): 1 ± 0.1, b: 1.5 ± 0.1, c: 1.1 ± 0.4; d has one seed, so no test; b and c never meet
    tests = gankit.study_results.study_tests(results)
    assert list(tests) == ["b", "c"]
    for arm in tests:
        raw = gh.welch(results["arms"][arm]["best"]["values"], results["arms"]["a"]["best"]["values"])
        assert {k: tests[arm][k] for k in raw} == pytest.approx(raw)
    holm = gankit.study_results.holm([t["p"] for t in tests.values()])
    assert [t["p_holm"] for t in tests.values()] == pytest.approx(holm)
    assert tests["b"]["verdict"] == "significant" and tests["c"]["verdict"] == "not significant"
    # two arms each at raw p 0.044 < 0.05, which Holm's correction makes 2 x 0.044 = 0.088: "suggestive"
    close = fake_results({"a": [1.0, 1.1, 0.9], "b": [1.15, 1.3, 1.2], "c": [1.2, 1.3, 1.15]})
    close_tests = gankit.study_results.study_tests(close)
    assert [t["p_holm"] for t in close_tests.values()] == pytest.approx([2 * close_tests["c"]["p"]] * 2)
    assert all(t["p"] < 0.05 and t["verdict"] == "suggestive" for t in close_tests.values())
    assert gh.study_table(close).splitlines()[-1].endswith(" suggestive |")
    results["baseline"] = "d"                                   # a baseline with one seed: nothing to test
    assert gankit.study_results.study_tests(results) == {}


@pytest.mark.parametrize("a, b", [([1.5, 1.6, 1.4], [1.0, 1.1, 0.9]), ([2.0, 2.9, 2.2, 2.4], [2.1, 2.3]),
                                  ([0.3, 0.1, 0.2], [0.25, 0.35, 0.15, 0.05, 0.2])])
def test_welch_agrees_with_scipy_and_its_interval_with_the_test(a, b):
    from scipy import stats
    test, ref = gh.welch(a, b), stats.ttest_ind(a, b, equal_var=False)
    assert test["t"] == pytest.approx(ref.statistic) and test["p"] == pytest.approx(ref.pvalue)
    assert test["diff"] == pytest.approx(np.mean(a) - np.mean(b))
    # the 95 % interval excludes 0 exactly when p < 0.05; at p itself, the (1 - p) interval touches 0
    assert (test["low"] > 0 or test["high"] < 0) == (test["p"] < 0.05)
    edge = gh.welch(a, b, level=1 - test["p"])
    assert min(abs(edge["low"]), abs(edge["high"])) == pytest.approx(0.0, abs=1e-9)
    assert gh.welch([1.0], b) is None
    assert gh.welch([1.0, 1.0], [1.0, 1.0])["p"] == 1.0 and gh.welch([2.0, 2.0], [1.0, 1.0])["p"] == 0.0


def test_table_shows_the_class_accuracy_where_any_arm_logged_it(finished):
    results = fake_results({"a": [1.0, 1.1], "b": [1.5, 1.6]})
    assert "class acc" not in gh.study_table(results)
    results["arms"]["a"]["class_acc"] = gh.mean_std([0.2, 0.3])
    lines = gh.study_table(results).splitlines()     # b, e.g. unconditional, has none: a dash, not a number
    assert "| class acc. |" in lines[0]
    assert "| 0.25 ± 0.071 |" in lines[2] and "| -- |" in lines[3]
    results["arms"]["b"]["class_acc"] = gh.mean_std([0.5, 0.5])
    lines = gh.study_table(results).splitlines()
    assert "| 0.25 ± 0.071 |" in lines[2] and "| 0.5 ± 0 |" in lines[3]
    study, runs, results = finished           # a real study: the class accuracy of each run's best evaluation
    for arm, a in results["arms"].items():
        accs = [min(history(runs, arm, seed)["eval"], key=lambda e: e["fd"])["class_acc"] for seed in SEEDS]
        assert [r["class_acc"] for r in a["runs"]] == accs and a["class_acc"] == gh.mean_std(accs)


def test_plot_draws_the_mean_with_a_band_of_one_std():
    import matplotlib
    matplotlib.use("Agg")
    results = fake_results({"a": [1.0, 1.2], "b": [2.0, 2.4]})
    ax = gh.plot_study(results)
    assert [line.get_label().split(" (")[0] for line in ax.get_lines()] == ["a", "b"]
    for line, (arm, a) in zip(ax.get_lines(), results["arms"].items()):
        np.testing.assert_allclose(line.get_ydata(), a["curve"]["mean"])
    for band, a in zip(ax.collections, results["arms"].values()):
        ys = band.get_paths()[0].vertices[:, 1]
        mean, std = np.array(a["curve"]["mean"]), np.array(a["curve"]["std"])
        np.testing.assert_allclose([ys.min(), ys.max()], [(mean - std).min(), (mean + std).max()])
    assert ax.get_ylabel() == "FD (proxy), 2k vs 5k"                        # one short line
    legend, frame = ax.get_legend(), ax.get_window_extent()
    ax.figure.canvas.draw()
    assert legend.get_window_extent().y1 < frame.y0                       # under the axes, off the curves
    ax_time = gh.plot_study(results, x="seconds")
    np.testing.assert_allclose(ax_time.get_lines()[0].get_xdata(), [0.0, 250.0, 500.0])


def test_status_tells_finished_in_progress_and_not_started_runs(tmp_path, data, features):
    study = gh.load_study(write_study(tmp_path, seeds=[0, 1], arms={"none": ARMS["none"]}))
    gankit.studies.run_study(study, data, features, tmp_path / "runs", only=lambda arm, seed: seed == 0,
                             stats_dir=tmp_path / "s", progress=False, time_limit=0)
    folder = gh.study_run_dir(study, "none", 0, tmp_path / "runs")
    assert gh.study_status(study, tmp_path / "runs") == [
        f"none seed 0 ({folder}): in progress: 1 of {ITERS:,} iterations",
        f"none seed 1 ({gh.study_run_dir(study, 'none', 1, tmp_path / 'runs')}): not started"]
    gankit.studies.run_study(study, data, features, tmp_path / "runs", only=lambda arm, seed: seed == 0,
                             stats_dir=tmp_path / "s", progress=False)
    assert gh.study_status(study, tmp_path / "runs")[0] == f"none seed 0 ({folder}): finished"


def test_time_limit_stops_the_study_with_a_resumable_state(tmp_path, data, features):
    study = gh.load_study(write_study(tmp_path, seeds=[0], arms={"none": ARMS["none"]}))
    folder = gh.study_run_dir(study, "none", 0, tmp_path / "runs")
    lines = gankit.studies.run_study(study, data, features, tmp_path / "runs", stats_dir=tmp_path / "stats",
                                     progress=False, time_limit=0)
    assert lines == [f"{folder}: stopped at iteration 1 (time limit); run again to continue"]
    assert json.loads((folder / "run.json").read_text())["stopped"] == 1 and gh.run_record(folder) is None
    assert gh.load_checkpoint(folder / "last.pt")["iteration"] == 1
    assert not (folder / "history.json").exists() and read_history(folder)["iter"] == [1]   # kept compressed
    lines = gankit.studies.run_study(study, data, features, tmp_path / "runs", stats_dir=tmp_path / "stats",
                                     progress=False)
    assert lines == [f"{folder}: trained to iteration {ITERS}"] and "stopped" not in gh.run_record(folder)
    assert sorted(p.name for p in folder.glob("history.json*")) == ["history.json.gz"]   # the resumed run's, whole
    assert read_history(folder)["iter"] == list(range(1, ITERS + 1))


def test_collect_at_compares_every_run_up_to_an_iteration_stopped_runs_too(tmp_path, finished, data, features):
    """Seed 1 of arm none stops at iteration 2 (twice a time limit of 0: one iteration each) after its evaluation
    there: it is missing from the full results, and counts in the results up to iteration 2, where every run's
    evaluations after 2 are left out. Without its state (last.pt) it is refused for training and said so."""
    study, runs, full = finished
    shutil.copytree(runs, tmp_path / "runs")
    folder = gh.study_run_dir(study, "none", 1, tmp_path / "runs")
    shutil.rmtree(folder)
    for _ in range(2):
        gankit.studies.run_study(study, data, features, tmp_path / "runs",
                                 only=lambda arm, seed: (arm, seed) == ("none", 1), stats_dir=tmp_path / "stats",
                                 progress=False, time_limit=0)
    assert json.loads((folder / "run.json").read_text())["stopped"] == 2
    assert gankit.study_results.collect_study(study, tmp_path / "runs")["missing"] == ["none_s1"]
    at = gankit.study_results.collect_study(study, tmp_path / "runs", at=2)
    assert at["missing"] == [] and at["protocol"]["at"] == 2 and at["protocol"]["equal_iter"] == 2
    assert (tmp_path / "runs" / "tiny" / "results_at2.json").is_file()
    for arm, a in at["arms"].items():
        for run in a["runs"]:
            evals = history(tmp_path / "runs", arm, run["seed"])["eval"][:2]   # iterations 0 and 2
            assert run["final"] == evals[-1]["fd"] and run["best"] == min(e["fd"] for e in evals)
            assert run["last"] == pytest.approx(np.mean([e["fd"] for e in evals]))
    with pytest.raises(gh.GanError, match="not an evaluation of study 'tiny'"):
        gankit.study_results.collect_study(study, tmp_path / "runs", at=3)
    (folder / "last.pt").unlink()
    assert "stopped at 2 of 4 iterations, without the state" in gh.study_status(study, tmp_path / "runs")[2]
    with pytest.raises(gh.GanError, match="stopped at its time limit without the state"):
        gankit.studies.run_study(study, data, features, tmp_path / "runs", stats_dir=tmp_path / "stats", progress=False)


# ---------------------------------------------------------------------------------------------- shared arms

def test_a_shared_arm_uses_the_other_studys_runs_and_is_not_trained_twice(tmp_path, finished, data, features):
    """An arm listed under `shared` reads (and, if missing, trains) the runs of the arm it names, in that
    study's folders; its results equal those of the owning arm."""
    study, runs, results = finished
    spec = json.loads(write_study(tmp_path).read_text())
    spec.update(arms={"base": ARMS["a8"], "hinge": [*ARMS["a8"], "loss=hinge", "drift=0"]},
                shared={"base": "tiny/a8"})
    path = tmp_path / "other.json"
    path.write_text(json.dumps(spec))
    other = gh.load_study(path)
    assert gh.study_run_dir(other, "base", 1, runs) == runs / "tiny" / "a8_s1"
    assert other.config("base", 1) == study.config("a8", 1)
    with mock.patch.object(gankit.studies, "train", wraps=gh.train) as train:
        gankit.studies.run_study(other, data, features, runs, stats_dir=runs.parent / "stats", progress=False)
    assert sorted(c.args[0].name for c in train.call_args_list) == ["other-hinge", "other-hinge"]
    shared, owner = gankit.study_results.collect_study(other, runs)["arms"]["base"], results["arms"]["a8"]
    assert shared["best"] == owner["best"] and shared["final"] == owner["final"]
    # the scores at equal iterations and equal time are read where every run of *this* study got to, so only
    # they may differ between the two studies
    relative = {"at_iter", "at_time"}
    assert [{k: v for k, v in r.items() if k not in relative} for r in shared["runs"]] == \
        [{k: v for k, v in r.items() if k not in relative} for r in owner["runs"]]


def test_a_study_whose_only_finished_runs_are_shared_collects_them_into_its_own_folder(tmp_path, finished):
    _, runs, results = finished
    spec = json.loads(write_study(tmp_path).read_text())
    spec.update(name="fresh", arms={"base": ARMS["a8"], "hinge": [*ARMS["a8"], "loss=hinge", "drift=0"]},
                shared={"base": "tiny/a8"})
    path = tmp_path / "fresh.json"
    path.write_text(json.dumps(spec))
    assert not (runs / "fresh").exists()                       # nothing of this study has run here
    collected = gankit.study_results.collect_study(gh.load_study(path), runs)
    assert list(collected["arms"]) == ["base"] and collected["missing"] == ["hinge_s0", "hinge_s1"]
    assert json.loads((runs / "fresh" / "results.json").read_text()) == collected


@pytest.mark.parametrize("shared, extra, message", [
    ({"base": "tiny/a8"}, ["lipschitz=gp"], "configs differ in {'lipschitz'"),
    ({"base": "tiny/nope"}, [], "is not an arm of"),
    ({"base": "missing/a8"}, [], "does not exist"),
    ({"nope": "tiny/a8"}, [], "needs an arm of this file"),
])
def test_sharing_runs_of_another_config_is_refused(tmp_path, shared, extra, message):
    write_study(tmp_path)
    spec = json.loads(write_study(tmp_path).read_text())
    spec.update(arms={"base": [*ARMS["a8"], *extra]}, shared=shared)
    path = tmp_path / "other.json"
    path.write_text(json.dumps(spec))
    with pytest.raises(gh.GanError, match=message):
        gh.load_study(path)


def test_every_shipped_study_file_loads_and_shares_only_identical_runs():
    """The description files in studies/ are valid, and each shared arm names an arm with the same config."""
    files = sorted((Path(__file__).resolve().parents[1] / "studies").glob("*.json"))
    assert {f.stem for f in files} >= {"attention", "loss", "stabilisers", "conditioning", "update_ratio"}
    for f in files:
        study = gh.load_study(f)
        assert len(study.seeds) >= 3 or f.stem == "budget"      # the issue: never fewer than 3 seeds
        for arm, (owner, owner_arm) in study.shared.items():
            other = gh.load_study(f.parent / f"{owner}.json")
            assert study.config(arm, 1) == other.config(owner_arm, 1)
    # the five studies share one protocol (the report states it once)
    protocols = set()
    for name in ("attention", "loss", "stabilisers", "conditioning", "update_ratio"):
        study = gh.load_study(files[0].parent / f"{name}.json")
        for arm in study.arms:
            cfg = study.config(arm, 0)
            protocols.add((cfg.g_ch, cfg.d_ch, cfg.batch_size, cfg.val_size, cfg.ema_decay, cfg.ema_start,
                           study.iters, study.eval_every, study.eval_samples, tuple(study.seeds)))
    assert len(protocols) == 1, protocols


@pytest.mark.parametrize("values, labels", [([4.1, 5.0, 7.2], ["4", "5", "6", "7"]),
                                            ([2.5, 4.0, 14.0], ["3", "4", "5", "7", "10"]),
                                            ([0.6, 3.0, 14.0], ["1", "2", "5", "10"])])
def test_log_axis_labels_the_range_that_matters_without_crowding(values, labels):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots()
    ax.plot(range(len(values)), values)
    gankit.plots.log_y(ax)
    fig.canvas.draw()
    low, high = ax.get_ylim()
    shown = [t.get_text() for t in ax.get_yticklabels() if t.get_text() and low <= float(t.get_text()) <= high]
    assert shown == labels
    plt.close(fig)


def test_a_study_can_fork_every_run_from_one_training_state(tmp_path, data, features):
    """start_from: every run starts from the state (here a finished 4-iteration run) with its arm's settings and
    its seed's random stream, and the results count iterations, images and time from the fork."""
    parent = tmp_path / "parent"
    gh.train(gh.load_study(write_study(tmp_path)).config("none", 0), parent, *data, features, progress=False)
    arms = {"same": ["g_attn=()", "d_attn=()"], "fast": ["g_attn=()", "d_attn=()", "d_lr=1e-3"]}
    study = gh.load_study(write_study(tmp_path, arms=arms, iters=8, start_from=str(parent / "last.pt")))
    gankit.studies.run_study(study, data, features, tmp_path / "runs", stats_dir=tmp_path / "stats", progress=False)
    results = gankit.study_results.collect_study(study, tmp_path / "runs")
    forked = read_history(tmp_path / "runs" / "tiny" / "fast_s1")
    assert forked["iter"] == [5, 6, 7, 8] and forked["forked_from"]["iteration"] == 4
    assert forked["segments"][0]["changed"] == {"d_lr": [4e-4, 1e-3]}
    assert results["start_from"] == str(parent / "last.pt")
    for arm in arms:
        a = results["arms"][arm]
        assert a["curve"]["iter"] == [4, 6, 8] and a["images_seen"] == 4 * 4    # 4 iterations of batch 4 since
        for run in a["runs"]:
            assert run["sec_per_iter"] == pytest.approx(run["seconds"] / 4)
    start = [results["arms"][arm]["runs"][0]["best"] for arm in arms]       # the forks' first evaluation: the
    firsts = [read_history(tmp_path / "runs" / "tiny" / f"{arm}_s0")["eval"][0]["fd"]
              for arm in arms]                                               # state's own generator, in every arm
    assert firsts[0] == pytest.approx(firsts[1]) and all(b <= f for b, f in zip(start, firsts))


def test_study_time_measures_every_arm_in_turn(tmp_path):
    study = gh.load_study(write_study(tmp_path))
    timing = gankit.study_results.time_study(study, iters=2, warmup=1, rounds=2)
    assert set(timing["sec_per_iter"]) == set(ARMS) and all(v > 0 for v in timing["sec_per_iter"].values())
    assert all(len(v) == 2 for v in timing["rounds_sec_per_iter"].values())
    assert timing["clock"] == "CPU time of the timing process" and timing["device"].startswith("cpu")


def test_collect_puts_every_run_on_the_timed_clock(tmp_path, finished):
    """With timing.json (study time), an evaluation's training time is its iterations x its arm's timed seconds per
    iteration, whatever the run logged; the equal-time scores and seconds per iteration follow from it."""
    study, runs, _ = finished
    folder = tmp_path / "runs"
    shutil.copytree(runs, folder)
    spi = {"none": 0.5, "a8": 2.0}
    configs = {arm: dataclasses.asdict(study.config(arm, 0)) for arm in ARMS}
    timing = {"sec_per_iter": spi, "clock": "CPU time of the timing process", "device": "cpu (1 thread)",
              "torch": "x", "date": "2026-11-25T00:00:00+00:00", "configs": configs}
    (folder / "tiny" / "timing.json").write_text(json.dumps(timing))
    results = gankit.study_results.collect_study(study, folder)
    assert results["protocol"]["equal_seconds"] == ITERS * 0.5           # the faster arm's runs end first
    assert "all timed in one process" in results["protocol"]["seconds"]
    for arm, s in spi.items():
        a = results["arms"][arm]
        assert a["sec_per_iter"]["values"] == [s, s] and a["curve"]["seconds"] == [i * s for i in a["curve"]["iter"]]
    at_time = {seed: [e["fd"] for e in history(folder, "a8", seed)["eval"] if e["iter"] * 2.0 <= ITERS * 0.5][-1]
               for seed in SEEDS}
    assert results["arms"]["a8"]["at_time"]["values"] == [at_time[s] for s in SEEDS]
    for stale in ({**timing, "sec_per_iter": {"none": 1.0}},                          # another set of arms
                  {**timing, "configs": {**configs, "a8": {**configs["a8"], "g_lr": 1e-3}}}):   # another config
        (folder / "tiny" / "timing.json").write_text(json.dumps(stale))
        with pytest.raises(gh.GanError, match="time the study again"):
            gankit.study_results.collect_study(study, folder)


def test_a_study_reads_its_data_as_training_does_a_class_subset_of_a_folder(tmp_path, features):
    """The study's dataset, classes and val_size choose the images (load_dataset), not CIFAR-10's defaults: a
    study over two of three classes of an image folder trains on those two, conditioned on 2 classes, and
    run.json records the split."""
    images = gh.synthetic_images(60, num_classes=3)
    for c, name in enumerate(("bird", "cat", "dog")):
        gh.save_pngs(gh.to_float(images.x[images.y == c]), tmp_path / "folder" / name, [f"{i:02d}" for i in range(20)])
    path = write_study(tmp_path, arms={"only": []}, seeds=[0], iters=2,
                       set=["batch_size=4", "ema_decay=0", "z_dim=16", "dataset=folder", "classes=cat,dog",
                            "val_size=4"])
    study = gh.load_study(path)
    assert study.config("only", 0).num_classes == 2
    with mock.patch.object(gankit.studies, "train", wraps=gh.train) as train:
        lines = gankit.studies.run_study(study, tmp_path / "folder", features, tmp_path / "runs", progress=False)
    assert lines == [f"{tmp_path / 'runs' / 'tiny' / 'only_s0'}: trained to iteration 2"]
    train_data, val_data = train.call_args.args[2:4]
    assert train_data.classes == val_data.classes == ("cat", "dog")
    assert (len(train_data), len(val_data)) == (32, 4)          # 40 images: 4 validation, 4 held out for testing
    assert set(train_data.y.tolist()) == {0, 1}
    record = json.loads((tmp_path / "runs" / "tiny" / "only_s0" / "run.json").read_text())
    assert record["split"]["dataset"] == "folder" and record["split"]["classes"] == ["cat", "dog"]
    assert record["split"]["class_names"] == ["cat", "dog"] and record["split"]["val_size"] == 4
