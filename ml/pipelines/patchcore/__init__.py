"""PatchCore: coreset memory bank of locally aware patch features (normal images only)."""

# The class is imported on first use only: ml.registry reads the torch-free
# ``config`` module of this package to list pipelines, and importing a
# submodule runs this file, which must therefore not pull in torch.
__all__ = ["PatchCorePipeline"]


def __getattr__(name: str):
    if name == "PatchCorePipeline":
        from ml.pipelines.patchcore.pipeline import PatchCorePipeline

        return PatchCorePipeline
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
