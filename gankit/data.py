"""Data: load_dataset() reads CIFAR-10 or any image folder (readers registered in DATASETS) at Config.img_size,
selects Config.classes and splits off validation (and test) images; an ImageSet holds them as one uint8 tensor."""
from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any
import numpy as np
import torch
from torch import Tensor

from .core import CIFAR10_CLASSES, GanError, IMAGE_EXTENSIONS
from .registry import DATASETS, DatasetReader
from .config import Config

__all__ = ['ImageSet', 'to_float', 'to_uint8', 'fit_image', 'read_images', 'image_files', 'read_image_folder', 'load_cifar10', 'train_val_split', 'dataset_kind', 'load_dataset', 'split_record', 'check_split', 'check_data', 'config_for_data', 'synthetic_images']


@dataclass
class ImageSet:
    """Images `x` (N, 3, S, S) uint8 and labels `y` (N,) int64, on one device."""
    x: Tensor
    y: Tensor
    classes: tuple[str, ...] = CIFAR10_CLASSES  # label i names classes[i]; () = unlabelled (y all 0)
    source: str = ""               # where the images came from (recorded in checkpoint summaries)
    split: dict[str, Any] = dataclasses.field(default_factory=dict)  # how it was selected (load_dataset)

    def __len__(self) -> int:
        return len(self.y)

    def to(self, device: torch.device | str) -> "ImageSet":
        return ImageSet(self.x.to(device), self.y.to(device), self.classes, self.source, self.split)

    def subset(self, idx: Tensor) -> "ImageSet":
        return ImageSet(self.x[idx], self.y[idx], self.classes, self.source, self.split)

    def with_split(self, **entries: Any) -> "ImageSet":
        return ImageSet(self.x, self.y, self.classes, self.source, {**self.split, **entries})

    @property
    def key(self) -> str:
        """Short hash of the source and split: the cache key of this set's real-image statistics."""
        text = json.dumps({"source": self.source, **self.split}, sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:10]

    def batch(self, n: int, hflip: bool = False) -> tuple[Tensor, Tensor]:
        """Random batch (with replacement, global torch RNG): images (n, 3, S, S) in [-1, 1], labels (n,)."""
        idx = torch.randint(len(self), (n,), device=self.x.device)
        x = to_float(self.x[idx])
        if hflip:
            flip = torch.rand(n, device=x.device) < 0.5
            x = torch.where(flip[:, None, None, None], x.flip(3), x)
        return x, self.y[idx]


def to_float(x: Tensor) -> Tensor:
    """uint8 [0, 255] -> float [-1, 1]."""
    return x.float().div(127.5).sub(1.0)


def to_uint8(x: Tensor) -> Tensor:
    """float [-1, 1] -> uint8 [0, 255], rounded as when saving a PNG (the way FID sees generated images)."""
    return x.add(1.0).mul(127.5).add(0.5).clamp(0, 255).to(torch.uint8)


def _image_folder_root(data_dir: Path) -> Path | None:
    """The folder holding train/ and test/ class folders: data_dir itself or data_dir/cifar10-jpeg."""
    for root in (data_dir, data_dir / "cifar10-jpeg"):
        if (root / "train").is_dir() and (root / "test").is_dir():
            return root
    return None


def fit_image(im: Any, size: int) -> Any:
    """A PIL image centre-cropped to a square and resized (bicubic, antialiased) to size x size; unchanged
    when it already is. The one place where images are brought to Config.img_size."""
    from PIL import Image
    w, h = im.size
    if (w, h) == (size, size):
        return im
    side = min(w, h)
    left, top = (w - side) // 2, (h - side) // 2
    return im.crop((left, top, left + side, top + side)).resize((size, size), Image.BICUBIC)


def read_images(paths: list[Path], size: int | None = None) -> Tensor:
    """Image files -> uint8 (N, 3, H, W), converted to RGB (as pytorch-fid does); fitted to size x size
    (fit_image) when `size`, else they must all have one size."""
    from PIL import Image
    arrays = []
    for path in paths:
        try:
            with Image.open(path) as im:
                im = im.convert("RGB")
                arrays.append(np.asarray(fit_image(im, size) if size else im, dtype=np.uint8))
        except (OSError, ValueError) as exc:  # PIL.UnidentifiedImageError is an OSError; truncated files too
            raise GanError(f"cannot read {path} as an image ({type(exc).__name__}: {str(exc)[:80]}); "
                           f"remove or replace that file") from exc
    if len({a.shape for a in arrays}) > 1:
        raise GanError(f"images in {paths[0].parent} differ in size: {sorted({a.shape for a in arrays})[:3]}")
    return torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).contiguous()  # (N, H, W, 3) -> (N, 3, H, W)


def image_files(folder: Path) -> list[Path]:
    """Image files directly in `folder`, sorted by name."""
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS)


def read_image_folder(folder: Path, size: int = 32) -> ImageSet:
    """Read `<folder>/<class>/*.{png,jpg}` (class folders sorted by name; labels 0, 1, ...) or, without
    class folders, `<folder>/*.{png,jpg}` (unlabelled) into an ImageSet of size x size images."""
    classes = tuple(sorted(p.name for p in folder.iterdir() if p.is_dir() and image_files(p)))
    files = [image_files(folder / name) for name in classes] if classes else [image_files(folder)]
    if not any(files):
        raise GanError(f"no images found in {folder} or {folder}/<class>/ ({', '.join(IMAGE_EXTENSIONS)})")
    labels = torch.cat([torch.full((len(f),), i, dtype=torch.int64) for i, f in enumerate(files)])
    return ImageSet(read_images([p for f in files for p in f], size), labels, classes, f"image folder {folder}")


def load_cifar10(data_dir: str | Path = "./data", train: bool = True, download: bool = True,
                 size: int = 32) -> ImageSet:
    """CIFAR-10 train (50,000) or test (10,000) images at size x size, from the first source found in
    `data_dir`: torchvision's `cifar-10-batches-py`, an image-folder tree `{train,test}/<class>/*` (directly
    or under `cifar10-jpeg/`), else torchvision's download into `data_dir`."""
    data_dir = Path(data_dir)
    folder_root = _image_folder_root(data_dir)
    if folder_root is not None:
        return read_image_folder(folder_root / ("train" if train else "test"), size)
    import torchvision
    from PIL import Image
    has_batches = (data_dir / "cifar-10-batches-py").is_dir()
    if not has_batches and not download:
        raise GanError(f"CIFAR-10 not found in {data_dir}: pass data_dir (--data-dir) pointing to a folder "
                       f"with cifar-10-batches-py or {{train,test}}/<class>/ images, or allow the download")
    try:
        ds = torchvision.datasets.CIFAR10(str(data_dir), train=train, download=not has_batches)
    except Exception as exc:  # network errors come in many types (URLError, socket errors, HTTP errors)
        raise GanError(f"CIFAR-10 is not in {data_dir} and downloading it failed ({type(exc).__name__}: "
                       f"{exc}); pass data_dir (--data-dir) pointing to an existing cifar-10-batches-py "
                       f"folder or an image-folder tree {{train,test}}/<class>/*.png|jpg") from exc
    arrays = ds.data if size == 32 else np.stack([np.asarray(fit_image(Image.fromarray(a), size)) for a in ds.data])
    x = torch.from_numpy(arrays).permute(0, 3, 1, 2).contiguous()  # (N, S, S, 3) -> (N, 3, S, S)
    return ImageSet(x, torch.tensor(ds.targets, dtype=torch.int64), tuple(ds.classes),
                    f"torchvision CIFAR-10 ({data_dir / 'cifar-10-batches-py'})")


def _holdout(data: ImageSet, sizes: tuple[int, ...], split_seed: int) -> list[ImageSet]:
    """Disjoint subsets of `sizes` images each, then the rest, from one fixed permutation of `data`."""
    perm = torch.randperm(len(data), generator=torch.Generator().manual_seed(split_seed))
    ends = np.cumsum((0,) + sizes).tolist()
    return [data.subset(perm[a:b]) for a, b in zip(ends, ends[1:])] + [data.subset(perm[ends[-1]:])]


def train_val_split(data: ImageSet, val_size: int = 5000, split_seed: int = 0) -> tuple[ImageSet, ImageSet]:
    """Fixed split of the training images (45,000 / 5,000 for CIFAR-10), independent of the run's seed."""
    if not 0 < val_size < len(data):
        raise GanError(f"val_size must be between 1 and {len(data) - 1}, got {val_size}")
    val, train = _holdout(data, (val_size,), split_seed)
    return (train.with_split(val_size=val_size, split_seed=split_seed, part="train"),
            val.with_split(val_size=val_size, split_seed=split_seed, part="val"))


def _select_classes(data: ImageSet, names: tuple[str, ...]) -> ImageSet:
    """The images of the classes `names` (all when empty), relabelled 0..k-1 in the order of `names`."""
    if not names:
        return data
    missing = [n for n in names if n not in data.classes]
    if missing:
        raise GanError(f"classes {missing} are not in {data.source}; its classes: {list(data.classes) or 'none'}")
    old = torch.tensor([data.classes.index(n) for n in names])
    keep = (data.y[:, None] == old[None]).nonzero()                     # (M, 2): row, position in names
    return ImageSet(data.x[keep[:, 0]], keep[:, 1].clone(), tuple(names), data.source)


def dataset_kind(dataset: str, data_dir: str | Path) -> str:
    """Resolve Config.dataset="auto": "cifar10" when data_dir holds cifar-10-batches-py or no images at all
    (torchvision then downloads CIFAR-10), else "folder"."""
    data_dir = Path(data_dir)
    if dataset != "auto":
        return dataset
    if (data_dir / "cifar-10-batches-py").is_dir() or not data_dir.is_dir():
        return "cifar10"
    has_images = any(p.suffix.lower() in IMAGE_EXTENSIONS for p in data_dir.rglob("*"))
    return "folder" if has_images else "cifar10"


def _read_folder(data_dir: Path, train: bool, size: int) -> ImageSet:
    """An image folder's training images (`train/`, or the folder itself) or test images (`test/`)."""
    if not data_dir.is_dir():
        raise GanError(f"image folder {data_dir} not found (--data-dir)")
    root = _image_folder_root(data_dir) or data_dir
    return read_image_folder((root / "train" if (root / "train").is_dir() else root) if train else root / "test", size)


DATASETS.add("cifar10", DatasetReader(lambda data_dir, train, size: load_cifar10(data_dir, train=train, size=size),
                                      has_test=lambda data_dir: True))
DATASETS.add("folder", DatasetReader(_read_folder,
                                     has_test=lambda data_dir: ((_image_folder_root(data_dir) or data_dir) / "test").is_dir()))


def load_dataset(cfg: Config, data_dir: str | Path = "data",
                 parts: tuple[str, ...] = ("train", "val")) -> tuple[ImageSet, ...]:
    """The images of `parts` ("train", "val", "test") of the dataset cfg describes, in that order, at
    cfg.img_size, limited to cfg.classes. The one entry point for data: the command line, the notebooks,
    the validation and test statistics all come through here.

    cfg.dataset picks the reader (DATASETS): CIFAR-10 (see load_cifar10) or an image folder: `{train,test}/`
    (or `train/` alone, or the class folders themselves) holding `<class>/` folders, or images directly
    for an unlabelled set. The validation set is cfg.val_size images of the training images, drawn with
    cfg.split_seed; without a test/ folder, the next cfg.val_size images of the same draw are the test set.
    Every returned set's `split` records all of this (checkpoints store it; statistics are cached by it)."""
    data_dir = Path(data_dir)
    kind = dataset_kind(cfg.dataset, data_dir)
    reader = DATASETS.pick(kind)
    has_test = reader.has_test(data_dir)

    def read(train: bool) -> ImageSet:
        return reader.read(data_dir, train, cfg.img_size)

    need_train = "train" in parts or "val" in parts or not has_test
    full = _select_classes(read(True), cfg.classes) if need_train else None
    split = dict(dataset=kind, img_size=cfg.img_size, classes=list(cfg.classes), val_size=cfg.val_size,
                 split_seed=cfg.split_seed, test="test folder" if has_test else "held out")
    sets: dict[str, ImageSet] = {}
    if full is not None:
        n_held = cfg.val_size * (1 if has_test else 2)
        if n_held >= len(full):
            raise GanError(f"{full.source}{f' (classes {list(cfg.classes)})' if cfg.classes else ''} has "
                           f"{len(full)} images: val_size={cfg.val_size} leaves none for training"
                           f"{'' if has_test else ' (without a test/ folder, as many again are held out for testing)'}"
                           f"; set val_size={max(1, len(full) // 10)}")
        held = _holdout(full, (cfg.val_size,) * (n_held // cfg.val_size), cfg.split_seed)
        sets.update(val=held[0], train=held[-1], **({} if has_test else {"test": held[1]}))
    if has_test and "test" in parts:
        sets["test"] = _select_classes(read(False), cfg.classes)
    return tuple(sets[p].with_split(**split, part=p) for p in parts)


def split_record(data: ImageSet) -> dict[str, Any]:
    """What a checkpoint stores about the data it was selected on: the source, its class names and the
    split (load_dataset's `split`, without the part name)."""
    return {"source": data.source, "class_names": list(data.classes),
            **{k: v for k, v in data.split.items() if k != "part"}}


def check_split(recorded: dict[str, Any], data: ImageSet) -> None:
    """GanError unless `data` comes from the split a checkpoint recorded (split_record): same dataset kind,
    image size, classes, validation size and split seed. Sources are not compared (folders move between
    machines); a checkpoint trained on in-memory images (no dataset recorded) is not checked."""
    if "dataset" not in recorded:
        return
    now = split_record(data)
    keys = ("dataset", "img_size", "classes", "class_names", "val_size", "split_seed", "test")
    diff = [f"{k}: {recorded.get(k)!r} in the checkpoint vs {now.get(k)!r} here" for k in keys
            if k in now and recorded.get(k) != now.get(k)]
    if diff:
        raise GanError(f"the data in {data.source} is not the split this checkpoint was selected on "
                       f"({'; '.join(diff)}): pass the checkpoint's data folder (--data-dir)")


def check_data(cfg: Config, data: ImageSet) -> None:
    """GanError when `data` does not fit cfg: image size, or the number of classes of a conditional model."""
    side = data.x.shape[-1]
    if side != cfg.img_size:
        raise GanError(f"images are {side}x{side} but img_size={cfg.img_size}: set img_size={side} or load the "
                       f"images with load_dataset(cfg, ...), which resizes them")
    if cfg.cond_classes and not data.classes:
        raise GanError(f"cond={cfg.cond!r} needs labels, but {data.source} is unlabelled (no <class>/ folders): "
                       f"set cond=none")
    if cfg.cond_classes and cfg.cond_classes != len(data.classes):
        raise GanError(f"cond={cfg.cond!r} with num_classes={cfg.num_classes}, but the data has "
                       f"{len(data.classes)} classes {list(data.classes)[:10]}: set num_classes={len(data.classes)}")


def config_for_data(cfg: Config, data: ImageSet) -> Config:
    """cfg with num_classes taken from the data's classes when the model is conditional (a class subset or
    an image folder sets it; the command line and the notebooks train with this), validated."""
    if not cfg.cond_classes:
        return cfg.validate()
    return dataclasses.replace(cfg, num_classes=len(data.classes)).validate()


def synthetic_images(n: int, num_classes: int = 10, seed: int = 0, size: int = 32) -> ImageSet:
    """Small stand-in for CIFAR-10 (tests, GAN_SMOKE=1 notebooks): class c is a soft square of its own
    colour and place on a noisy background, so a GAN can learn it in a few hundred steps. (n, 3, size, size)."""
    gen = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % num_classes
    palette = torch.rand(num_classes, 3, generator=gen) * 2 - 1                 # (K, 3) in [-1, 1]
    scale = size / 32
    rows = torch.arange(size).view(size, 1).float() / scale
    cols = torch.arange(size).view(1, size).float() / scale
    centre = 8 + (torch.arange(num_classes) * 7 % 16).float()                    # (K,) square centres
    mask = ((rows - centre[y].view(n, 1, 1)).abs() < 6) & ((cols - centre.flip(0)[y].view(n, 1, 1)).abs() < 6)
    x = 0.2 * torch.randn(n, 3, size, size, generator=gen) - 0.5
    x = torch.where(mask[:, None], palette[y][:, :, None, None], x)
    names = tuple(CIFAR10_CLASSES[:num_classes]) if num_classes <= 10 else tuple(map(str, range(num_classes)))
    return ImageSet(to_uint8(x.clamp(-1, 1)), y, names, f"synthetic squares ({n} images, seed {seed})")
