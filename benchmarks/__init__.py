"""Accuracy and speed measurement: reads data sets, drives matcher and indexer,
writes JSON and plots.  Measured figures live in ``benchmarks/README.md``."""
