"""Methods scored by triptych: simple baselines and reference-model ports, declared in ``specs/*.yaml``."""
