#!/usr/bin/env bash
# Attention-placement study for the report: the SAGAN preset at CPU width (g_ch = d_ch = 32, batch 64),
# self-attention at one resolution in both G and D (or none), the same iteration budget for every run.
# Each run's history and config go to model/ablation/attn<placement>_seed<seed>.json, which
# report/make_report_assets.py turns into the table. Runs resume if interrupted.
#
# usage (from the repository root, data/ and ../shared/eval as in model/commands.sh):
#   tools/attention_ablation.sh ["none 8 16 32"] ["0 1 2"]
# environment: ITERS (default 500), EVAL_SAMPLES (2000), FEATURES (../shared/eval/cifar10_features.pt),
#              PYTHON (python)
set -euo pipefail
placements=${1:-none 8 16 32}
seeds=${2:-0 1 2}
iters=${ITERS:-500}
features=${FEATURES:-../shared/eval/cifar10_features.pt}
python=${PYTHON:-python}
mkdir -p model/ablation
for p in $placements; do
  if [ "$p" = none ]; then attn="()"; else attn="($p,)"; fi
  for s in $seeds; do
    out=runs/ablation/attn${p}_seed$s
    "$python" gan_helpers.py train sagan --iters "$iters" --eval-every $((iters / 2)) \
      --eval-samples "${EVAL_SAMPLES:-2000}" --data-dir data --feature-net "$features" --out "$out" \
      --device cpu --resume \
      --set "name=attn$p" g_ch=32 d_ch=32 "g_attn=$attn" "d_attn=$attn" "seed=$s" ema_decay=0
    # the history plus the run's config (from its best checkpoint), so the report can name the settings
    "$python" -c "import json, sys, gan_helpers as gh
h = json.load(open(sys.argv[1] + '/history.json'))
h['config'] = gh.load_checkpoint(sys.argv[1] + '/best.pt')['config']
gh.write_json_atomic(h, sys.argv[2])" "$out" "model/ablation/attn${p}_seed$s.json"
  done
done
