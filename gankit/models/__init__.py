"""G and D of each architecture, one module each (the generators share base.BaseGenerator); every module
registers its pair in ARCHS."""
