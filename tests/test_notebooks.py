"""The notebooks, run as a user runs them: top to bottom in smoke mode (GAN_SMOKE=1: tiny networks, synthetic
images, temporary run folders; final_evaluation.ipynb through tools/execute_final_notebook.py, which stores its
outputs), and the ultimate cell of final_evaluation.ipynb alone in a fresh kernel, as a grader runs it, with a
proxy feature network and with nothing to be had offline. tools/execute_final_notebook.py may store
final_evaluation.ipynb with its outputs; the other notebooks are stored without outputs.

Each notebook runs in a copy of the repository layout under tmp_path (gan_helpers.py and notebooks/), so a
notebook that wrongly published its model could not overwrite a real one; the tests check both the copy and
the real model/, DCGAN/ and SAGAN/ folders. Kernels inherit the test's environment: inline figures (so
image/png outputs exist), one thread per kernel (the machines are small and shared) and an HTTP proxy that
refuses every connection, so downloads fail at once as they do offline."""
import hashlib
import importlib.util
import re
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
import torch
from nbclient import NotebookClient

import gan_helpers as gh
from helpers import copy_kit

pytestmark = [pytest.mark.notebook, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ("DCGAN_train.ipynb", "SAGAN_train.ipynb", "final_evaluation.ipynb", "more_gans.ipynb")
DELIVERABLES = ("model", "DCGAN", "SAGAN")
GAN_VARIABLES = ("GAN_SMOKE", "GAN_FINAL_CKPT", "GAN_DATA_DIR", "GAN_FEATURE_NET", "GAN_FID_WEIGHTS",
                 "GAN_FINAL_N")
DEFINITION = re.compile(r"^\s*(async\s+)?(def|class)\s", re.MULTILINE)


def tool(name: str):
    """The module tools/<name>.py."""
    spec = importlib.util.spec_from_file_location(name, ROOT / "tools" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


make_notebooks, execute_final_notebook = tool("make_notebooks"), tool("execute_final_notebook")


def read_notebook(name: str) -> nbformat.NotebookNode:
    """The stored notebook `name` as tools/make_notebooks.py writes it (final_evaluation.ipynb's outputs dropped)."""
    return make_notebooks.without_outputs(nbformat.read(ROOT / "notebooks" / name, as_version=4))


def deliverables(root: Path) -> dict[str, str]:
    """{path relative to root: sha256} of the published files: those directly in root's model/ (what `publish`
    writes), DCGAN/ and SAGAN/ (model/'s subfolders hold studies and runs that may be training meanwhile)."""
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for folder in DELIVERABLES for p in sorted((root / folder).glob("*")) if p.is_file()}


def repo_copy(tmp_path: Path) -> Path:
    """gan_helpers.py, gankit/ and an empty notebooks/ under tmp_path/repo; returns the notebooks/ folder."""
    notebooks = tmp_path / "repo" / "notebooks"
    notebooks.mkdir(parents=True)
    copy_kit(notebooks.parent)
    return notebooks


def execute(nb: nbformat.NotebookNode, cwd: Path) -> nbformat.NotebookNode:
    """Run every cell in a new python3 kernel started in `cwd`; CellExecutionError on the first failure."""
    NotebookClient(nb, kernel_name="python3", timeout=300, resources={"metadata": {"path": str(cwd)}}).execute()
    return nb


def outputs(nb: nbformat.NotebookNode) -> tuple[str, int]:
    """All printed text of the executed notebook, and the number of images (PNG, or JPEG as the stored final notebook
    keeps them) it displayed."""
    text, images = [], 0
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            text.append(out.get("text", "") + out.get("data", {}).get("text/markdown", ""))
            images += any(kind in out.get("data", {}) for kind in ("image/png", "image/jpeg"))
    return "".join(text), images


def final_cell() -> nbformat.NotebookNode:
    """A one-cell notebook holding only the last cell of final_evaluation.ipynb."""
    nb = read_notebook("final_evaluation.ipynb")
    assert nb.cells[-1].cell_type == "code"
    return nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(nb.cells[-1].source)], metadata=nb.metadata)


@pytest.fixture
def kernel_env(monkeypatch, tmp_path):
    """The environment every kernel of a test inherits; temporary files go under tmp_path/tmp."""
    for name in GAN_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    for name in ("no_proxy", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
    for name in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY"):
        monkeypatch.setenv(name, "http://127.0.0.1:9")       # nothing listens on port 9: refused at once
    # ipykernel keeps an MPLBACKEND it inherits; Agg would leave no image/png output, inline draws none on screen
    monkeypatch.setenv("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    monkeypatch.setenv("OMP_NUM_THREADS", "1")                  # 2 threads on 2 busy cores is ~7x slower here
    (tmp_path / "tmp").mkdir()
    monkeypatch.setenv("TMPDIR", str(tmp_path / "tmp"))
    return monkeypatch


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory) -> Path:
    """best.pt of a 2-iteration SAGAN on synthetic images, scored with a random feature network."""
    out = tmp_path_factory.mktemp("tiny_run")
    cfg = gh.Config.sagan(g_ch=16, d_ch=16, batch_size=8, iters=2, eval_every=2, eval_samples=50, val_size=50)
    train_data, val_data = gh.train_val_split(gh.synthetic_images(300), 50)
    gh.train(cfg, out, train_data, val_data, gh.load_feature_net(gh.RandomFeatures()), progress=False)
    return out / "best.pt"


# ---------------------------------------------------------------- stored notebooks

@pytest.mark.parametrize("name", NOTEBOOKS)
def test_stored_notebooks_are_clean_and_define_nothing(name):
    nb = nbformat.read(ROOT / "notebooks" / name, as_version=4)
    nbformat.validate(nb)
    code = [cell for cell in nb.cells if cell.cell_type == "code"]
    if name not in make_notebooks.WITH_OUTPUTS:
        assert [cell.outputs for cell in code] == [[] for _ in code]
        assert [cell.execution_count for cell in code] == [None] * len(code)
    assert [DEFINITION.findall(cell.source) for cell in code] == [[] for _ in code]  # logic lives in gan_helpers
    assert sum("parameters" in cell.metadata.get("tags", []) for cell in code) == 1


@pytest.mark.parametrize("name", ("DCGAN_train.ipynb", "SAGAN_train.ipynb"))
def test_training_notebooks_say_where_their_real_runs_are(name):
    intro = read_notebook(name).cells[0].source
    run = name.split("_")[0].lower()
    assert all(place in intro for place in (f"model/{run}_history.json.gz", "model/states/", "docs/results.md"))


# ---------------------------------------------------------------- whole notebooks in smoke mode

@pytest.mark.parametrize("name,runs", [("DCGAN_train.ipynb", 1), ("SAGAN_train.ipynb", 1),
                                       ("final_evaluation.ipynb", 2), ("more_gans.ipynb", 2)])
def test_notebook_runs_top_to_bottom_in_smoke_mode(name, runs, kernel_env, tmp_path):
    kernel_env.setenv("GAN_SMOKE", "1")
    before = deliverables(ROOT)
    notebooks = repo_copy(tmp_path)
    study = notebooks.parent / "model" / "studies" / "attention" / "results.json"   # a committed results file
    study.parent.mkdir(parents=True)
    shutil.copy(ROOT / "model" / "studies" / "attention" / "results.json", study)
    if name in make_notebooks.WITH_OUTPUTS:          # as tools/execute_final_notebook.py stores it, to tmp_path
        executed = execute_final_notebook.execute_notebook(ROOT / "notebooks" / name, tmp_path / name, notebooks, 300)
        assert nbformat.read(tmp_path / name, as_version=4) == executed
        assert make_notebooks.without_outputs(executed) == read_notebook(name)
    else:
        executed = execute(read_notebook(name), notebooks)
    text, images = outputs(executed)
    assert images > 0
    assert "FD (proxy" in text                       # the smoke metric is named as a proxy, never as FID
    assert len(list((tmp_path / "tmp").rglob("best.pt"))) == runs   # the runs went to temporary folders
    assert deliverables(notebooks.parent) == {}      # a smoke run publishes nothing
    assert deliverables(ROOT) == before
    if name in ("SAGAN_train.ipynb", "final_evaluation.ipynb"):   # attention sections: maps vs their query
        assert "G 16x16 attention: query dependence 0." in text
    if name == "more_gans.ipynb":                    # InfoGAN's cluster accuracy and BiGAN's linear probe
        assert "code value -> class:" in text and "cluster accuracy" in text and "probe" in text
    if name == "final_evaluation.ipynb":             # the studies section shows the results file's table
        assert "**Study `attention`**" in text and "| arm | seeds | best |" in text


# ---------------------------------------------------------------- the ultimate cell alone

def write_image_tree(root: Path, images: gh.ImageSet) -> None:
    """images as {train,test}/<class>/NNN.png, the layout load_cifar10 reads."""
    for split in ("train", "test"):
        for c, name in enumerate(images.classes):
            picked = images.x[images.y == c]
            gh.save_pngs(gh.to_float(picked), root / split / name, [f"{i:03d}" for i in range(len(picked))])


def test_final_cell_alone_shows_grid_and_test_set_score(kernel_env, tmp_path, tiny_checkpoint):
    data_dir, feature_net = tmp_path / "cifar", tmp_path / "random_features.pt"
    write_image_tree(data_dir, gh.synthetic_images(100, seed=1))
    with gh.warnings_ignored():
        torch.jit.script(gh.RandomFeatures()).save(str(feature_net))
    kernel_env.setenv("GAN_FINAL_CKPT", str(tiny_checkpoint))
    kernel_env.setenv("GAN_DATA_DIR", str(data_dir))
    kernel_env.setenv("GAN_FEATURE_NET", str(feature_net))
    kernel_env.setenv("GAN_FINAL_N", "100")
    text, images = outputs(execute(final_cell(), repo_copy(tmp_path)))
    assert images == 1
    assert "test set" in text and "FD (proxy" in text
    assert "(100 generated vs 100 real)" in text


@pytest.mark.parametrize("proxy", [False, True], ids=["no-feature-net", "proxy-feature-net"])
def test_final_cell_alone_offline_says_what_is_missing(proxy, kernel_env, tmp_path, tiny_checkpoint):
    (tmp_path / "empty").mkdir()
    (tmp_path / "torch_home").mkdir()
    kernel_env.setenv("GAN_FINAL_CKPT", str(tiny_checkpoint))
    kernel_env.setenv("GAN_DATA_DIR", str(tmp_path / "empty"))
    kernel_env.setenv("TORCH_HOME", str(tmp_path / "torch_home"))  # no cached Inception weights
    kernel_env.setenv("GAN_FINAL_N", "100")
    if proxy:  # the feature network loads; then the CIFAR-10 test images are what is missing
        with gh.warnings_ignored():
            torch.jit.script(gh.RandomFeatures()).save(str(tmp_path / "random_features.pt"))
        kernel_env.setenv("GAN_FEATURE_NET", str(tmp_path / "random_features.pt"))
    text, images = outputs(execute(final_cell(), repo_copy(tmp_path)))
    assert images == 1
    missing = [line for line in text.splitlines() if line.startswith("test-set FID not computed:")]
    assert len(missing) == 1
    assert ("CIFAR-10 is not in" if proxy else "Inception weights") in missing[0]


def test_stored_notebooks_match_their_source(tmp_path):
    """notebooks/*.ipynb are generated by tools/make_notebooks.py: an edit to one without the other fails."""
    subprocess.run([sys.executable, str(ROOT / "tools" / "make_notebooks.py"), str(tmp_path)], check=True,
                   capture_output=True)
    for name in NOTEBOOKS:
        if name in make_notebooks.WITH_OUTPUTS:        # stored with outputs: its cells are the generated ones
            assert read_notebook(name) == nbformat.read(tmp_path / name, as_version=4), name
        else:
            assert (tmp_path / name).read_text() == (ROOT / "notebooks" / name).read_text(), name


MAX_STORED_BYTES = 1_000_000                     # the executed final notebook stays small (JPEG figures)


def test_stored_final_notebook_shows_the_shipped_models_grid_and_proxy_score():
    """The committed final notebook opens with its outputs: run top to bottom once without errors, its last cell
    the shipped SAGAN's 8x8 grid and its test-set score, named a proxy; no path of the machine that ran it."""
    path = ROOT / "notebooks" / "final_evaluation.ipynb"
    nb = nbformat.read(path, as_version=4)
    code = [cell for cell in nb.cells if cell.cell_type == "code"]
    assert [cell.execution_count for cell in code] == list(range(1, len(code) + 1))   # run top to bottom, once
    assert [out for cell in code for out in cell.outputs if out.output_type == "error"] == []
    last = nb.cells[-1].outputs
    text = "".join(out.get("text", "") for out in last)
    assert sum("image/jpeg" in out.get("data", {}) for out in last) == 1               # the 8x8 grid
    assert "model/sagan_best.pt" in text and "test set" in text and "(10000 generated vs 10000 real)" in text
    assert "FD (proxy: cifar10_features features)" in text and "FID" not in text         # named a proxy
    assert "precision" in text and "proxy features" in text
    assert "/work/" not in path.read_text() and 0 < path.stat().st_size <= MAX_STORED_BYTES
