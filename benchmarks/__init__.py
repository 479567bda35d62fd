"""Benchmarks: ``make bench`` (``python -m benchmarks [upload|writer]``)."""
