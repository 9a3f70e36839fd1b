"""Multi-level patch anomaly segmentation (thesis 4.1.2, 5.3)."""

# Imported on first use only: ml.registry reads the torch-free ``config``
# module of this package, which runs this file.
__all__ = ["MultiLevelPipeline"]


def __getattr__(name: str):
    if name == "MultiLevelPipeline":
        from ml.pipelines.multilevel.pipeline import MultiLevelPipeline

        return MultiLevelPipeline
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
