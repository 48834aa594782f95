"""Cells of a notebook on the two other GANs (InfoGAN's codes, BiGAN's encoder), for tools/make_notebooks.py to wire
in after its shared setup cells (SETUP_MD, SETUP_CODE: they define ROOT and import gan_helpers). Each entry is
("md", text) or ("code", text[, tags]); code cells only call gan_helpers (no def or class). With GAN_SMOKE=1
they train tiny models on synthetic images in seconds."""

CELLS = [
    ("md", """
# Two more GANs from the same models: InfoGAN and BiGAN

Both are settings of the kit's DCGAN (the reference report's unconditional recipe, `ref_dcgan`):

- **InfoGAN** (Chen et al. 2016) adds codes to G's input, a categorical one (`INFO_CAT` values) and continuous
  ones (`INFO_CONT`, in [-1, 1]), and a head Q on the discriminator that reads them back from the images. D and G
  both pay for what Q gets wrong, so G learns to make the codes visible. Nothing tells it what they should mean;
  whether the categorical code ends up sorting images by CIFAR-10 class is measured below (*cluster accuracy*).
- **BiGAN / ALI** (Donahue et al. 2017; Dumoulin et al. 2017) trains an encoder E (image -> z) with G. D sees pairs:
  a real image with E's latent, or a generated image with its own latent. If E learns to invert G, its features
  describe images; a linear classifier on them (a *probe*) measures how much of the class they carry.
"""),
    ("code", """
SMOKE = os.environ.get("GAN_SMOKE") == "1"  # tiny runs on synthetic data (tests)
DATA_DIR = ROOT / "data"         # CIFAR-10 (downloaded here when absent)
FEATURE_NET = None               # None: Inception FID; offline: ROOT.parent / "shared" / "eval" / "cifar10_features.pt"
FID_WEIGHTS = None               # local copy of pytorch-fid's Inception weights, if there is no download
CLASSIFIER = None                # None: the kit's CIFAR-10 classifier (model/eval/)
ITERS = 15_000                   # per model (about two hours each on a 2-core CPU)
TIME_LIMIT_MINUTES = 120         # each run stops here and resumes next time (last.pt)
INFO_CAT, INFO_CONT = 10, 2      # InfoGAN's codes (the paper's MNIST setting)
OUT_DIR = ROOT / "runs"          # runs/infogan, runs/bigan
""", ["parameters"]),
    ("code", """
overrides = dict(iters=ITERS, eval_every=1000, eval_samples=5000)
if SMOKE:
    overrides = dict(iters=20, eval_every=10, eval_samples=200, g_ch=16, d_ch=16, batch_size=16)
    OUT_DIR = Path(tempfile.mkdtemp(prefix="more_gans_smoke_"))
    CLASSIFIER = gan_helpers.random_classifier()  # a random stand-in: the plumbing runs, the numbers mean nothing
info_cfg = gan_helpers.Config.reference_dcgan(name="infogan", info_cat=INFO_CAT, info_cont=INFO_CONT, **overrides)
bigan_cfg = gan_helpers.Config.reference_dcgan(name="bigan", encoder="bigan", **overrides)
device = gan_helpers.setup(info_cfg.seed)
if SMOKE:
    train_data, val_data = gan_helpers.train_val_split(gan_helpers.synthetic_images(1200), 200)
    test_data = val_data
else:
    train_data, val_data, test_data = gan_helpers.load_dataset(info_cfg, DATA_DIR, ("train", "val", "test"))
features = gan_helpers.load_feature_net(gan_helpers.RandomFeatures() if SMOKE else FEATURE_NET, FID_WEIGHTS, device,
                                        classifier=CLASSIFIER)
print(f"{len(train_data):,} training, {len(val_data):,} validation, {len(test_data):,} test images; device {device}")
"""),
    ("md", """
## Training

Both runs use the kit's usual loop; only their configs differ. The validation score (FD) selects `best.pt` as for
any run. A run stopped by the time limit resumes where it stopped when this cell runs again. BiGAN's E lives inside
G: G's optimizer trains it and `best.pt` carries it, so the probe below runs from the model file.
"""),
    ("code", """
generators = {}
for name, cfg in (("infogan", info_cfg), ("bigan", bigan_cfg)):
    history = gan_helpers.train(cfg, OUT_DIR / name, train_data, val_data, features, device, resume=True,
                                time_limit=None if SMOKE else TIME_LIMIT_MINUTES * 60)
    generators[name] = gan_helpers.load_generator(OUT_DIR / name / "best.pt", device)
    gan_helpers.plot_losses(history, title=name)
info_G, bigan_G = generators["infogan"], generators["bigan"]
"""),
    ("md", """
## InfoGAN

**Traversals.** Each row holds one value of the categorical code, each column one step of a continuous code from
-1 to 1; z and the other codes stay fixed. A code that means something changes the images the same way along every
row.
"""),
    ("code", """
gan_helpers.traversal_figure(info_G, cont_index=0, steps=8, seed=0);
"""),
    ("code", """
gan_helpers.traversal_figure(info_G, cont_index=1 if INFO_CONT > 1 else 0, steps=8, seed=1);
"""),
    ("md", """
**Cluster accuracy.** For each value of the categorical code, images with that value are classified by the
CIFAR-10 classifier; the values are matched one-to-one to classes so that the most images agree (the Hungarian
algorithm), and the accuracy under that matching is reported. The same predictions with shuffled code values give
the baseline that matching alone reaches.
"""),
    ("code", """
clusters = gan_helpers.cluster_accuracy(info_G, features.classifier, per_value=100 if SMOKE else 1000)
print(gan_helpers.format_probes(clusters))
print("code value -> class:", {v: test_data.classes[c] for v, c in clusters["mapping"].items() if c < len(test_data.classes)})
"""),
    ("md", """
## BiGAN

**Reconstructions.** Test images (odd rows) and G(E(x)) (even rows). BiGAN never trains on a reconstruction error;
what survives the round trip is what E and G agree on.
"""),
    ("code", """
gan_helpers.reconstruction_figure(bigan_G, gan_helpers.to_float(test_data.x[:32]));
"""),
    ("md", """
**Linear probe.** Logistic regression on E's features of training images, scored on test images, beside the
same probe on E as it was initialised (the run's own starting weights) and on raw pixels.
"""),
    ("code", """
probe = gan_helpers.probe_encoder(bigan_G, train_data, test_data, n_train=500 if SMOKE else 10_000,
                                  n_test=200 if SMOKE else 10_000)
print(gan_helpers.format_probes(probe))
"""),
    ("md", """
## Sample quality

Both generators are scored like any other (FD, IS, class accuracy where it applies, diversity) on the test set.
"""),
    ("code", """
real = gan_helpers.real_stats(test_data, "test", features, OUT_DIR / "fid_stats")
scores = {name: gan_helpers.sample_and_score(G, real, features, 200 if SMOKE else 10_000, seed=0, test=test_data)
          for name, G in (("InfoGAN", info_G), ("BiGAN", bigan_G))}
display(Markdown(gan_helpers.score_table(scores)))
"""),
]
