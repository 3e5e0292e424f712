"""Benchmarks: scripts run as ``python bench/<name>.py``, type-checked by mypy as a package."""
