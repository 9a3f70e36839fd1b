"""Writes of the inspection app, one module per subject (training, inference, model versions, reviews, retraining)."""
