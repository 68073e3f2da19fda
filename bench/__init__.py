"""Benchmarks: each prints JSON. Goals live here, never in timed tests."""
