"""Supervised U-Net segmentation pipeline (thesis 4.1.1 / 5.2)."""

# The class is imported on first use only: ml.registry reads the torch-free
# ``config`` module of this package to list pipelines, and importing a
# submodule runs this file, which must therefore not pull in torch.
__all__ = ["UNetPipeline"]


def __getattr__(name: str):
    if name == "UNetPipeline":
        from ml.pipelines.unet.pipeline import UNetPipeline

        return UNetPipeline
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
