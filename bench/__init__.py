"""Benchmarks run by ``make bench`` (``python -m bench``); reports go to ``bench/results/``."""
