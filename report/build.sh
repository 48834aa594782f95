#!/usr/bin/env bash
# Rebuild "report/Deep Learning Report 4.pdf" from the logs and checkpoints in model/.
# Needs Debian's TeX Live: apt-get install latexmk texlive-latex-recommended texlive-latex-extra
#   texlive-fonts-recommended lmodern
# usage (from anywhere): report/build.sh [--tables-only]   (PYTHON=... to pick the interpreter)
set -euo pipefail
cd "$(dirname "$0")"
"${PYTHON:-python}" make_report_assets.py "$@"
latexmk -pdf -interaction=nonstopmode -halt-on-error -quiet report.tex
cp report.pdf "Deep Learning Report 4.pdf"
echo "built $(pwd)/Deep Learning Report 4.pdf"
