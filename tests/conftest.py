"""Make `import gan_helpers` work however pytest is started (the module lives in the repository root), share the
cores among pytest-xdist's workers (`-n auto`), and fixtures shared by the test files."""
import os
import sys
from pathlib import Path
from unittest import mock

import pytest
import torch
import torch.nn as nn

ROOT = str(Path(__file__).resolve().parents[1])
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from helpers import tiny  # noqa: E402

import gan_helpers as gh  # noqa: E402  (after the path is set)
import gankit  # noqa: E402

if os.environ.get("PYTEST_XDIST_WORKER_COUNT"):   # each worker's torch takes its share of the cores, not all of them
    torch.set_num_threads(max(1, (os.cpu_count() or 1) // int(os.environ["PYTEST_XDIST_WORKER_COUNT"])))


@pytest.fixture(scope="session")
def random_inception_home(tmp_path_factory) -> Path:
    """A TORCH_HOME holding a randomly initialised state dict under pytorch-fid's weight file name."""
    import pytorch_fid.inception as pfi
    home = tmp_path_factory.mktemp("torch_home")
    with mock.patch.object(pfi, "load_state_dict_from_url", lambda *a, **k: {}), \
            mock.patch.object(torch.nn.Module, "load_state_dict", lambda self, *a, **k: None):
        torch.manual_seed(0)
        model = pfi.fid_inception_v3()
    path = home / "hub" / "checkpoints" / gankit.features.INCEPTION_WEIGHTS_FILE
    path.parent.mkdir(parents=True)
    torch.save(model.state_dict(), path)
    return home


@pytest.fixture(scope="module")
def conditional_G() -> nn.Module:
    G, _ = gh.build_models(tiny())
    torch.manual_seed(0)
    for m in G.modules():                                        # classes that differ, unlike at initialisation
        if isinstance(m, gankit.layers.ConditionalBatchNorm):
            nn.init.normal_(m.gain.weight, 1.0, 0.5)
            nn.init.normal_(m.bias.weight, 0.0, 0.5)
    return G


@pytest.fixture(scope="module")
def short_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    train_data, val_data = gh.train_val_split(gh.synthetic_images(300), val_size=60)
    features = gh.load_feature_net(gh.RandomFeatures(), classifier=gh.random_classifier())
    cfg = tiny()
    history = gh.train(cfg, out, train_data, val_data, features, progress=False)
    return cfg, out, history, train_data, val_data
