# How the shipped generators were trained (CPU, 2 cores, no GPU; from the repository root).
# Data: ../shared/data/cifar10-jpeg.tar.gz extracted into data/ (CIFAR-10 re-encoded as JPEG, quality 75).
# Checkpoint selection: "FD (proxy: cifar10_features features)" from ../shared/eval/cifar10_features.pt,
# a small CIFAR-10 classifier's 192-d features -- a proxy, NOT FID (no Inception weights offline).
mkdir -p data && tar xzf ../shared/data/cifar10-jpeg.tar.gz -C data

# DCGAN preset, 10,000 iterations (batch 128), code of commit 6560b17; 1 h 02 min with 1 thread. The preset then
# had ema_decay=0.999 (today's is 0, hence the --set).
OMP_NUM_THREADS=1 python gan_helpers.py train dcgan --iters 10000 --eval-every 1000 --eval-samples 5000 \
    --data-dir data --feature-net ../shared/eval/cifar10_features.pt --out runs/dcgan_cpu --device cpu --resume --set ema_decay=0.999

# SAGAN preset narrowed for the CPU (g_ch=64, d_ch=64; batch 64), EMA 0.999 from iteration 500.
# Iterations 1-2000 ran with OMP_NUM_THREADS=1 and commit 6560b17's train_step (a fresh G forward for
# the G update); the run was stopped at its iteration-2000 checkpoint and resumed with this same command
# on 2 threads and the later train_step (G update reuses the last critic step's batch) up to 4000.
python gan_helpers.py train sagan --iters 4000 --eval-every 500 --eval-samples 5000 \
    --data-dir data --feature-net ../shared/eval/cifar10_features.pt --out runs/sagan_cpu --device cpu --resume \
    --set g_ch=64 d_ch=64 ema_decay=0.999 ema_start=500 drift=0.001
# Session 2: the same run resumed from its iteration-4000 state (one thread, fused self-attention of
# commit 81fd912, standing BatchNorm statistics for the EMA generator; checkpoints every 500 iterations).
OMP_NUM_THREADS=1 python gan_helpers.py train sagan --iters 10000 --eval-every 500 --eval-samples 5000 \
    --data-dir data --feature-net ../shared/eval/cifar10_features.pt --out runs/sagan_cpu --device cpu --resume \
    --set g_ch=64 d_ch=64 ema_decay=0.999 ema_start=500 drift=0.001 checkpoint_every=500

# Session 2 found that evaluations of an EMA generator used BatchNorm statistics copied from the trained G
# (they belong to other weights); since commit "EMA generator: recompute its BatchNorm statistics", train()
# recomputes them (gan_helpers.standing_batch_norm) before every evaluation and save. The states at the
# switch were kept (cp runs/sagan_cpu/last.pt runs/sagan_cpu_iter4000.pt; likewise dcgan at 10000) and
# re-scored both ways (the "copied" scores reproduce the logged ones exactly):
python tools/rescore_ema.py runs/sagan_cpu_iter4000.pt --data-dir data --feature-net ../shared/eval/cifar10_features.pt --json model/rescore_sagan_4000.json
python tools/rescore_ema.py runs/dcgan_cpu_iter10000.pt --data-dir data --feature-net ../shared/eval/cifar10_features.pt --json model/rescore_dcgan_10000.json
# The DCGAN run continued from 10,000 to 11,000 iterations with standing statistics:
OMP_NUM_THREADS=1 python gan_helpers.py train dcgan --iters 11000 --eval-every 500 --eval-samples 5000 \
    --data-dir data --feature-net ../shared/eval/cifar10_features.pt --out runs/dcgan_cpu --device cpu --resume --set ema_decay=0.999
# (That first DCGAN sampled through an EMA, as the preset then had ema_decay=0.999; it is kept as
# model/dcgan_ema_*: its trained G beat its EMA in the re-scoring, 1.605 vs 1.700.)

# Session 3: the shipped DCGAN, trained again without EMA (seed and all other settings unchanged; the preset
# now has ema_decay=0). Iterations 1-10,000 ran with commit 0b0a81e's code, the rest with the channels_last
# models of commit d6f5416 and later.
OMP_NUM_THREADS=1 python gan_helpers.py train dcgan --iters 10000 --eval-every 1000 --eval-samples 5000 \
    --data-dir data --feature-net ../shared/eval/cifar10_features.pt --out runs/dcgan_noema --device cpu --resume --set ema_decay=0.0
OMP_NUM_THREADS=1 python gan_helpers.py train dcgan --iters 11000 --eval-every 500 --eval-samples 5000 \
    --data-dir data --feature-net ../shared/eval/cifar10_features.pt --out runs/dcgan_noema --device cpu --resume --set ema_decay=0.0
OMP_NUM_THREADS=1 python gan_helpers.py train dcgan --iters 15000 --eval-every 500 --eval-samples 5000 \
    --data-dir data --feature-net ../shared/eval/cifar10_features.pt --out runs/dcgan_noema --device cpu --resume

# The previous report's recipes, re-run as they were (presets ref_dcgan, ref_sagan; see gan_helpers.Config).
OMP_NUM_THREADS=1 python gan_helpers.py train ref_dcgan --iters 10000 --eval-every 1000 --eval-samples 5000 \
    --data-dir data --feature-net ../shared/eval/cifar10_features.pt --out runs/ref_dcgan_cpu --device cpu
# resumed to 11,000 (session 2), then to the shipped DCGAN's 15,000 alongside it (session 3, same code):
OMP_NUM_THREADS=1 python gan_helpers.py train ref_dcgan --iters 11000 --eval-every 500 --eval-samples 5000 \
    --data-dir data --feature-net ../shared/eval/cifar10_features.pt --out runs/ref_dcgan_cpu --device cpu --resume
OMP_NUM_THREADS=1 python gan_helpers.py train ref_dcgan --iters 15000 --eval-every 500 --eval-samples 5000 \
    --data-dir data --feature-net ../shared/eval/cifar10_features.pt --out runs/ref_dcgan_cpu --device cpu --resume
OMP_NUM_THREADS=1 python gan_helpers.py train ref_sagan --iters 4000 --eval-every 1000 --eval-samples 5000 \
    --data-dir data --feature-net ../shared/eval/cifar10_features.pt --out runs/ref_sagan_cpu --device cpu

# (Sessions 2-3 ran a first attention-placement comparison, 500 iterations at width 32, with
# tools/attention_ablation.sh; session 6 removed it and its histories: the attention study below replaces it.)

# Publish the best generators and write one PNG per class.
python gan_helpers.py publish runs/dcgan_noema dcgan && python gan_helpers.py sample model/dcgan_best.pt --per-class --out DCGAN
python gan_helpers.py publish runs/dcgan_cpu dcgan_ema
python gan_helpers.py publish runs/sagan_cpu sagan && python gan_helpers.py sample model/sagan_best.pt --per-class --out SAGAN
python gan_helpers.py publish runs/ref_dcgan_cpu ref_dcgan && python gan_helpers.py publish runs/ref_sagan_cpu ref_sagan

# Validation curves and the comparison tables in the README.
python -c "
import json, matplotlib; matplotlib.use('Agg'); import gan_helpers as gh
h = {n.upper(): json.load(open(f'model/{n}_history.json')) for n in ('dcgan', 'sagan', 'ref_dcgan', 'ref_sagan', 'dcgan_ema')}
gh.plot_metric(h).figure.savefig('model/validation_curves.png', dpi=110, bbox_inches='tight')
print(gh.comparison_table(h)); print(); print(gh.comparison_table(h, upto=4000))"

# Test-set scores (10,000 generated vs the 10,000 JPEG test images), proxy features; the report reads the JSON.
for m in dcgan sagan ref_dcgan ref_sagan dcgan_ema; do
  python gan_helpers.py evaluate model/${m}_best.pt --data-dir data --feature-net ../shared/eval/cifar10_features.pt \
      --grid /tmp/${m}.grid.png --json model/${m}_test.json
done

# How much the validation metric moves with the samples alone (5 sample seeds, the shipped DCGAN).
python tools/eval_noise.py model/dcgan_best.pt --data-dir data --feature-net ../shared/eval/cifar10_features.pt --json model/eval_noise_dcgan.json

# The report: every figure and table regenerated from model/, then the PDF (needs TeX Live, see report/build.sh).
report/build.sh

# Speed benchmark (ours vs a torchvision/DataLoader reference loop; attention kernels; cached evaluation; bf16
# autocast and torch.compile as ratios). Session 5, one thread, output in model/benchmarks/train_speed_cpu_1thread.txt:
OMP_NUM_THREADS=1 python tests/benchmarks/train_speed.py --data-dir data --feature-net ../shared/eval/cifar10_features.pt --iters 30 --option-iters 5

# Studies (issue 13): one description per study in studies/*.json (arms x seeds, budget, evaluation protocol);
# each run trains in model/studies/<study>/<arm>_s<seed>/ (history.json and run.json committed, *.pt not),
# resumes exactly where it stopped, and finished runs are skipped; results.json per study (mean ± std over
# seeds). Cost per study and the timings behind it: model/studies/README.md. Timings (CPU s/iteration):
OMP_NUM_THREADS=1 python tools/study_timing.py --data-dir data --feature-net ../shared/eval/cifar10_features.pt --iters 8 --warmup 2
# Session 5: the budget pilot (the width-16 baseline for 6,000 iterations, one seed: where does it flatten?)
OMP_NUM_THREADS=1 python gan_helpers.py study run studies/budget.json --data-dir data \
    --feature-net ../shared/eval/cifar10_features.pt --threads 1 --quiet
# The five studies, in this order, one thread, stopped by --time-limit at the end of a session and continued by
# the same command in the next (arms shared between studies train once, in the owning study's folders).
# Before a session ends: stop them, then tools/keep_study_state.sh and commit (unfinished runs' last.pt).
# On this 2-core CPU: two worker processes of one thread each share the runs of a study (run locks).
for s in attention loss stabilisers conditioning update_ratio; do
  python gan_helpers.py study run studies/$s.json --data-dir data --feature-net ../shared/eval/cifar10_features.pt \
      --device cpu --jobs 2 --threads 1 --quiet
done
# On GPUs or several machines: one standalone command per run, e.g. 8 at a time on one GPU (each process writes
# only its own run folder), then the results file from the run folders (copied back from wherever they ran):
python gan_helpers.py study commands studies/attention.json --data-dir data \
    --feature-net ../shared/eval/cifar10_features.pt --device cuda --threads 1 | xargs -P 8 -I{} sh -c '{}'
python gan_helpers.py study collect studies/attention.json

# Session 5, issue 14: recipe studies for the shipped models (3 seeds each, resumable the same way)
for s in sagan_recipe dcgan_recipe; do
  OMP_NUM_THREADS=1 python gan_helpers.py study run studies/$s.json --data-dir data \
      --feature-net ../shared/eval/cifar10_features.pt --threads 1 --quiet
done

# Session 4: the measures of the shipped generators (issue 12): test-set FD (proxy), KID, IS (proxy), class
# accuracy of the samples next to the classifier's on real test images, diversity and the nearest-neighbour
# ratio, on 5,000 samples (numbers in session 4's closing note).
for m in dcgan sagan; do
  OMP_NUM_THREADS=1 python gan_helpers.py evaluate model/${m}_best.pt --data-dir data --n 5000 --device cpu \
      --feature-net ../shared/eval/cifar10_features.pt --classifier ../shared/eval/cifar10_classifier.pt
done

# Session 6. The studies loop, first the runs that bear on the shipped SAGAN's conditioning (projection-ac,
# and the baseline's other seeds), then the five studies in order (same resumable commands as above):
OMP_NUM_THREADS=1 python gan_helpers.py study run studies/conditioning.json --arm projection-ac --data-dir data \
    --feature-net ../shared/eval/cifar10_features.pt --threads 1 --quiet --time-limit 120
OMP_NUM_THREADS=1 python gan_helpers.py study run studies/attention.json --arm attn8 --data-dir data \
    --feature-net ../shared/eval/cifar10_features.pt --threads 1 --quiet --time-limit 120
# Issue 14: the shipped SAGAN, second version (DCGAN backbone at width 64 after studies/sagan_recipe.json's
# seed 0: level per iteration with the ResNet at width 32, 1.3x faster per second; attention at 16x16 in G and
# D, spectral norm on G and D, Wasserstein loss + drift, TTUR, projection with ACGAN's class head, EMA).
# Long: it runs in stretches on one core and continues with --resume on any machine from the committed
# model/runs/sagan/last.pt; evaluation protocol as the first shipped SAGAN (5,000 vs 5,000). Its exact command,
# and the studies loop beside it on the other core, are in tools/continue_runs.sh (session 6 ran the same commands by hand); from session 7 on, each
# session runs
tools/continue_runs.sh 130
# Session 7 found why its evaluations barely moved after iteration 1,000 (proxy class accuracy 0.17 throughout):
# the command left the preset's EMA decay, 0.9999, meant for 100,000-iteration GPU runs; at iteration 4,782
# the EMA generator still held 0.9999^3,782 = 69 % of G's weights of iteration 1,000. The state at 4,782 (the
# commit 99de3d7 holds it) re-scored on the validation split (model/rescore_sagan_4782.json: FD (proxy) of G
# 2.163 vs the EMA's 3.119, proxy class accuracy 0.305 vs 0.179):
git show 99de3d7:model/runs/sagan/last.pt > runs/sagan_iter4782.pt
python tools/rescore_ema.py runs/sagan_iter4782.pt --data-dir data --feature-net ../shared/eval/cifar10_features.pt --json model/rescore_sagan_4782.json
# From 4,782 on the run continues with ema_decay=0.999 (the
# first shipped SAGAN's; G and D train exactly as before: ema_decay is a resumable field, logged in the
# history's segments). tools/continue_runs.sh carries the setting.
# and at the end: tools/keep_study_state.sh; git add model/runs; git commit.
# Issue 14: the shipped DCGAN, second version: the DCGAN preset with ACGAN's class head on D as well
# (cond=projection-ac; studies/dcgan_recipe.json: proxy class accuracy of the samples about 0.36 vs 0.20 at
# 1,500 iterations on seeds 0 and 1), evaluated as the first shipped DCGAN (5,000 vs 5,000). From session 8 on
# tools/continue_runs.sh runs it (model/runs/dcgan, resumed from its committed last.pt) beside the SAGAN.
# Session 7 pilot (one seed, not committed): the long run's recipe without BatchNorm in D (d_batchnorm=False, as in
# SNGAN's critic), same seed, to its first evaluation: FD (proxy) 4.627 and class accuracy (proxy) 0.173 at 1,000
# against the long run's 3.984 and 0.168 (both scores of G itself: the EMA starts at 1,000). Not adopted.
OMP_NUM_THREADS=1 python gan_helpers.py train sagan --out runs/sagan_nobn --device cpu --resume \
    --set arch=dcgan g_ch=64 d_ch=64 "g_attn=(16,)" "d_attn=(16,)" cond=projection-ac d_batchnorm=False checkpoint_every=500 \
    --iters 1000 --eval-every 1000 --eval-samples 5000 --data-dir data --feature-net ../shared/eval/cifar10_features.pt
# Session 8. dcgan_recipe finished (3 seeds): the DCGAN preset now conditions by projection-ac, so the DCGAN's long
# run resumes with the preset alone. Both long runs ran beside four study workers (the studies loop, 2 cores):
STUDY_WORKERS=2 tools/continue_runs.sh 125
# The DCGAN's long run was stopped at 8,000 (validation FD (proxy) 1.737, 1.677, 1.718, 1.687, 1.770 at 4,000-8,000)
# and the SAGAN's at 11,000 (1.658, 1.633, 1.635 at 9,000-11,000), their cores going to two more study workers
# (the loop of tools/continue_runs.sh, started by hand with the same deadline). The SAGAN's state at 11,000 is kept
# as model/runs/sagan/fork_11000.pt, from which studies/sagan_long.json forks every run (train --fork-from):
# continue as it is, half the learning rates, or bCR (cr_weight=10), 3 seeds, 1,000 iterations:
OMP_NUM_THREADS=1 python gan_helpers.py study run studies/sagan_long.json --data-dir data \
    --feature-net ../shared/eval/cifar10_features.pt --threads 1 --quiet --time-limit 120
# Session 9 (new machine, 2 cores): the studies loop alone, two workers (conditioning and update_ratio finished,
# then sagan_long), no long run:
STUDY_WORKERS=2 LONG_RUNS= tools/continue_runs.sh 140
# and the test-set scores of every kept checkpoint again, with every measure evaluate now records (IS, class
# accuracy, near-duplicate pairs, nearest-neighbour ratio): the loop "Test-set scores" above, same checkpoints.
# Then the collected results, and the report (report/build.sh):
for s in attention loss stabilisers conditioning update_ratio sagan_long; do
  python gan_helpers.py study collect studies/$s.json
done
# Session 10 (new machine, 2 cores): sagan_long's seeds 1 and 2, two workers side by side (one thread each), no
# long run; then the collected results and the report:
OMP_NUM_THREADS=1 python gan_helpers.py study run studies/sagan_long.json --data-dir data \
    --feature-net ../shared/eval/cifar10_features.pt --threads 1 --time-limit 140   # twice, in parallel
python gan_helpers.py study collect studies/sagan_long.json
report/build.sh
