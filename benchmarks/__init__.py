"""Benchmarks and comparisons: measurements, not tests. See README for the results."""
