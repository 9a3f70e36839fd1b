"""Supervised U-Net segmentation pipeline (thesis 4.1.1 / 5.2)."""
from ml.pipelines.unet.pipeline import UNetPipeline

__all__ = ["UNetPipeline"]
