"""Make `import gan_helpers` work however pytest is started (the module lives in the repository root), and
fixtures shared by the test files."""
import sys
from pathlib import Path
from unittest import mock

import pytest
import torch

ROOT = str(Path(__file__).resolve().parents[1])
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

import gan_helpers as gh  # noqa: E402  (after the path is set)


@pytest.fixture(scope="session")
def random_inception_home(tmp_path_factory) -> Path:
    """A TORCH_HOME holding a randomly initialised state dict under pytorch-fid's weight file name."""
    import pytorch_fid.inception as pfi
    home = tmp_path_factory.mktemp("torch_home")
    with mock.patch.object(pfi, "load_state_dict_from_url", lambda *a, **k: {}), \
            mock.patch.object(torch.nn.Module, "load_state_dict", lambda self, *a, **k: None):
        torch.manual_seed(0)
        model = pfi.fid_inception_v3()
    path = home / "hub" / "checkpoints" / gh.INCEPTION_WEIGHTS_FILE
    path.parent.mkdir(parents=True)
    torch.save(model.state_dict(), path)
    return home
