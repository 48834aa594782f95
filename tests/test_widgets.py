"""Widgets as Colab and Jupyter users get them: what the Colab setup cell installs (google.colab faked),
and the attention explorer's code path under the installed ipywidgets (8) and under ipywidgets 7.7.1,
the version Colab ships (installed from PyPI once into pytest's cache; skipped when PyPI cannot be reached)."""
import importlib.util
import json
import os
import re
import subprocess
import sys
import types
from pathlib import Path

import pytest

import gan_helpers as gh
import gankit

ROOT = Path(__file__).resolve().parents[1]

# Drives the explorer the way slider moves do (setting widget values fires the same observers) and prints
# what a user would see: the layer names, the slider ranges, whether each move changed the picture.
EXPLORER_SCRIPT = r"""
import hashlib, json, sys
sys.path.insert(0, sys.argv[1])
import ipywidgets
import gan_helpers as gh
G, D = gh.build_models(gh.Config.sagan(g_ch=16, d_ch=16, g_attn=(8, 16), d_attn=(16, 8)))
box = gh.attention_explorer(G, D, gh.synthetic_images(20), n=4)
(layer, index), (row, col) = box.children[0].children, box.children[1].children
picture, status = box.children[2], box.children[3]
report = {"version": ipywidgets.__version__, "layers": list(layer.options), "moves": []}
digest = lambda: hashlib.sha256(picture.value).hexdigest()
before = digest()
for name, widget, value in (("sample", index, 2), ("row", row, 1), ("col", col, 6), ("layer", layer, layer.options[1]),
                            ("row", row, 15), ("layer", layer, layer.options[3])):
    widget.value = value
    report["moves"].append({"moved": name, "changed": digest() != before, "error": status.value,
                            "row": [row.value, row.max], "col": [col.value, col.max], "png": picture.value[:4].hex()})
    before = digest()
print(json.dumps(report))
"""


def run_explorer(extra_path: str | None = None) -> dict:
    env = {**os.environ, "MPLBACKEND": "Agg", "OMP_NUM_THREADS": "1"}
    if extra_path:
        env["PYTHONPATH"] = extra_path            # ahead of site-packages: shadows the installed ipywidgets
    r = subprocess.run([sys.executable, "-c", EXPLORER_SCRIPT, str(ROOT)], capture_output=True, text=True, env=env,
                       timeout=300)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout.splitlines()[-1])


def check_explorer(report: dict) -> None:
    assert report["layers"] == ["G 8x8 attention (generated samples)", "G 16x16 attention (generated samples)",
                                "D 16x16 attention (real images)", "D 8x8 attention (real images)"]
    assert [m["changed"] for m in report["moves"]] == [True] * 6      # every move redraws a different picture
    assert [m["error"] for m in report["moves"]] == [""] * 6
    assert {m["png"] for m in report["moves"]} == {"89504e47"}        # PNG signature
    # query sliders count map cells: 0-7 on the 8x8 map, 0-15 on 16x16; a layer change keeps the image place
    assert [(m["row"], m["col"]) for m in report["moves"]] == [
        ([4, 7], [4, 7]), ([1, 7], [4, 7]), ([1, 7], [6, 7]), ([2, 15], [12, 15]), ([15, 15], [12, 15]),
        ([7, 7], [6, 7])]


def test_explorer_with_installed_ipywidgets():
    report = run_explorer()
    assert report["version"] == __import__("ipywidgets").__version__
    check_explorer(report)


@pytest.fixture(scope="session")
def ipywidgets_7(request, tmp_path_factory) -> str:
    """A folder holding ipywidgets 7.7.1 and the 7.x packages it imports (made once, kept in pytest's cache
    when the cache plugin is on, else in a temporary folder)."""
    cache = getattr(request.config, "cache", None)
    folder = cache.mkdir("ipywidgets-7.7.1") if cache is not None else tmp_path_factory.mktemp("ipywidgets-7.7.1")
    if not (folder / "ipywidgets" / "__init__.py").is_file():
        r = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                            "--no-deps", "--target", str(folder), "--timeout", "20", "ipywidgets==7.7.1",
                            "widgetsnbextension~=3.6.0", "jupyterlab_widgets>=1.0,<2", "ipython_genutils"],
                           capture_output=True, text=True)
        if r.returncode != 0:
            pytest.skip(f"ipywidgets 7.7.1 could not be installed from PyPI (offline?): {r.stderr.strip()[-200:]}")
    return str(folder)


def test_explorer_with_ipywidgets_7_7_as_on_colab(ipywidgets_7):
    report = run_explorer(ipywidgets_7)
    assert report["version"] == "7.7.1"
    check_explorer(report)


# ---------------------------------------------------------------- the Colab setup cell

@pytest.fixture
def on_colab(monkeypatch):
    monkeypatch.setitem(sys.modules, "google", types.ModuleType("google"))
    monkeypatch.setitem(sys.modules, "google.colab", types.ModuleType("google.colab"))
    return monkeypatch


def test_colab_installs_nothing_outside_colab(monkeypatch):
    monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None)   # even with nothing installed
    assert gh.colab_installs() == []


def test_colab_installs_only_what_colab_lacks(on_colab):
    real_find_spec = importlib.util.find_spec
    colab_has = {"torch", "torchvision", "numpy", "scipy", "PIL", "matplotlib", "ipywidgets", "tqdm"}  # not pytorch_fid
    on_colab.setattr(importlib.util, "find_spec",
                     lambda name, *a: real_find_spec("json") if name in colab_has else None)
    assert gh.colab_installs() == ["pytorch-fid>=0.3.0"]        # Colab's own torch and ipywidgets 7.7 stay


def test_colab_installs_everything_missing_and_never_forces_ipywidgets_8(on_colab):
    on_colab.setattr(importlib.util, "find_spec", lambda name, *a: None)
    installs = gh.colab_installs()
    assert installs == list(gankit.device.RUNTIME_PACKAGES.values())
    assert "ipywidgets>=7.7,<9" in installs


def test_runtime_packages_are_requirements_txt():
    lines = [line.strip() for line in (ROOT / "requirements.txt").read_text().splitlines()]
    assert [line for line in lines if line and not line.startswith("#")] == list(gankit.device.RUNTIME_PACKAGES.values())


def test_setup_cells_install_through_colab_installs():
    for name in ("DCGAN_train.ipynb", "SAGAN_train.ipynb", "final_evaluation.ipynb"):
        cells = json.loads((ROOT / "notebooks" / name).read_text())["cells"]
        setup = next("".join(c["source"]) for c in cells if "COLAB_DIR" in "".join(c["source"]))
        assert "missing = gan_helpers.colab_installs()" in setup
        assert not re.search(r"pip\", \"install\"[^\n]*ipywidgets", setup)
