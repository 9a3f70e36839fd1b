"""Datasets as sequences of :class:`ml.base.Sample`, input presets and the synthetic generator.

Images are (H, W, 3) uint8 RGB; masks are (H, W) uint8 0/255 (binarised once
when read, ``> 127``); labels 0 normal, 1 anomalous, None unknown.
"""
from ml.data.datasets import (
    ConcatSamples,
    ImageMaskDataset,
    ImageMaskList,
    Item,
    MVTecDataset,
    PolygonDataset,
    SampleFolder,
    open_dataset,
)
from ml.data.io import binarize_mask, read_image, read_mask, resize_image, resize_mask

__all__ = [
    "ConcatSamples",
    "ImageMaskDataset",
    "ImageMaskList",
    "Item",
    "MVTecDataset",
    "PolygonDataset",
    "SampleFolder",
    "binarize_mask",
    "open_dataset",
    "read_image",
    "read_mask",
    "resize_image",
    "resize_mask",
]
