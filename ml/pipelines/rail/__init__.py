"""Two-stage rail obstacle pipeline (rail-two-stage-anomaly.txt): rail segmentation, then a patch
autoencoder along the rails."""

# The class is imported on first use only (see ml/pipelines/unet/__init__.py): listing pipelines
# reads the torch-free ``config`` module of this package.
__all__ = ["RailPipeline"]


def __getattr__(name: str):
    if name == "RailPipeline":
        from ml.pipelines.rail.pipeline import RailPipeline

        return RailPipeline
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
