"""Write the notebooks from the cell sources below, outputs stripped (the notebooks are generated: edit this
file, then run `python tools/make_notebooks.py`; diffs stay reviewable because cell ids are fixed).

final_evaluation.ipynb is committed with its outputs, added by a second step,
`python tools/execute_final_notebook.py`. While its cells are unchanged, regenerating keeps that file (and
its outputs) as it is; when they change, it is written without outputs and a line says to run that step."""
import copy
import sys
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

NB_DIR = Path(__file__).resolve().parents[1] / "notebooks"
WITH_OUTPUTS = ("final_evaluation.ipynb",)   # committed executed (tools/execute_final_notebook.py)


def md(text):
    return new_markdown_cell(text.strip("\n"))


def code(text, tags=None):
    cell = new_code_cell(text.strip("\n"))
    if tags:
        cell.metadata["tags"] = list(tags)
    return cell


def without_outputs(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """A copy of nb as this script writes it: no outputs, execution counts or widget state."""
    nb = copy.deepcopy(nb)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    nb.metadata.pop("widgets", None)
    return nb


def write(name, cells, gpu=False):
    nb = new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {"display_name": "Python 3", "language": "python", "name": "python3"}
    nb.metadata["language_info"] = {"name": "python"}
    if gpu:
        nb.metadata["accelerator"] = "GPU"  # Colab opens the notebook on a GPU runtime
    stem = Path(name).stem.lower().replace("_", "-")
    for i, cell in enumerate(nb.cells):
        cell["id"] = f"{stem}-{i:02d}"
    nbformat.validate(nb)
    path = NB_DIR / name
    if name in WITH_OUTPUTS and path.is_file():
        if without_outputs(nbformat.read(path, as_version=4)) == nb:
            print("kept", path, "(cells unchanged: its outputs stay)")
            return
        print(f"{name}: cells changed, written without outputs: run python tools/execute_final_notebook.py")
    nbformat.write(nb, path)
    print("wrote", path)


# ----------------------------------------------------------------------------------------------------
# cells shared by the notebooks
# ----------------------------------------------------------------------------------------------------

SETUP_MD = """
## 1. Setup

On **Google Colab** the next cell clones the repository into `/content/gan-study-kit` with
`git clone --depth 1` (the current files only, not the history; edit `REPO_URL` so it points at your copy
first) and installs only the packages Colab lacks (`gan_helpers.colab_installs()`
decides; usually just `pytorch-fid`). Colab's own `torch`, `torchvision`, `numpy`, `matplotlib` and
`ipywidgets` are kept as they are: Colab ships ipywidgets 7.7, and replacing it with ipywidgets 8 stops
some widgets from showing there; the kit's widgets work with both.

Everywhere else the cell only locates the repository root `ROOT` (the folder holding `gan_helpers.py`),
so the notebook works when Jupyter is started in the repository root or in `notebooks/`. Every path
below is built from `ROOT`.
"""

SETUP_CODE = """
{imports}import os
import subprocess
import sys
import tempfile
from pathlib import Path

import matplotlib.pyplot as plt
import torch
{display}
REPO_URL = "https://github.com/OWNER/gan-study-kit"  # edit: the address of your copy of this repository
COLAB_DIR = Path("/content/gan-study-kit")

if "google.colab" in sys.modules:
    if not COLAB_DIR.is_dir():
        subprocess.run(["git", "clone", "--depth", "1", REPO_URL, str(COLAB_DIR)], check=True)
    os.chdir(COLAB_DIR / "notebooks")

ROOT = next(p.resolve() for p in (Path("."), Path("..")) if (p / "gan_helpers.py").is_file())
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
import gan_helpers

missing = gan_helpers.colab_installs()   # empty outside Colab
if missing:
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", *missing], check=True)

print(f"repository root: {{ROOT}}")
"""


# ----------------------------------------------------------------------------------------------------
# the training notebooks (DCGAN and SAGAN differ in the preset, the prose and the attention section)
# ----------------------------------------------------------------------------------------------------

RUNS_MD = """
This notebook is stored without outputs: a full run takes hours. The real runs behind the shipped
`model/{name}_best.pt` are in the repository: `model/{name}_history.json.gz` (the losses at every iteration and
every validation score), `model/states/` (the runs' compact training states, from which
`python gan_helpers.py train --resume-from` continues them) and `docs/results.md` (their numbers and curves).
`final_evaluation.ipynb` is stored with the outputs of its run against the shipped models.
"""

TRAIN = {
    "dcgan": dict(
        title="DCGAN",
        preset="dcgan",
        folder="DCGAN",
        smoke=(60, 30),  # iterations, evaluation interval: after 10 a DCGAN's BatchNorm statistics still give grey images
        intro="""
# DCGAN on CIFAR-10: training

This notebook trains the **baseline** of the study: a class-conditional DCGAN. It is written as a short lab
report: each step says what it does and why, and the code cells only call functions of
[`gan_helpers.py`](../gan_helpers.py), where all the logic (models, losses, training loop, FID,
checkpoints, plots) lives and is tested.

What the run produces:

- `runs/dcgan/last.pt`: the full training state (G, D, optimisers, random generators, history),
  written every 1000 iterations, so an interrupted run continues where it stopped;
- `runs/dcgan/best.pt`: the generator at its lowest validation FID;
- `runs/dcgan/history.json`: losses at every iteration and every validation score;
- `runs/dcgan/snapshots/`: a grid of the same latents and labels at every evaluation;
- after training, `model/dcgan_best.pt` and `model/dcgan_history.json.gz` (the deliverable model) and ten
  images, one per class, in `DCGAN/`.

Setting the environment variable `GAN_SMOKE=1` before starting Jupyter turns the notebook into a smoke
test: tiny networks, 60 iterations on synthetic images, results in a temporary folder, nothing published.
The test suite runs every notebook this way.
""",
        model_md="""
## 5. The models

The DCGAN preset (`Config.dcgan()`) follows the reference report's DCGAN:

- **G**: transposed convolutions grow the latent vector `z` (100 values) to 4×4, 8×8 and 16×16 feature
  maps, each followed by batch norm and LeakyReLU(0.1); a last transposed convolution makes the 32×32 RGB
  image, squashed into `[-1, 1]` by `tanh`. The batch norms are *conditional*: their scale and shift are
  looked up per class, which is how the class label enters G.
- **D**: strided 4×4 convolutions take the image down to 16×16, 8×8 and 4×4 with LeakyReLU(0.2) (and batch
  norm after the second and third), then a 4×4 convolution gives one logit. A *projection* term, the
  inner product of a class embedding with D's pooled features, is added to it, so D judges whether an
  image fits its label. A *class head* (as in ACGAN) also predicts the class from those features: D learns
  it on real images, and G is trained to make its samples classified as the class they were drawn for
  (`cond="projection-ac"`). With it, three seeds' samples carried their class about twice as often as with
  the projection alone, at a lower FD (`studies/dcgan_recipe.json`).
- **Training**: the standard (non-saturating) GAN loss on logits, Adam with learning rate 2e-4 and
  β₁ = 0.5 for both networks, batches of 128. No spectral norm, no self-attention: those are what the
  SAGAN notebook adds.
- **Sampling** uses G itself. An exponential moving average (EMA) of G's weights, which the SAGAN uses,
  scored worse than G for this DCGAN at iteration 10,000, so the preset has none (`ema_decay=0`). Once a long
  run's curve has flattened it tends to score better: the shipped DCGAN samples from an EMA its run switched on
  at iteration 45,000 (the model card). `--set ema_decay=0.999` turns it on, also when resuming a run.
- **Long runs**: after many passes over the 45,000 training images D scores them better than the validation
  images, a sign that it learns the images rather than the data. DiffAugment (`--set
  diffaug=translation,cutout`: every image D sees shifted and partly blanked at random) counters that; the
  shipped DCGAN's run switched it on at iteration 75,000, and its validation FD (proxy) fell from 0.97 to 0.52
  within 5,000 iterations (one run: the model card).
""",
        attention=False,
    ),
    "sagan": dict(
        title="SAGAN",
        preset="sagan",
        folder="SAGAN",
        smoke=(20, 10),
        intro="""
# Self-Attention GAN (SAGAN) on CIFAR-10: training

This notebook trains the **main model** of the study: a class-conditional Self-Attention GAN with spectral
normalisation and the Wasserstein loss. It is written as a short lab report: each step says what it does
and why, and the code cells only call functions of [`gan_helpers.py`](../gan_helpers.py), where all the
logic (models, losses, training loop, FID, checkpoints, plots, attention maps) lives and is tested.

What the run produces:

- `runs/sagan/last.pt`: the full training state (G, D, their EMA, optimisers, random generators, history),
  written every 1000 iterations, so an interrupted run continues where it stopped;
- `runs/sagan/best.pt`: the generator at its lowest validation FID;
- `runs/sagan/history.json`: losses at every iteration and every validation score;
- `runs/sagan/snapshots/`: a grid of the same latents and labels at every evaluation;
- after training, `model/sagan_best.pt` and `model/sagan_history.json.gz` (the deliverable model) and ten
  images, one per class, in `SAGAN/`;
- at the end, maps of what the self-attention layers look at.

Setting the environment variable `GAN_SMOKE=1` before starting Jupyter turns the notebook into a smoke
test: tiny networks, 20 iterations on synthetic images, results in a temporary folder, nothing published.
The test suite runs every notebook this way.
""",
        model_md="""
## 5. The models

The SAGAN preset (`Config.sagan()`):

- **G**: `z` (128 values) is mapped linearly to a 4×4 feature map, then three residual up-sampling blocks
  (8, 16, 32 pixels) with class-conditional batch norm, and a 3×3 convolution with `tanh` output.
- **D**: residual down-sampling blocks 32 → 16 → 8 → 8 → 8 pixels, global sum pooling, one logit plus a class
  projection term (D judges whether an image fits its label).
- **Self-attention** after the 16×16 stage of both networks: every position of the feature map can draw on
  every other position, instead of only on its convolutional neighbourhood. Its output is
  `gamma * attention + input` with `gamma` learned from 0, so the networks start purely convolutional.
- **Spectral normalisation** on every convolution and linear layer of G and D: each weight is divided by
  its largest singular value (one power iteration per step), which bounds how fast D's output can change.
- **Wasserstein loss**: D is a critic that scores real images high and generated ones low; the loss is the
  difference of the mean scores. The theory needs a 1-Lipschitz critic, which spectral norm provides here.
- **TTUR**: Adam with β = (0, 0.9), learning rates 1e-4 for G and 4e-4 for D, batches of 64.
- **Sampling** uses an exponential moving average (EMA) of G's weights.
""",
        attention=True,
    ),
}


def train_notebook(key):
    spec = TRAIN[key]
    name, folder = key, spec["folder"]
    cells = [md(spec["intro"] + RUNS_MD.format(name=key)), md(SETUP_MD), code(SETUP_CODE.format(imports="", display="from IPython.display import Markdown, display\n"))]
    cells += [md(f"""
## 2. Parameters

Everything a run depends on is set here (the cell is tagged `parameters`, so tools such as papermill can
override it).

- `ITERS`, `EVAL_EVERY`, `EVAL_SAMPLES`: the length of the run, and how often and on how many generated
  images the validation FID is computed. The assignment asks for a score at least every 1000 iterations;
  5000 generated images are compared with the 5000 validation images.
- `DATA_DIR`: where CIFAR-10 is read from: torchvision's `cifar-10-batches-py/` or an image-folder tree
  `{{train,test}}/<class>/*.png|jpg` (directly or under `cifar10-jpeg/`); without either, torchvision
  downloads the dataset there.
- `FEATURE_NET`, `FID_WEIGHTS`: the network behind the validation metric. `None` means the real FID with
  pytorch-fid's Inception network; its weights are downloaded on first use, or read from `FID_WEIGHTS`
  (a local copy of `pt_inception-2015-12-05-6726825d.pth`). Without internet access and without that
  file, set `FEATURE_NET = ROOT.parent / "shared" / "eval" / "cifar10_features.pt"`: the features of a
  small CIFAR-10 classifier kept beside the repository (in `../shared/eval/`, not in the repository).
  The Fréchet distance in that feature space is a **proxy**, not FID, and on another scale; every number
  printed below is then labelled as such.
- `CLASSIFIER`: the CIFAR-10 classifier behind the class accuracy of the samples (the fraction a classifier
  assigns to the class they were generated for) and, with a proxy `FEATURE_NET`, a proxy Inception Score.
  `None` is the kit's copy in `model/eval/` (85.9 % on the test images; see its README), `"none"` turns
  both off.
- `OUT_DIR`: the run folder. Training always resumes from `OUT_DIR/last.pt` when it exists, so re-running
  the notebook continues an interrupted run (with the same settings; only `ITERS`, `EVAL_EVERY` and
  `EVAL_SAMPLES` may change between runs). Delete the folder, or choose another, to start afresh.
- `USE_DRIVE`: on Colab `True` by default: the notebook mounts Google Drive and puts `OUT_DIR` under
  `MyDrive/gan-study-kit/runs/{name}`, so after a disconnect, running the notebook again resumes the run
  from Drive (its `last.pt`). `False` keeps the run on the Colab runtime's disk, which a disconnect wipes.
  Elsewhere it has no effect.
- `OVERRIDES`: changes to any other field of `gan_helpers.Config` (e.g. `{{"batch_size": 64}}`).
- `FORCE_PUBLISH`: the Deliverables cell only replaces a published model whose validation score is worse
  and was measured the same way; `True` replaces it anyway (the old files are moved to `model/replaced/`).
"""),
              code(f"""
SMOKE = os.environ.get("GAN_SMOKE") == "1"  # tiny end-to-end run on synthetic data (tests)
ITERS = 100_000                  # generator updates in total; a resumed run continues up to this
EVAL_EVERY = 1000                # validation metric every this many iterations
EVAL_SAMPLES = 5000              # generated images per validation metric (vs the 5000 validation images)
DATA_DIR = ROOT / "data"         # CIFAR-10 (downloaded here when absent)
FEATURE_NET = None               # None: Inception FID; offline: ROOT.parent / "shared" / "eval" / "cifar10_features.pt" (proxy)
FID_WEIGHTS = None               # local copy of pytorch-fid's Inception weights, if there is no download
CLASSIFIER = None                # None: the kit's CIFAR-10 classifier (model/eval/); a TorchScript path; "none"
OUT_DIR = ROOT / "runs" / "{name}"  # last.pt, best.pt, history.json, snapshots/
USE_DRIVE = "google.colab" in sys.modules  # on Colab: keep OUT_DIR on Google Drive (resumes after a disconnect)
OVERRIDES = {{}}                   # Config fields to change, e.g. {{"batch_size": 64}}
FORCE_PUBLISH = False            # True: publish even over a better (or differently scored) model in model/
""", tags=["parameters"]),
              md(f"""
The next cell applies smoke mode (tiny widths, {spec["smoke"][0]} iterations, a temporary run folder), or on Colab with
`USE_DRIVE` mounts Drive, and builds the run's `Config`. The cache of real-image feature statistics
(`data/fid_stats/`) saves recomputing the validation set's features every time.
"""),
              code(f"""
if SMOKE:
    ITERS, EVAL_EVERY, EVAL_SAMPLES = {spec["smoke"][0]}, {spec["smoke"][1]}, 200
    OVERRIDES = {{**OVERRIDES, "g_ch": 16, "d_ch": 16, "batch_size": 16}}
    OUT_DIR = Path(tempfile.mkdtemp(prefix="{name}_smoke_"))
    CLASSIFIER = gan_helpers.random_classifier()  # a random stand-in: the plumbing runs, the numbers mean nothing
elif USE_DRIVE and "google.colab" in sys.modules:
    from google.colab import drive
    drive.mount("/content/drive")
    OUT_DIR = Path("/content/drive/MyDrive/gan-study-kit/runs/{name}")
STATS_DIR = OUT_DIR / "fid_stats" if SMOKE else ROOT / "data" / "fid_stats"

cfg = gan_helpers.Config.{spec["preset"]}(**{{"iters": ITERS, "eval_every": EVAL_EVERY, "eval_samples": EVAL_SAMPLES, **OVERRIDES}})
print(f"{{'smoke run' if SMOKE else 'run'}} {{cfg.name}}: {{cfg.iters}} iterations, results in {{OUT_DIR}}")
"""),
              md("""
## 3. Data

`setup()` seeds Python, NumPy and PyTorch from the config's seed and picks the device (CUDA, then Apple
MPS, then CPU). `load_dataset(cfg, DATA_DIR)` reads the data the config names: here the 50,000 CIFAR-10
training images, split once into 45,000 for training and 5,000 for validation; the split uses its own
fixed seed (`split_seed`), so every run (DCGAN and SAGAN alike) validates on the same images, and every
checkpoint records it. The 10,000 test images are not touched here: they are kept for the final
evaluation. Other studies change only the config: `img_size=64`, `classes=("deer",)`, an image folder as
`DATA_DIR`. All images
stay in memory as 8-bit tensors on the training device, so batches cost no data-loader work.
"""),
              code("""
device = gan_helpers.setup(cfg.seed)
if SMOKE:
    train_data, val_data = gan_helpers.train_val_split(gan_helpers.synthetic_images(1200), 200)
else:
    train_data, val_data = gan_helpers.load_dataset(cfg, DATA_DIR)
cfg = gan_helpers.config_for_data(cfg, train_data)   # num_classes from the data when conditional
print(f"device: {device}")
print(f"{len(train_data):,} training and {len(val_data):,} validation images from {train_data.source}")
print("classes:", ", ".join(train_data.classes))
"""),
              md("""
## 4. The validation metrics

FID compares the mean and covariance of features of generated and real images; lower is better. The
features come from pytorch-fid's Inception network unless `FEATURE_NET` names another one, in which case
the label printed here (and beside every score) says *proxy*. Smoke mode uses a random convolutional
network, which only checks that the plumbing works.

The same forward pass gives the **Inception Score** (IS): how confidently the Inception network
recognises each sample, and how evenly the samples spread over its 1008 classes (from 1 to 1008; higher
is better). With a proxy feature network the IS comes from the CIFAR-10 classifier instead (10 classes,
so at most 10), labelled as a proxy. The classifier also gives the **class accuracy** of the samples:
the fraction it assigns to the class they were generated for.
"""),
              code("""
features = gan_helpers.load_feature_net(gan_helpers.RandomFeatures() if SMOKE else FEATURE_NET, FID_WEIGHTS, device,
                                        classifier=CLASSIFIER)
print("validation metric:", features.label)
print("sample scores:", features.is_label or "no IS", "|", features.class_label if features.classifier else "no class accuracy")
"""),
              md(spec["model_md"]),
              code("""
G, D = gan_helpers.build_models(cfg)
print(cfg)
for who, model in (("Generator", G), ("Discriminator", D)):   # stage by stage: output shape and parameters
    display(Markdown(f"**{who}**\\n\\n" + gan_helpers.format_layer_table(gan_helpers.layer_table(model))))
"""),
              md("""
## 6. Training

`gan_helpers.train` runs the loop: each iteration updates D on a real and a generated batch, then G on the
same generated batch, scored by the updated D. Every `EVAL_EVERY` iterations (and at iteration 0 and at the
end) it scores the sampling generator (the EMA of G when the preset has one, else G) on the validation
set (FID, KID, IS, class accuracy), measures D's loss on held-out validation images next to training
images, saves a grid of the same 64 latents and labels to `snapshots/`, keeps `best.pt` when the
score is the best so far, and redraws the curve below. The training state
goes to `last.pt` every 1000 iterations and at the end; stopping the kernel loses at most the iterations
since then, and running this cell again resumes. The progress bar shows the current losses and the latest
validation score.
"""),
              code(f"""
history = gan_helpers.train(cfg, OUT_DIR, train_data, val_data, features, device, resume=True,
                            on_eval=gan_helpers.live_metric_plot("{spec['title']}"), stats_dir=STATS_DIR)
"""),
              md("""
## 7. Training and validation curves

Left: the losses of D and G (moving average). Right: D's mean logit on real images, D(x), and on generated
ones, D(G(z)); the gap between them is what G is trying to close. The dotted points are the evaluations'
**validation losses**: D's loss and mean logit on 1000 held-out validation images (squares) next to 1000
training images (circles), against the same generated images. While they coincide D judges unseen
images as it judges its training set; a training curve drifting away from the validation one is D
memorising its training images. Below: the validation score over the run with the best point circled
(that iteration's generator is kept in `best.pt`), and the IS and class accuracy of the samples at each
evaluation.
"""),
              code(f"""
gan_helpers.plot_losses(history, title="{spec['title']}: training curves (moving average)")
gan_helpers.plot_metric({{"{spec['title']}": history}})
gan_helpers.plot_scores({{"{spec['title']}": history}})
plt.show()
best = gan_helpers.best_eval(history)
print(f"best validation score at iteration {{best['iter']}}: {{gan_helpers.format_score(best)}}")
"""),
              md("""
## 8. Samples from the best generator

The generator is reloaded from `best.pt` (the EMA weights when the run has an EMA), exactly as other notebooks will load it. First
64 samples, with labels cycling through the ten classes; then one row of eight samples per class, top to
bottom, each labelled with its class. The same seed always gives the same images.
"""),
              code(f"""
G = gan_helpers.load_generator(OUT_DIR / "best.pt", device)
gan_helpers.show_grid(gan_helpers.sample(G, 64), nrow=8, title="{spec['title']}: 64 samples from best.pt")
gan_helpers.show_class_rows(G, title="{spec['title']}: one row per class")
plt.show()
print(f"training state: {{OUT_DIR / 'last.pt'}}")
print(f"best generator: {{OUT_DIR / 'best.pt'}}")
print(f"history:        {{OUT_DIR / 'history.json'}}")
"""),
              md("""
## 9. Samples over training

At every evaluation the run saved a grid from the same 64 latent vectors and labels (labels cycling through
the classes, as in the grids above) to `snapshots/iter_NNNNNN.png`. The strip shows five of them spread
over the run; the slider below scrubs through all of them (it needs a running kernel).
"""),
              code("""
gan_helpers.snapshot_strip(OUT_DIR, title="{title}: the same latents and labels over training")
plt.show()
display(gan_helpers.snapshot_slider(OUT_DIR))
""".replace("{title}", spec["title"])),
              md("""
## 10. Interpolation

Top rows: within one class, G's images along a spherical interpolation (slerp) between two latent vectors;
smooth changes mean G has learned a continuous space rather than a lookup of memorised images. Bottom
rows: one latent vector, with the class conditioning moving from one class to another (conditional batch
norm's per-class scale and shift mixed linearly). The first and last image of each row are ordinary
samples.
"""),
              code("""
gan_helpers.interpolation_figure(G)
plt.show()
"""),
              md(f"""
## 11. Deliverables

The best generator and the run's history are copied to `model/{name}_best.pt` and
`model/{name}_history.json.gz`, where the final-evaluation notebook looks for them, and ten generated images,
one per class, are saved as PNGs in `{folder}/` (named `<index>_<class>.png`). A model already published
there is replaced only when this run's validation score is lower and was measured the same way (same
metric, feature network, sample counts and validation images); otherwise one line says why nothing was
published (set `FORCE_PUBLISH = True` to replace it anyway). Replaced files are moved to
`model/replaced/<time>/`, never deleted. A smoke run publishes nothing.
"""),
              code(f"""
if SMOKE:
    print("smoke run: nothing published to model/ or {folder}/")
else:
    try:
        published = gan_helpers.publish(OUT_DIR, "{name}", ROOT / "model", sample_dir=ROOT / "{folder}",
                                        force=FORCE_PUBLISH)
        print(f"published {{published}}, {{published.with_name('{name}_history.json.gz')}} and one image per class in {{ROOT / '{folder}'}}")
    except gan_helpers.GanError as exc:
        print(exc)
""")]
    if spec["attention"]:
        cells += [md("""
## 12. What the self-attention layers look at

A self-attention layer on an `s × s` feature map computes, for every position `j` (the *query*), a softmax
over all `s²` positions `i` (the *keys*): `attn[j, i]` is the share of position `i`'s value vector in the
output at `j`, and each row `attn[j, :]` sums to 1. The figures below show one row at a time:

- left panel: the image, with the query's cell outlined in red (one cell of a 16×16 map covers 2×2
  pixels);
- right panel: that row reshaped to `s × s`, enlarged to the image size and laid over it; bright cells are
  the positions the query draws on. A purely local layer would light up only around the cross; attention
  that follows an object's shape, or reaches across the image, is what convolution alone cannot do.

How much the maps matter is set by each layer's `gamma`: the layer outputs `gamma * attention + input`,
with `gamma` starting at 0. A `gamma` near 0 means the network still ignores the layer, however sharp its
maps look (a softmax always produces *some* map); a larger `|gamma|` means attention contributes to the
output. The values are printed first, then how much each layer's maps depend on their query
(`query_dependence`: 0 when every query attends in the same way, so the layer hands every position the same
summary of the image; up to 1 when each query looks at a spot of its own), over 64 images.

D is rebuilt from `last.pt` (only the training state holds D; it is D at the end of training, not at the
best validation iteration) and shown real validation images with their labels. G's maps are for its own
samples.
"""),
                  code("""
D = gan_helpers.load_discriminator(OUT_DIR / "last.pt", device)
print("G gamma:", [(name, round(m.gamma.item(), 4)) for name, m in gan_helpers.attention_layers(G)])
print("D gamma:", [(name, round(m.gamma.item(), 4)) for name, m in gan_helpers.attention_layers(D)])
for name, (images, attn) in {**gan_helpers.generator_attention(G, n=64),
                             **gan_helpers.discriminator_attention(D, val_data, n=64)}.items():
    print(f"{name}: query dependence {gan_helpers.query_dependence(attn):.3f}")
"""),
                  md("Generator: three query points on the first generated sample, one row per attention layer."),
                  code("""
gan_helpers.attention_figure(gan_helpers.generator_attention(G, n=8))
plt.show()
"""),
                  md("Discriminator: the same three query points on the first validation image."),
                  code("""
gan_helpers.attention_figure(gan_helpers.discriminator_attention(D, val_data))
plt.show()
"""),
                  md("""
**Explorer.** Pick a layer (G's layers act on generated samples, D's on real validation images), a sample,
and the query's row and column in the layer's map cells (0–15 on a 16×16 map, where one cell covers 2×2
pixels; every slider step moves the query by one cell). The colour bar gives the attention weights. The
picture updates as the controls move; it needs a running kernel, so it stays blank in a saved copy of the
notebook.
"""),
                  code("""
explorer = gan_helpers.attention_explorer(G, D, val_data)
display(explorer)
""")]
    write(f"{spec['title']}_train.ipynb", cells, gpu=True)


# ----------------------------------------------------------------------------------------------------
# the final evaluation notebook
# ----------------------------------------------------------------------------------------------------

FINAL_CELL = """
# The ultimate cell: runs on its own in a fresh kernel (from the repository root, notebooks/ or Colab).
import os
import sys
from pathlib import Path

ROOT = next(p.resolve() for p in (Path("."), Path(".."), Path("/content/gan-study-kit"))
            if (p / "gan_helpers.py").is_file())
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
import gan_helpers

gan_helpers.final_evaluation(
    ckpt=os.environ.get("GAN_FINAL_CKPT", str(ROOT / "model" / "sagan_best.pt")),
    data_dir=os.environ.get("GAN_DATA_DIR", str(ROOT / "data")),
    feature_net=os.environ.get("GAN_FEATURE_NET"),
    fid_weights=os.environ.get("GAN_FID_WEIGHTS"),
    n=int(os.environ.get("GAN_FINAL_N", "10000")),
);
"""


def final_notebook():
    cells = [md("""
# Final evaluation: DCGAN vs SAGAN

This notebook compares the two trained generators published by the training notebooks,
`model/dcgan_best.pt` and `model/sagan_best.pt` (each the generator at its best validation score), and
ends with the assignment's **ultimate cell**: an 8×8 grid from the best SAGAN generator and its FID on
the CIFAR-10 test set. That cell is self-contained: it can be run on its own in a fresh kernel.

All logic lives in [`gan_helpers.py`](../gan_helpers.py); the cells here only call it. With the
environment variable `GAN_SMOKE=1` the notebook first trains two tiny generators on synthetic images in a
temporary folder and evaluates those instead (this is how the test suite runs it).

The notebook is stored with the outputs of a run against the shipped models and the CIFAR-10 test images
with the offline networks (`GAN_FEATURE_NET=../shared/eval/cifar10_features.pt`, written by
`python tools/execute_final_notebook.py`): its FD, KID, IS and precision / recall are **proxies**, computed in
the features of a small CIFAR-10 classifier instead of Inception's, and are labelled so wherever they appear.
"""),
             md(SETUP_MD),
             code(SETUP_CODE.format(imports="import json\n", display="from IPython.display import Markdown, display\n")),
             md("""
## 2. Parameters

- `MODEL_DIR`: where the training notebooks published `dcgan_best.pt`, `sagan_best.pt` and the two
  `*_history.json.gz` files.
- `DATA_DIR`: CIFAR-10 (its 10,000 **test** images are used here, for the first time in the study).
- `FEATURE_NET`, `FID_WEIGHTS`: as in the training notebooks. `None` means real FID with pytorch-fid's
  Inception weights (downloaded, or a local file in `FID_WEIGHTS`); offline, `FEATURE_NET =
  ROOT.parent / "shared" / "eval" / "cifar10_features.pt"` gives a labelled proxy distance instead.
  `FEATURE_NET` starts from the environment variable `GAN_FEATURE_NET`, which the ultimate cell reads too.
- `CLASSIFIER`: the CIFAR-10 classifier for the class accuracy of the samples (and, with a proxy
  `FEATURE_NET`, the proxy IS); `None` is the kit's copy in `model/eval/`.
- `N_TEST`: generated images per test-set score (against all 10,000 test images).
- `CLASSES`: the classes shown side by side for the two models (0 airplane, 1 automobile, 3 cat, 7 horse).
"""),
             code("""
SMOKE = os.environ.get("GAN_SMOKE") == "1"  # train two tiny generators on synthetic data and use those
MODEL_DIR = ROOT / "model"       # dcgan_best.pt, sagan_best.pt, *_history.json.gz
DATA_DIR = ROOT / "data"         # CIFAR-10
FEATURE_NET = os.environ.get("GAN_FEATURE_NET")  # None: Inception FID; offline: ROOT.parent / "shared" / "eval" / "cifar10_features.pt" (proxy)
FID_WEIGHTS = None               # local copy of pytorch-fid's Inception weights, if there is no download
CLASSIFIER = None                # None: the kit's CIFAR-10 classifier (model/eval/); a TorchScript path; "none"
N_TEST = 10_000                  # generated images per test-set score
CLASSES = [0, 1, 3, 7]           # classes compared row by row
""", tags=["parameters"]),
             md("""
In smoke mode the next cell stands in for the two training notebooks (about half a minute): it trains a
tiny DCGAN (60 iterations) and a tiny SAGAN (10 iterations) on synthetic images, writes small synthetic
stand-ins for the training and test images and a random feature network, and points the final cell at them through the
environment variables it reads. Every score below then compares synthetic images, not CIFAR-10, in the
space of a random network. Otherwise the cell only names the published files.
"""),
             code("""
device = gan_helpers.setup(0)
STATS_DIR = ROOT / "data" / "fid_stats"
if SMOKE:
    smoke_dir = Path(tempfile.mkdtemp(prefix="final_smoke_"))
    train_data, val_data = gan_helpers.train_val_split(gan_helpers.synthetic_images(600), 100)
    FEATURE_NET = smoke_dir / "random_features.pt"   # one random network, one label, for every score below
    with gan_helpers.warnings_ignored():
        torch.jit.script(gan_helpers.RandomFeatures()).save(str(FEATURE_NET))
    smoke_features = gan_helpers.load_feature_net(FEATURE_NET)
    tiny = dict(g_ch=16, d_ch=16, batch_size=16, eval_samples=100, val_size=100)
    for name, cfg in {"dcgan": gan_helpers.Config.dcgan(iters=60, eval_every=30, **tiny),
                      "sagan": gan_helpers.Config.sagan(iters=10, eval_every=10, **tiny)}.items():
        print(f"smoke: training a tiny {name} for {cfg.iters} iterations on synthetic images")
        gan_helpers.train(cfg, smoke_dir / name, train_data, val_data, smoke_features, stats_dir=smoke_dir)
    CKPTS = {"DCGAN": smoke_dir / "dcgan" / "best.pt", "SAGAN": smoke_dir / "sagan" / "best.pt"}
    HISTORIES = {"DCGAN": smoke_dir / "dcgan" / "history.json", "SAGAN": smoke_dir / "sagan" / "history.json"}
    DATA_DIR = smoke_dir / "synthetic_data"          # named so that every score line says what it compares with
    for part, images in (("train", gan_helpers.synthetic_images(300)), ("test", gan_helpers.synthetic_images(200, seed=1))):
        gan_helpers.save_pngs(gan_helpers.to_float(images.x), DATA_DIR / part / "synthetic",
                              [f"{i:04d}" for i in range(len(images))])
    N_TEST, STATS_DIR, CLASSIFIER = 200, smoke_dir / "fid_stats", gan_helpers.random_classifier()
    os.environ.update(GAN_FINAL_CKPT=str(CKPTS["SAGAN"]), GAN_FINAL_N="200", GAN_DATA_DIR=str(DATA_DIR),
                      GAN_FEATURE_NET=str(FEATURE_NET))
else:
    CKPTS = {"DCGAN": MODEL_DIR / "dcgan_best.pt", "SAGAN": MODEL_DIR / "sagan_best.pt"}
    HISTORIES = {"DCGAN": MODEL_DIR / "dcgan_history.json.gz", "SAGAN": MODEL_DIR / "sagan_history.json.gz"}
"""),
             md("""
## 3. The two generators

Each checkpoint holds the generator's configuration, its sampling weights (the EMA of G's weights for both),
the iteration it was taken at and the validation score that selected it, so it rebuilds its network
without any other file.
"""),
             code("""
checkpoints = {name: gan_helpers.load_checkpoint(path) for name, path in CKPTS.items()}
generators = {name: gan_helpers.load_generator(path, device) for name, path in CKPTS.items()}
for name, G in generators.items():
    print(f"{name}: {CKPTS[name]} ({G.config.arch} architecture, {gan_helpers.count_parameters(G):,} parameters, "
          f"iteration {checkpoints[name]['iteration']})")
"""),
             md("""
## 4. Samples side by side

64 samples from each generator, drawn from the same latent vectors and labels (the labels cycle through
the ten classes).
"""),
             code("""
fig, axes = plt.subplots(1, 2, figsize=(16, 8))
for ax, (name, G) in zip(axes, generators.items()):
    gan_helpers.show_grid(gan_helpers.sample(G, 64), nrow=8, title=f"{name}: 64 samples", ax=ax)
plt.show()
"""),
             md("""
And a few classes row by row (one row of eight samples per class, in the order of `CLASSES`), which is
where the models' handling of object shape, the thing self-attention is meant to help with, is easiest
to compare.
"""),
             code("""
fig, axes = plt.subplots(1, 2, figsize=(16, 2 * len(CLASSES)))
for ax, (name, G) in zip(axes, generators.items()):
    gan_helpers.show_class_rows(G, CLASSES, title=name, ax=ax)
plt.show()
"""),
             md("""
## 5. Scores

The **validation** score is the one stored in each checkpoint: the best one seen during training, on the
5000 held-out training images. It chose the checkpoint, so it is slightly optimistic. The **test-set**
scores compare `N_TEST` new samples with the 10,000 CIFAR-10 test images, which played no part in
training or selection:

- FID (or its proxy) and KID: distance between the feature distributions; lower is better;
- IS: confident and varied predictions of the Inception network (or, as a proxy, the CIFAR-10
  classifier); higher is better;
- class accuracy: the share of samples the classifier assigns to the class they were generated for,
  beside its accuracy on the real test images (the most a perfect generator could score with it);
- diversity: per class, the share of pairs of samples that are near-duplicates (closer in feature space
  than a quarter of the mean distance between two real images of the class), beside the same for real
  test images, and the median distance from each sample to its nearest other sample in pixel space as a
  multiple of the same for real test images (below 1: samples repeat each other);
- precision and recall (Kynkäänniemi et al. 2019) in the same feature space as the FID: the share of
  samples that fall inside the real images' manifold (each test image's ball reaching to its third nearest
  neighbour), and the share of test images inside the samples' manifold; density and coverage (Naeem et
  al. 2020) are their outlier-robust versions. Beside them, the same for as many real training images:
  what a generator that reproduced the data would score.

Every number names its metric and whether it is a proxy; FID depends on the sample counts, so only
scores with equal counts are comparable. When the test images or the feature network cannot be had,
one line says what is missing.
"""),
             code("""
try:
    features = gan_helpers.load_feature_net(FEATURE_NET, FID_WEIGHTS, device, classifier=CLASSIFIER)
except gan_helpers.GanError as exc:
    features = None
    print(f"test-set scores not computed: {exc}")
results = {}
for name, G in generators.items():
    print(f"{name} validation: {gan_helpers.format_score(checkpoints[name]['metrics'])}")
    if features is not None:
        try:
            results[name] = gan_helpers.test_set_score(G, DATA_DIR, features, N_TEST, stats_dir=STATS_DIR)
            print(f"{name} test set ({results[name]['data']}): {gan_helpers.format_score(results[name])}")
            print(f"{name} diversity:  {gan_helpers.format_diversity(results[name])}")
        except gan_helpers.GanError as exc:
            print(f"{name} test set: not computed: {exc}")
if results:
    print(gan_helpers.score_table(results))
"""),
             md("""
## 6. Validation curves

The validation score of both runs over their iterations, read from the published histories, with each
run's best point circled; then the IS and class accuracy at each evaluation (histories written before
these were logged have none); below them, each run's losses with D's validation losses.
"""),
             code("""
histories = {name: gan_helpers.read_history(path) for name, path in HISTORIES.items() if path.is_file()}
if histories:
    gan_helpers.plot_metric(histories)
    gan_helpers.plot_scores(histories)
    for name, history in histories.items():
        gan_helpers.plot_losses(history, title=f"{name}: training curves (moving average)")
    plt.show()
else:
    print(f"no history files found in {MODEL_DIR} (the training notebooks publish them)")
"""),
             md("""
## 7. Interpolation

For each generator: within a class, a spherical interpolation between two latent vectors; between
classes, one latent vector with the class conditioning mixed from one class into another. The ends of
every row are ordinary samples; what lies between shows whether G moves smoothly through its latent space
and between its classes.
"""),
             code("""
for name, G in generators.items():
    gan_helpers.interpolation_figure(G).suptitle(f"{name}: interpolation", y=1.02)
plt.show()
"""),
             md("""
## 8. SAGAN's attention

What the self-attention layers of the SAGAN generator look at (how to read these maps is explained at
the end of `SAGAN_train.ipynb`): each panel pair shows a query position outlined on a generated image and
the softmax weights that query gives to every position of the layer's feature map. `gamma` tells how much
each layer's output uses attention at all, and the query dependence how much a layer's maps change with
the query (0: one summary of the image for every position).
"""),
             code("""
G = generators["SAGAN"]
print("gamma:", [(name, round(m.gamma.item(), 4)) for name, m in gan_helpers.attention_layers(G)])
for name, (images, attn) in gan_helpers.generator_attention(G, n=64).items():
    print(f"{name}: query dependence {gan_helpers.query_dependence(attn):.3f}")
gan_helpers.attention_figure(gan_helpers.generator_attention(G, n=8))
plt.show()
"""),
             md("The explorer (generator only here; the SAGAN training notebook adds the discriminator):"),
             code("""
explorer = gan_helpers.attention_explorer(G, None)
display(explorer)
"""),
             md("""
## 9. The studies

What each ingredient buys, measured over seeds at equal budget (`studies/*.json`, run with
`python gan_helpers.py study run`; protocol and results in `docs/studies.md`). For each study with a
results file: per arm, mean ± std over seeds of the best and final validation score, the score at equal
iterations and at equal training time, the class accuracy of the best checkpoint's samples, images seen
and seconds per iteration; a star marks a gap to the best arm larger than both spreads added. Then the mean
validation curves with a band of ± one standard deviation. A study still running shows the seeds it has.
"""),
             code("""
study_files = sorted((MODEL_DIR / "studies").glob("*/results.json"))
if not study_files:
    print(f"no study results in {MODEL_DIR / 'studies'} yet: python gan_helpers.py study run studies/<name>.json ...")
for path in study_files:
    results = json.loads(path.read_text())
    p = results["protocol"]
    display(Markdown(f"**Study `{results['study']}`**: {results['description']}\\n\\n" + gan_helpers.study_table(results)
                     + f"\\n\\n{p['metric']}, {p['n_fake']:,} generated vs {p['n_real']:,} validation images; "
                     f"runs not finished: {', '.join(results['missing']) or 'none'}"))
    gan_helpers.plot_study(results)
    plt.show()
"""),
             md("""
## 10. The ultimate cell

The assignment's final cell: it loads the best SAGAN generator, shows an 8×8 grid of its samples and
prints its FID (with KID, IS, class accuracy, precision and recall and the diversity measures) on the
CIFAR-10 test set with the sample counts. It imports everything it needs, so it
runs on its own in a fresh kernel; for the same reason it ignores the parameters cell above. Environment
variables change its inputs without editing it:
`GAN_FINAL_CKPT` (another checkpoint, e.g. `model/dcgan_best.pt`), `GAN_DATA_DIR`, `GAN_FEATURE_NET`
(an offline proxy network), `GAN_FID_WEIGHTS` (a local copy of the Inception weights) and `GAN_FINAL_N`
(generated images, default 10,000). If the test images or the Inception weights are missing, the grid is
still shown and one line says what is missing and how to supply it.
"""),
             code(FINAL_CELL)]
    write("final_evaluation.ipynb", cells)


def more_gans_notebook():
    """The InfoGAN and BiGAN notebook: the shared setup, then the cells of tools/more_gans_cells.py."""
    from more_gans_cells import CELLS
    notebook = [md(text) if kind == "md" else code(text, *rest) for kind, text, *rest in CELLS]
    setup = [md(SETUP_MD), code(SETUP_CODE.format(imports="", display="from IPython.display import Markdown, display\n"))]
    cells = notebook[:1] + setup + notebook[1:]          # its title and introduction first, as in the others
    write("more_gans.ipynb", cells)


if __name__ == "__main__":
    if len(sys.argv) > 1:  # another output folder (the tests compare its files with notebooks/)
        NB_DIR = Path(sys.argv[1])
    NB_DIR.mkdir(exist_ok=True)
    train_notebook("dcgan")
    train_notebook("sagan")
    final_notebook()
    more_gans_notebook()
