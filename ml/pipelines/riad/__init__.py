"""`riad`: see config.py for what it is and the seed section it follows."""

# The class is imported on first use only: ml.registry reads the torch-free
# ``config`` module of this package to list pipelines.
__all__ = ["RIADPipeline"]


def __getattr__(name: str):
    if name == "RIADPipeline":
        from ml.pipelines.riad.pipeline import RIADPipeline

        return RIADPipeline
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
