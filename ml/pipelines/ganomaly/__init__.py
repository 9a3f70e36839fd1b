"""`ganomaly`: see config.py for what it is and the seed section it follows."""

# The class is imported on first use only: ml.registry reads the torch-free
# ``config`` module of this package to list pipelines.
__all__ = ["GANomalyPipeline"]


def __getattr__(name: str):
    if name == "GANomalyPipeline":
        from ml.pipelines.ganomaly.pipeline import GANomalyPipeline

        return GANomalyPipeline
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
