"""DFR: deep feature reconstruction of multi-scale regional CNN features (normal images only)."""

# The class is imported on first use only: ml.registry reads the torch-free
# ``config`` module of this package to list pipelines, and importing a
# submodule runs this file, which must therefore not pull in torch.
__all__ = ["DFRPipeline"]


def __getattr__(name: str):
    if name == "DFRPipeline":
        from ml.pipelines.dfr.pipeline import DFRPipeline

        return DFRPipeline
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
