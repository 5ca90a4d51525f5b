"""Metric implementations: pure functions first (one module per family), declared in ``specs/*.yaml``."""
