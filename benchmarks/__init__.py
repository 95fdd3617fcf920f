"""Benchmarks and comparisons: measurements, not tests. Their results are in benchmarks/results/."""
