"""`smai`: see config.py for what it is and the seed section it follows."""

# The class is imported on first use only: ml.registry reads the torch-free
# ``config`` module of this package to list pipelines.
__all__ = ["SMAIPipeline"]


def __getattr__(name: str):
    if name == "SMAIPipeline":
        from ml.pipelines.smai.pipeline import SMAIPipeline

        return SMAIPipeline
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
