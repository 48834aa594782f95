#!/usr/bin/env bash
# Stage the state a new machine needs to continue the studies: the last.pt of every unfinished run
# (no run.json yet) is added past .gitignore; the last.pt of finished runs is taken out of git again.
# Run it after stopping the study processes, then commit. Usage: tools/keep_study_state.sh [runs dir]
set -euo pipefail
cd "$(dirname "$0")/.."
runs="${1:-model/studies}"
for last in "$runs"/*/*/last.pt; do
    [ -e "$last" ] || continue
    run="$(dirname "$last")"
    if [ -e "$run/run.json" ]; then
        git rm -q --cached -f --ignore-unmatch "$last"   # -f: also when a stretch staged it earlier
    else
        git add -f "$last" "$run/history.json"
        echo "keeping $last ($(du -h "$last" | cut -f1))"
    fi
done
git add "$runs"
