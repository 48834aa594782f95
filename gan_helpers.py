"""A GAN study kit: MLP, DCGAN and ResNet (SAGAN) GANs, unconditional or class-conditional, on CIFAR-10, a subset
of its classes or any image folder, at 32, 64 or 128 pixels. This module is what notebooks import and what
`python gan_helpers.py ...` runs: the kit's vocabulary, the names below (__all__). The implementation lives in the
package gankit/, one small module per concern; everything else is reached as gankit.<module>.<name>.

Where things are (gankit/<module>.py, lowest layer first; see gankit/__init__.py), with the names this face gives:
  core              GanError, CIFAR10_CLASSES; batched() (the kit's one batched-inference loop)
  registry          every named choice: ARCHS, LOSSES, CONDITIONINGS, AUGMENTS, DATASETS, METRICS, and the
                    model protocol (what G and D expose)
  device            setup() (seeds and device in one place), to_device, device_name, precision, colab_installs
  config            Config: one field per choice of a run in groups, presets (dcgan, sagan, ref_dcgan, ref_sagan),
                    validate(), migrate_config() (configs of earlier versions)
  files             write_json_atomic (and atomic_path, save_atomic)
  data              load_dataset, load_cifar10, train_val_split, config_for_data, check_split, ImageSet,
                    synthetic_images, to_float: CIFAR-10 or any image folder, class subsets, the recorded split
  attention         SelfAttention, our own (gamma starts at 0)
  layers            conditional BatchNorm, spectral norm, where class labels enter G and D
  latent            InfoGAN's codes and Q head, BiGAN's encoder (inside G) and joint D(x, z) head
  models/           mlp.py, dcgan.py, resnet.py: G and D of each architecture (each registers itself in ARCHS)
  build             build_models, count_parameters, layer_table, format_layer_table
  losses            Wasserstein (our own), hinge, BCE; ACGAN's class loss; gradient penalty
  augment           differentiable augmentation (DiffAugment), bCR's consistency shift
  step              train_step, make_optimizers: n_critic D steps, n_gen G steps, EMA (TTUR)
  sampling          sample, traversal, reconstruct, standing_batch_norm
  features          load_feature_net, load_classifier, real_stats, RandomFeatures, random_classifier,
                    KIT_CLASSIFIER, warnings_ignored: Inception (FID) or proxy feature networks
  measures          evaluate_generator, sample_and_score, format_score, format_diversity, score_table: FD, KID,
                    IS, class accuracy, diversity
  probes            cluster_accuracy, probe_encoder, format_probes: InfoGAN's code, BiGAN's encoder
  checkpoints       load_checkpoint, load_generator, load_discriminator, generator_from_checkpoint,
                    read_history (a history.json or history.json.gz)
  images            image_grid, save_pngs
  training          train, best_eval: validation metric every eval_every iterations, best.pt, last.pt, resume
  publishing        publish: a run's best generator to model/ (only when its validation score is lower)
  plots             show_grid, show_class_rows, plot_losses, plot_metric, plot_scores, live_metric_plot,
                    snapshot_strip, interpolation_figure, traversal_figure, reconstruction_figure
  attention_plots   generator_attention, discriminator_attention, attention_layers, attention_figure, by_image,
                    query_dependence
  widgets           attention_explorer, snapshot_slider
  evaluation        test_set_score, final_evaluation, validation_stats: the 8x8 grid and the test-set FID
  studies           Study, load_study, study_run_dir, run_record, study_status, SPLIT_FIELDS; engines: the same
                    runs as Ray tasks; study_results: mean_std, welch, study_table, plot_study
  cli               main: the command line

    python gan_helpers.py evaluate model/sagan_best.pt
    python gan_helpers.py train sagan --iters 1000 --data-dir data/cifar10-jpeg
    python gan_helpers.py train dcgan --data-dir FOLDER --set img_size=64 cond=acgan
    python gan_helpers.py study run studies/attention.json --data-dir data
"""
from __future__ import annotations

import sys

from gankit.core import CIFAR10_CLASSES, GanError
from gankit.device import colab_installs, device_name, precision, setup, to_device
from gankit.config import Config
from gankit.files import write_json_atomic
from gankit.data import (ImageSet, check_split, config_for_data, load_cifar10, load_dataset, synthetic_images,
                         to_float, train_val_split)
from gankit.build import build_models, count_parameters, format_layer_table, layer_table
from gankit.step import make_optimizers, train_step
from gankit.sampling import reconstruct, sample, standing_batch_norm, traversal
from gankit.features import (KIT_CLASSIFIER, RandomFeatures, load_classifier, load_feature_net, random_classifier,
                             real_stats, warnings_ignored)
from gankit.measures import evaluate_generator, format_diversity, format_score, sample_and_score, score_table
from gankit.probes import cluster_accuracy, format_probes, probe_encoder
from gankit.checkpoints import (generator_from_checkpoint, load_checkpoint, load_discriminator, load_generator,
                                read_history)
from gankit.images import image_grid, save_pngs
from gankit.training import best_eval, train
from gankit.publishing import publish
from gankit.plots import (interpolation_figure, live_metric_plot, plot_losses, plot_metric, plot_scores,
                          reconstruction_figure, show_class_rows, show_grid, snapshot_strip, traversal_figure)
from gankit.attention_plots import (attention_figure, attention_layers, by_image, discriminator_attention,
                                    generator_attention, query_dependence)
from gankit.widgets import attention_explorer, snapshot_slider
from gankit.evaluation import final_evaluation, test_set_score, validation_stats
from gankit.studies import SPLIT_FIELDS, Study, load_study, run_record, study_run_dir, study_status
from gankit.study_results import mean_std, plot_study, study_table, welch
from gankit.cli import main

__all__ = [
    "CIFAR10_CLASSES", "GanError",
    "colab_installs", "device_name", "precision", "setup", "to_device",
    "Config",
    "write_json_atomic",
    "ImageSet", "check_split", "config_for_data", "load_cifar10", "load_dataset", "synthetic_images", "to_float",
    "train_val_split",
    "build_models", "count_parameters", "format_layer_table", "layer_table",
    "make_optimizers", "train_step",
    "reconstruct", "sample", "standing_batch_norm", "traversal",
    "KIT_CLASSIFIER", "RandomFeatures", "load_classifier", "load_feature_net", "random_classifier", "real_stats",
    "warnings_ignored",
    "evaluate_generator", "format_diversity", "format_score", "sample_and_score", "score_table",
    "cluster_accuracy", "format_probes", "probe_encoder",
    "generator_from_checkpoint", "load_checkpoint", "load_discriminator", "load_generator", "read_history",
    "image_grid", "save_pngs",
    "best_eval", "train",
    "publish",
    "interpolation_figure", "live_metric_plot", "plot_losses", "plot_metric", "plot_scores", "reconstruction_figure",
    "show_class_rows", "show_grid", "snapshot_strip", "traversal_figure",
    "attention_figure", "attention_layers", "by_image", "discriminator_attention", "generator_attention",
    "query_dependence",
    "attention_explorer", "snapshot_slider",
    "final_evaluation", "test_set_score", "validation_stats",
    "SPLIT_FIELDS", "Study", "load_study", "run_record", "study_run_dir", "study_status",
    "mean_std", "plot_study", "study_table", "welch",
    "main",
]


if __name__ == "__main__":
    sys.exit(main())
