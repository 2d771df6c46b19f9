"""Benchmarks (issue 6), run by ``python -m benchmarks.run`` (``make bench``), not by the tests."""
