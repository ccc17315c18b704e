"""Benchmarks: `make bench` prints figures and writes docs/benchmarks.md."""
