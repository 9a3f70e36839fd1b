"""Road-scene segmentation with out-of-distribution scores (road-scene paper); the class is
imported lazily by the registry, so listing pipelines needs no torch."""


def __getattr__(name):
    if name == "SegOODPipeline":
        from ml.pipelines.seg_ood.pipeline import SegOODPipeline

        return SegOODPipeline
    raise AttributeError(name)
