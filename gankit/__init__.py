"""gankit: the implementation behind gan_helpers.py, in small modules imported in one direction.

LAYERS lists the modules from the bottom up; a module imports only modules listed before it
(tests/test_layout.py reads the imports and fails on any other). Importing the package imports every module, so
every registry (gankit/registry.py) is complete before anything is built.
"""
from __future__ import annotations

import importlib

LAYERS = (
    "core",              # GanError, CIFAR-10 class names, image sizes, TEST_SAMPLES, SELECTION_KEY
    "registry",          # ARCHS, LOSSES, CONDITIONINGS, AUGMENTS, DATASETS, METRICS; the model protocol
    "device",            # seeds, devices, mixed precision, torch.compile, eval_mode
    "config",            # Config (every choice of a run), presets, validation
    "tables",            # markdown / LaTeX tables
    "files",             # atomic file writes
    "data",              # ImageSet, CIFAR-10 and image folders, splits
    "attention",         # SelfAttention (gamma starts at 0)
    "layers",            # conditional BatchNorm, spectral norm, where labels enter G and D
    "latent",            # InfoGAN's codes and Q head, BiGAN's encoder and joint head
    "models.base",       # what every generator shares
    "models.mlp",        # MLP G and D
    "models.dcgan",      # DCGAN G and D
    "models.resnet",     # ResNet (SNGAN / SAGAN) G and D
    "build",             # build_models (initialisation, spectral norm), layer tables
    "losses",            # Wasserstein, hinge, BCE, ACGAN class loss, gradient penalty
    "augment",           # DiffAugment transforms, bCR's consistency shift
    "step",              # train_step: D steps, G steps, EMA
    "capture",           # the whole training step as one CUDA graph (compile="cudagraph")
    "sampling",          # latents, sample, interpolation, standing BatchNorm statistics
    "features",          # feature networks (Inception or proxy), Stats, cached real statistics
    "measures",          # FD, KID, IS, class accuracy, diversity; score lines and tables
    "probes",            # cluster accuracy of InfoGAN's code, linear probe of BiGAN's encoder
    "checkpoints",       # loading and rebuilding checkpoints, RNG states
    "states",            # compact training states (bf16) of the shipped runs: pack, expand, resume from
    "images",            # grids and PNGs (snapshots, one image per class)
    "training",          # train(): the loop, evaluations, best.pt / last.pt, exact resume, forks
    "publishing",        # publish a run's best generator to model/
    "plots",             # grids, curves, snapshots over training
    "attention_plots",   # attention maps and their figures
    "widgets",           # ipywidgets: snapshot slider, attention explorer
    "evaluation",        # test-set scores and the final evaluation
    "studies",           # study files, run folders, training one run, the local engine
    "engines",           # the Ray engine of a study (ray is optional, imported only there)
    "study_results",     # timing, collect -> results.json, tables, statistics, plots
    "cli",               # python gan_helpers.py ...
)

_modules = [importlib.import_module(f"{__name__}.{name}") for name in LAYERS]
__all__ = [name for module in _modules for name in module.__all__]
globals().update({name: getattr(module, name) for module in _modules for name in module.__all__})
