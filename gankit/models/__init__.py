"""G and D of each architecture, one module each; every module registers its pair in ARCHS."""
