"""Variational autoencoder pipeline (thesis 3.3, 4.2.1, 5.1)."""

# Imported on first use only: ml.registry reads the torch-free ``config``
# module of this package, which runs this file.
__all__ = ["VAEPipeline"]


def __getattr__(name: str):
    if name == "VAEPipeline":
        from ml.pipelines.vae.pipeline import VAEPipeline

        return VAEPipeline
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
