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
import base64
import io
import os
import sys
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from make_notebooks import NB_DIR, without_outputs  # noqa: E402

NOTEBOOK = NB_DIR / "final_evaluation.ipynb"
ROOT = NB_DIR.parent
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
    compact_outputs(clean, ROOT)
    nbformat.validate(clean)
    nbformat.write(clean, out)
    return clean


def compact_outputs(nb: nbformat.NotebookNode, root: Path, side: int = 640, quality: int = 60) -> None:
    """In place: every PNG output re-encoded as a JPEG at most `side` pixels wide and high (a 32x32 sample still
    shows at twice its size in an 8x8 grid; the stored notebook shrinks several times, which the tree and the GPU
    call's carry need), and this machine's repository path left out of text outputs (paths read relative to the
    repository, the repository itself as ".")."""
    prefix = f"{root.resolve()}/"
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            if "image/png" in data:
                image = Image.open(io.BytesIO(base64.b64decode(data.pop("image/png")))).convert("RGB")
                image.thumbnail((side, side), Image.Resampling.LANCZOS)   # keeps the aspect ratio
                output.get("metadata", {}).pop("image/png", None)
                buffer = io.BytesIO()
                image.save(buffer, format="JPEG", quality=quality)
                data["image/jpeg"] = base64.b64encode(buffer.getvalue()).decode("ascii")
            for key in ("text/plain", "text/html"):
                if key in data:
                    data[key] = _without(data[key], prefix)
            if "text" in output:
                output["text"] = _without(output["text"], prefix)


def _without(text: str | list[str], prefix: str) -> str | list[str]:
    drop = lambda t: t.replace(prefix, "").replace(prefix[:-1], ".")   # noqa: E731
    return [drop(t) for t in text] if isinstance(text, list) else drop(text)


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
