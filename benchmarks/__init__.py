"""Benchmarks: one module per dataset family, declared in ``specs/*.yaml`` (splits, variants, metric sets)."""
