"""Benchmarks: scripts that measure quality and speed, write JSON under bench/results/,
and (bench/report.py) turn that JSON into the README's tables."""
