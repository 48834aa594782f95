"""A GAN study kit: MLP, DCGAN and ResNet (SAGAN) GANs, unconditional or class-conditional, on CIFAR-10, a subset
of its classes or any image folder, at 32, 64 or 128 pixels. This module is what notebooks import and what
`python gan_helpers.py ...` runs; the implementation lives in the package gankit/, one small module per concern.

Where things are (gankit/<module>.py, lowest layer first; see gankit/__init__.py):
  config            Config: one field per choice of a run, presets (dcgan, sagan, ref_dcgan, ref_sagan), validate()
  registry          every named choice: ARCHS, LOSSES, CONDITIONINGS, AUGMENTS, DATASETS, METRICS, and the
                    model protocol (what G and D expose)
  data              load_dataset(): CIFAR-10 or any image folder, class subsets, image size, the recorded split
  attention         SelfAttention, our own (gamma starts at 0)
  layers            conditional BatchNorm, spectral norm, where class labels enter G and D
  latent            InfoGAN's codes and Q head, BiGAN's encoder (inside G) and joint D(x, z) head
  models/           mlp.py, dcgan.py, resnet.py: G and D of each architecture (each registers itself in ARCHS)
  build             build_models(): initialisation and spectral norm; layer tables
  losses            Wasserstein (our own), hinge, BCE; ACGAN's class loss; gradient penalty
  augment           differentiable augmentation (DiffAugment), bCR's consistency shift
  step              train_step(): n_critic D steps, n_gen G steps, EMA (TTUR: separate learning rates)
  sampling          latents(), sample(), interpolation, standing BatchNorm statistics
  features          Inception (FID) or proxy feature networks, cached real statistics
  measures          FD, KID, IS, class accuracy, diversity; score lines and tables
  probes            cluster accuracy of InfoGAN's code (Hungarian matching), linear probe of BiGAN's encoder
  checkpoints       checkpoints and generators from them
  training          train(): validation metric every eval_every iterations, best.pt, last.pt, exact resume
  publishing        publish(): a run's best generator to model/ (only when its validation score is lower)
  plots             grids, loss and metric curves, snapshots over training
  attention_plots   attention maps and figures; widgets: the attention explorer, the snapshot slider
  evaluation        test_set_score(), final_evaluation(): the 8x8 grid and the test-set FID
  studies           study files (arms x seeds), run_study(); engines: the same runs as Ray tasks;
                    study_results: results.json, tables, plots
  cli               the command line

    python gan_helpers.py evaluate model/sagan_best.pt
    python gan_helpers.py train sagan --iters 1000 --data-dir data/cifar10-jpeg
    python gan_helpers.py train dcgan --data-dir FOLDER --set img_size=64 cond=acgan
    python gan_helpers.py study run studies/attention.json --data-dir data
"""
from __future__ import annotations

import sys

from gankit import *  # noqa: F401,F403  (the kit's public names: gan_helpers.Config, gan_helpers.train, ...)
from gankit import __all__  # noqa: F401
from gankit.cli import main

if __name__ == "__main__":
    sys.exit(main())
