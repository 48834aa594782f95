"""Run notebooks/final_evaluation.ipynb top to bottom and store it with its outputs (text and PNG images), so
that it opens showing the 8x8 grid and the test-set scores without being run. The second step after
`python tools/make_notebooks.py`, which writes it without outputs when its cells change.

    python tools/execute_final_notebook.py        # the shipped models, data/, the offline proxy networks
    GAN_SMOKE=1 python tools/execute_final_notebook.py --out /tmp/final.ipynb   # synthetic data (the tests)

The kernel starts in notebooks/ and inherits this environment, with GAN_FEATURE_NET set to the proxy
feature network (--feature-net; the notebook's FEATURE_NET and its ultimate cell read it), so every score
is labelled a proxy. Only outputs, execution counts and widget state are added to the cells
make_notebooks.py writes (no timings, no kernel details): the stored cells stay equal to the generated ones."""
import argparse
import os
import sys
from pathlib import Path

import nbformat
from nbclient import NotebookClient

sys.path.insert(0, str(Path(__file__).resolve().parent))
from make_notebooks import NB_DIR, without_outputs  # noqa: E402

NOTEBOOK = NB_DIR / "final_evaluation.ipynb"
FEATURE_NET = NB_DIR.parents[1] / "shared" / "eval" / "cifar10_features.pt"   # beside the repository


def execute_notebook(source: Path, out: Path, cwd: Path, timeout: int | None = None) -> nbformat.NotebookNode:
    """Run `source`'s cells (its stored outputs dropped) in a new python3 kernel started in `cwd`, `timeout`
    seconds at most per cell (None: no limit); write the notebook with its outputs to `out` and return it.
    CellExecutionError on the first failing cell, and nothing is written."""
    clean = without_outputs(nbformat.read(source, as_version=4))
    run = NotebookClient(without_outputs(clean), kernel_name="python3", timeout=timeout, record_timing=False,
                         resources={"metadata": {"path": str(cwd)}})
    run.execute()
    for cell, done in zip(clean.cells, run.nb.cells):
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = done.outputs, done.execution_count
    if "widgets" in run.nb.metadata:             # the explorer's last state, shown without a kernel
        clean.metadata["widgets"] = run.nb.metadata["widgets"]
    nbformat.validate(clean)
    nbformat.write(clean, out)
    return clean


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=NOTEBOOK, help="where to write it (default: in place)")
    parser.add_argument("--feature-net", type=Path, default=FEATURE_NET,
                        help="the offline proxy feature network (default ../shared/eval/cifar10_features.pt)")
    parser.add_argument("--timeout", type=int, default=3600, help="seconds per cell at most")
    args = parser.parse_args()
    smoke = os.environ.get("GAN_SMOKE") == "1"
    if not smoke and not args.feature_net.is_file():
        sys.exit(f"error: no feature network at {args.feature_net}: pass --feature-net PATH")
    if not smoke:
        os.environ["GAN_FEATURE_NET"] = str(args.feature_net.resolve())
    os.environ["MPLBACKEND"] = "module://matplotlib_inline.backend_inline"   # figures as image/png outputs
    nb = execute_notebook(NOTEBOOK, args.out, NOTEBOOK.parent, args.timeout)
    print(f"wrote {args.out} ({args.out.stat().st_size / 1e3:.0f} KB, {len(nb.cells)} cells)")


if __name__ == "__main__":
    main()
