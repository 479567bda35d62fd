"""What the tests and the benchmarks share: processes, fixtures and readers of their own."""
