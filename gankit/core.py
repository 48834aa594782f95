"""What every layer of the kit shares: the user-facing error, the CIFAR-10 class names, the image sizes and file
types, and the two evaluation decisions made once for the whole kit (how many images the test-set scores use, and
which validation score selects a checkpoint)."""
from __future__ import annotations

__all__ = ['CIFAR10_CLASSES', 'IMAGE_EXTENSIONS', 'IMG_SIZES', 'TEST_SAMPLES', 'SELECTION_KEY', 'GanError']

CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer",
                   "dog", "frog", "horse", "ship", "truck")
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp")
IMG_SIZES = (32, 64, 128)     # Config.img_size: every architecture builds for each of these
TEST_SAMPLES = 10_000         # generated images of a test-set score (against CIFAR-10's 10,000 test images)
SELECTION_KEY = "fd"          # the evaluation entry a run's best checkpoint minimises: the Frechet distance


class GanError(Exception):
    """An error with a message meant for the user (bad input, missing file); the CLI prints it in one line."""
