"""Benchmarks: run by `make bench-*` targets, never by the unit tests."""
