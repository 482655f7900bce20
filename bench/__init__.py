"""Benchmarks: scripts that print figures.

Run each from the repository root as a module, ``.venv/bin/python -m bench.bench_bus``; they
share their helpers with the tests (:mod:`tests.support`).
"""
