"""Anomaly detection library: pipelines, backbones, datasets, metrics, thresholds.

Plain Python + PyTorch. Nothing in this package imports Django; the web side
reaches it only through :mod:`ml.registry`.
"""
