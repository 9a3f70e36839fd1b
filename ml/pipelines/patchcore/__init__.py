"""PatchCore: coreset memory bank of locally aware patch features (normal images only)."""
from ml.pipelines.patchcore.pipeline import PatchCorePipeline

__all__ = ["PatchCorePipeline"]
