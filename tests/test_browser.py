"""The notebooks as a person sees them: JupyterLab on localhost, driven by headless Chromium (Debian's
`chromium`, through Playwright for Python; no browser download). SAGAN_train.ipynb runs in smoke mode
(GAN_SMOKE=1) with "Run All"; then the attention explorer's sample, layer and query controls are moved
and each move must change the picture, with no error output anywhere. Meanwhile the other two notebooks
run in smoke mode through nbclient; all three executed notebooks are rendered to HTML and screenshotted.

Screenshots and HTML files are kept in test-artifacts/browser/ (or $GAN_TEST_ARTIFACTS/browser/); the
test prints the folder. Skipped, with the reason, where Chromium, Playwright or JupyterLab is missing."""
import importlib.util
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import nbformat
import pytest
from helpers import copy_kit
from nbclient import NotebookClient

pytestmark = [pytest.mark.browser, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
ARTIFACTS = Path(os.environ.get("GAN_TEST_ARTIFACTS", ROOT / "test-artifacts")) / "browser"
TOKEN = "gan-study-kit-browser-test"


def missing_tools() -> str | None:
    if not Path(CHROMIUM).is_file():
        return "Chromium is not installed (Debian: apt-get install chromium; .ci/run does this)"
    for module in ("playwright", "jupyterlab", "nbconvert"):
        if importlib.util.find_spec(module) is None:
            return f"{module} is not installed (pip install -r requirements-dev.txt)"
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def kernel_environment(tmp: Path) -> dict[str, str]:
    """Smoke mode, one thread, inline figures, downloads refused at once, Jupyter's files kept under tmp,
    and the ipywidgets JupyterLab extension found beside the installed jupyterlab_widgets."""
    import jupyterlab_widgets
    env = {k: v for k, v in os.environ.items() if not k.startswith("GAN_") and k.lower() != "no_proxy"}
    prefix = Path(jupyterlab_widgets.__file__).parents[4]           # <prefix>/lib/pythonX.Y/site-packages/...
    (tmp / "tmp").mkdir(exist_ok=True)
    env.update(GAN_SMOKE="1", OMP_NUM_THREADS="1", MPLBACKEND="module://matplotlib_inline.backend_inline",
               http_proxy="http://127.0.0.1:9", https_proxy="http://127.0.0.1:9", TMPDIR=str(tmp / "tmp"),
               JUPYTER_PATH=str(prefix / "share" / "jupyter"), JUPYTER_CONFIG_DIR=str(tmp / "jupyter_config"),
               JUPYTER_RUNTIME_DIR=str(tmp / "jupyter_runtime"), JUPYTERLAB_SETTINGS_DIR=str(tmp / "lab_settings"),
               JUPYTERLAB_WORKSPACES_DIR=str(tmp / "lab_workspaces"))
    return env


def repo_copy(tmp: Path) -> Path:
    """gan_helpers.py, gankit/ and the three notebooks under tmp/repo (nothing can be published into the real one)."""
    repo = tmp / "repo"
    (repo / "notebooks").mkdir(parents=True)
    copy_kit(repo)
    for nb in (ROOT / "notebooks").glob("*.ipynb"):
        shutil.copy(nb, repo / "notebooks")
    return repo


def wait_until(condition, timeout: float, what: str, interval: float = 0.5):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = condition()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def start_lab(repo: Path, env: dict[str, str], log: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "jupyter", "lab", "--no-browser", f"--port={port}",
                             "--ServerApp.ip=127.0.0.1", f"--IdentityProvider.token={TOKEN}", "--allow-root",
                             "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
                             f"--ServerApp.root_dir={repo}", "--LabApp.expose_app_in_browser=True"],
                            env=env, stdout=log.open("w"), stderr=subprocess.STDOUT, cwd=repo)
    url = f"http://127.0.0.1:{port}"

    def up() -> bool:
        try:
            return urllib.request.urlopen(f"{url}/api/status?token={TOKEN}", timeout=2).status == 200
        except OSError:
            assert proc.poll() is None, f"JupyterLab exited: {log.read_text()[-2000:]}"
            return False
    wait_until(up, 90, "JupyterLab to start")
    return proc, url


def run_in_nbclient(repo: Path, names: list[str], env: dict[str, str], done: dict) -> None:
    """Execute notebooks top to bottom in smoke mode (the kernel inherits `env`); results into `done`."""
    for name in names:
        nb = nbformat.read(repo / "notebooks" / name, as_version=4)
        try:
            NotebookClient(nb, kernel_name="python3", timeout=300,
                           resources={"metadata": {"path": str(repo / "notebooks")}}).execute(env=env)
            nbformat.write(nb, repo / "notebooks" / name)
            done[name] = None
        except Exception as exc:                                      # reported by the test's assertion
            done[name] = f"{type(exc).__name__}: {exc}"


def render_html(notebook: Path, page, out: Path) -> None:
    """nbconvert HTML of an executed notebook, and a full-page screenshot of it."""
    from nbconvert import HTMLExporter
    html, _ = HTMLExporter().from_filename(str(notebook))
    out.write_text(html)
    page.goto(out.as_uri())
    page.wait_for_load_state("load")
    page.screenshot(path=str(out.with_suffix(".png")), full_page=True)


def test_explorer_and_notebooks_in_a_real_browser(tmp_path):
    reason = missing_tools()
    if reason:
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright
    shutil.rmtree(ARTIFACTS, ignore_errors=True)
    ARTIFACTS.mkdir(parents=True)
    print(f"\nbrowser test artifacts (screenshots, HTML): {ARTIFACTS}")
    repo, env = repo_copy(tmp_path), kernel_environment(tmp_path)
    others: dict[str, str | None] = {}
    background = threading.Thread(target=run_in_nbclient,
                                  args=(repo, ["DCGAN_train.ipynb", "final_evaluation.ipynb"], env, others), daemon=True)
    lab, url = start_lab(repo, env, ARTIFACTS / "jupyterlab.log")
    try:
        background.start()
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            try:
                drive_explorer(page, url, repo, background, others)
            except Exception:
                page.screenshot(path=str(ARTIFACTS / "failure.png"))
                raise
            browser.close()
    finally:
        lab.terminate()
        lab.wait(timeout=30)


def kernel_ready(page) -> bool:
    """True once the notebook's kernel is idle; clicks "Select" when JupyterLab asks which kernel to start."""
    select = page.locator(".jp-Dialog button.jp-mod-accept")
    if select.count():
        select.first.click()
    return page.locator(".jp-StatusBar-TextItem:has-text('| Idle')").count() > 0 and not select.count()


def drive_explorer(page, url: str, repo: Path, background: threading.Thread, others: dict) -> None:
    """Run SAGAN_train.ipynb in JupyterLab, move the explorer's controls, then render the notebooks."""
    page.goto(f"{url}/lab/tree/notebooks/SAGAN_train.ipynb?token={TOKEN}")
    page.wait_for_function("window.jupyterapp && document.querySelector('.jp-Notebook .jp-Cell')",
                           timeout=60_000)
    # as a user does: wait for the kernel (answering JupyterLab's kernel question if it asks), Run > Run All Cells
    wait_until(lambda: kernel_ready(page), 90, "the kernel to start")
    page.get_by_role("menuitem", name="Run", exact=True).click()
    page.get_by_text("Run All Cells", exact=True).click()
    explorer = page.locator(".widget-vbox").filter(has=page.locator("img.widget-image")).last
    explorer.wait_for(timeout=240_000)
    wait_until(lambda: page.locator(".jp-InputPrompt:has-text('[*]')").count() == 0, 120,
               "every cell to finish")
    explorer.scroll_into_view_if_needed()
    explorer.screenshot(path=str(ARTIFACTS / "explorer_0_start.png"))
    image = explorer.locator("img.widget-image")
    sliders = explorer.locator(".widget-slider")
    assert sliders.count() == 3 and explorer.locator("select").count() == 1

    def readouts() -> list[str]:
        return [r.inner_text() for r in explorer.locator(".widget-readout").all()]
    moves = [("sample", lambda: sliders.nth(0).locator(".noUi-handle").press("ArrowRight")),
             ("query_row", lambda: sliders.nth(1).locator(".noUi-handle").press("ArrowRight")),
             ("query_col", lambda: sliders.nth(2).locator(".noUi-handle").press("ArrowLeft")),
             ("layer", lambda: explorer.locator("select").select_option(index=1))]
    seen = [readouts()]
    for step, (name, move) in enumerate(moves, start=1):
        before = image.screenshot()
        move()
        wait_until(lambda: image.screenshot() != before, 30, f"the picture to change after moving {name}")
        explorer.screenshot(path=str(ARTIFACTS / f"explorer_{step}_{name}.png"))
        seen.append(readouts())
    # sample 0 -> 1; query cell 8 -> 9 and 8 -> 7 of the 16x16 map (one cell per step, not one pixel);
    # the D layer keeps the place in the image
    assert seen[:4] == [["0", "8", "8"], ["1", "8", "8"], ["1", "9", "8"], ["1", "9", "7"]]
    options = [o.replace("\xa0", " ") for o in explorer.locator("select option").all_inner_texts()]
    assert options[:2] == ["G 16x16 attention (generated samples)", "D 16x16 attention (real images)"]
    assert "explorer error" not in explorer.inner_text()
    errors = page.locator(".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']")
    texts = errors.all_inner_texts()
    assert not [t for t in texts if "Error" in t or "Traceback" in t], texts
    page.screenshot(path=str(ARTIFACTS / "jupyterlab_sagan.png"))
    page.evaluate("window.jupyterapp.commands.execute('docmanager:save')")
    wait_until(lambda: nbformat.read(repo / "notebooks" / "SAGAN_train.ipynb", 4).cells[-1].get("outputs"),
               30, "JupyterLab to save the executed notebook")
    background.join(timeout=300)
    assert others == {"DCGAN_train.ipynb": None, "final_evaluation.ipynb": None}
    for name in ("DCGAN_train.ipynb", "SAGAN_train.ipynb", "final_evaluation.ipynb"):
        render_html(repo / "notebooks" / name, page, ARTIFACTS / name.replace(".ipynb", ".html"))
        assert (ARTIFACTS / name.replace(".ipynb", ".png")).stat().st_size > 50_000
