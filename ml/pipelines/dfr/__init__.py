"""DFR: deep feature reconstruction of multi-scale regional CNN features (normal images only)."""
from ml.pipelines.dfr.pipeline import DFRPipeline

__all__ = ["DFRPipeline"]
