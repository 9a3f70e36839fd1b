"""The one interface every pipeline implements (DESIGN.md section 4).

A pipeline is built from a JSON-serialisable config, learns with
``fit(train, val, progress)``, answers ``predict(images)`` with image scores,
anomaly maps at input resolution and optional binary masks, and is saved and
loaded as one artifact (config + tensors) that ``torch.load(weights_only=True)``
can read.

Images everywhere in this interface are ``numpy`` arrays ``(H, W, 3)`` uint8
RGB; masks are ``(H, W)`` uint8/bool with anomalous pixels non-zero.
"""
from __future__ import annotations

import dataclasses
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, Callable, ClassVar, Literal, Protocol, Sequence

import numpy as np

from ml.config import PipelineConfig

ARTIFACT_FORMAT = "anomaly-inspection-ml/1"

Supervision = Literal["unsupervised", "supervised", "semantic"]


class Cancelled(Exception):
    """Raised by a ``progress`` callback to stop training (a cancelled job)."""


class ProgressFn(Protocol):
    def __call__(self, stage: str, fraction: float, metrics: dict[str, float] | None = None) -> None: ...


def no_progress(stage: str, fraction: float, metrics: dict[str, float] | None = None) -> None:
    return None


@dataclasses.dataclass
class Sample:
    """One image of a dataset.

    ``label``: 0 normal, 1 anomalous, None unknown. ``mask``: (H, W) with
    anomalous pixels non-zero, or None when no pixel ground truth exists.
    ``class_masks``: masks of named label classes that are not anomalies
    (e.g. ``{"rail": (H, W) uint8}`` for the ``rail`` pipeline), or None.
    ``classes``: (H, W) uint8 class-index mask of a semantic (road-scene)
    sample, the void index where nothing is labelled; None otherwise.
    """

    image: np.ndarray
    mask: np.ndarray | None = None
    label: int | None = None
    name: str = ""
    classes: np.ndarray | None = None
    class_masks: dict[str, np.ndarray] | None = None


@dataclasses.dataclass
class Predictions:
    """What ``predict`` returns for N images.

    ``scores``: (N,) float32 image scores (higher = more anomalous).
    ``maps``: (N, H, W) float32 anomaly maps at input resolution when all
    inputs share one size, otherwise a list of (H_i, W_i) arrays.
    ``masks``: binary masks like ``maps`` (map > region threshold) when the
    pipeline has a threshold, else None.
    ``extras``: optional per-image dicts of pipeline-specific results (the
    ``rail`` pipeline: ``{"boxes": [...], "rail_mask": (H, W) uint8}``), one
    per image, or None.
    ``class_maps``: for semantic pipelines, (N, H, W) uint8 predicted class
    indices like ``maps``; None otherwise.
    """

    scores: np.ndarray
    maps: np.ndarray | list[np.ndarray]
    masks: np.ndarray | list[np.ndarray] | None = None
    class_maps: np.ndarray | list[np.ndarray] | None = None
    extras: list[dict[str, Any]] | None = None


class Pipeline(ABC):
    """Base class of all pipelines.

    Subclasses set ``name``, ``supervision``, ``config_class`` and
    ``description``, and implement ``fit``, ``predict``, ``state_tensors`` and
    ``load_state_tensors``. Threshold and score normalisation live here so
    every artifact carries them.
    """

    name: ClassVar[str]
    supervision: ClassVar[Supervision]
    config_class: ClassVar[type[PipelineConfig]] = PipelineConfig
    description: ClassVar[str] = ""
    # Label classes whose masks (``Sample.class_masks``) the pipeline learns from, e.g. ("rail",).
    required_class_masks: ClassVar[tuple[str, ...]] = ()

    def __init__(self, config: dict[str, Any] | PipelineConfig | None = None):
        if isinstance(config, PipelineConfig):
            config.validate()
            self.config = config
        else:
            self.config = self.config_class.from_dict(config)
        # Two thresholds on raw values: ``threshold`` flags an image (its score above it),
        # ``region_threshold`` outlines pixels (map above it; None: the image threshold).
        # Normalisation maps raw scores to [0, 1]-ish values for display (see ml.thresholds).
        self.threshold: float | None = None
        self.region_threshold: float | None = None
        self.normalization: dict[str, float] = {}
        self.meta: dict[str, Any] = {}

    # --- learning and answering -------------------------------------------------
    @abstractmethod
    def fit(self, train: Sequence[Sample], val: Sequence[Sample] | None = None, progress: ProgressFn = no_progress) -> None:
        """Learn from ``train`` (normal images, or images with masks for
        supervised pipelines); ``val`` may be used to calibrate the threshold.
        ``progress(stage, fraction, metrics)`` is called regularly; when it
        raises (e.g. :class:`Cancelled`), fit stops and the exception propagates.
        """

    @abstractmethod
    def predict(self, images: Sequence[np.ndarray]) -> Predictions:
        """Score ``images`` (each (H, W, 3) uint8). Maps come back at input resolution."""

    def _predictions(self, scores: Sequence[float] | np.ndarray, maps: np.ndarray | list[np.ndarray]) -> Predictions:
        """Assemble what ``predict`` returns from per-image scores and (H_i, W_i) maps
        (or maps already stacked to (N, H, W)): maps stacked to (N, H, W) when they share
        a size (an empty (0, S, S) array for no images), masks = map > threshold once the
        pipeline has a threshold."""
        if isinstance(maps, np.ndarray) and maps.ndim == 3:
            out_maps = maps
        elif len(maps) == 0:
            size = self.config.image_size
            out_maps = np.zeros((0, size, size), np.float32)
        elif all(m.shape == maps[0].shape for m in maps):
            out_maps = np.stack(maps)
        else:
            out_maps = maps
        masks = None
        cut = self.pixel_threshold
        if cut is not None:
            masks = out_maps > cut if isinstance(out_maps, np.ndarray) else [m > cut for m in out_maps]
        return Predictions(scores=np.asarray(scores, dtype=np.float32), maps=out_maps, masks=masks)

    @property
    def pixel_threshold(self) -> float | None:
        """The threshold that outlines regions: the region threshold, else the image threshold."""
        return self.threshold if self.region_threshold is None else self.region_threshold

    # --- persistence -------------------------------------------------------------
    @abstractmethod
    def state_tensors(self) -> dict[str, Any]:
        """Tensors (and plain values) that, with the config, rebuild the model."""

    @abstractmethod
    def load_state_tensors(self, state: dict[str, Any]) -> None:
        """Inverse of :meth:`state_tensors` on a freshly constructed pipeline."""

    def to_artifact(self) -> dict[str, Any]:
        return {
            "format": ARTIFACT_FORMAT,
            "pipeline": self.name,
            "config": self.config.to_dict(),
            "threshold": self.threshold,
            "region_threshold": self.region_threshold,
            "normalization": dict(self.normalization),
            "meta": dict(self.meta),
            "state": self.state_tensors(),
        }

    def save(self, path: str | Path) -> None:
        import torch

        torch.save(self.to_artifact(), str(path))

    @classmethod
    def from_artifact(cls, artifact: dict[str, Any]) -> "Pipeline":
        if artifact.get("format") != ARTIFACT_FORMAT:
            raise ValueError(f"not a model artifact of this library (format {artifact.get('format')!r})")
        if artifact.get("pipeline") != cls.name:
            raise ValueError(f"artifact is for pipeline {artifact.get('pipeline')!r}, not {cls.name!r}")
        pipeline = cls(cls.config_class.from_artifact_dict(artifact["config"]))
        pipeline.threshold = artifact.get("threshold")
        # Artifacts from before the region threshold outline regions at the image threshold.
        pipeline.region_threshold = artifact.get("region_threshold")
        pipeline.normalization = dict(artifact.get("normalization") or {})
        pipeline.meta = dict(artifact.get("meta") or {})
        pipeline.load_state_tensors(artifact["state"])
        return pipeline

    @classmethod
    def load(cls, path: str | Path) -> "Pipeline":
        import torch

        return cls.from_artifact(torch.load(str(path), map_location="cpu", weights_only=True))

    # --- schema ------------------------------------------------------------------
    @classmethod
    def describe(cls) -> dict[str, Any]:
        return {
            "name": cls.name,
            "supervision": cls.supervision,
            "description": cls.description,
            "config_schema": cls.config_class.json_schema(),
            "presets": cls.config_class.preset_table(),
            "required_class_masks": list(cls.required_class_masks),
        }


def check_images(images: Sequence[np.ndarray]) -> None:
    """Fail with a plain message unless every image is (H, W, 3) uint8."""
    for i, image in enumerate(images):
        if not isinstance(image, np.ndarray) or image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            shape = getattr(image, "shape", None)
            dtype = getattr(image, "dtype", type(image).__name__)
            raise ValueError(f"image {i}: expected an (H, W, 3) uint8 RGB array, got shape {shape} dtype {dtype}")


ProgressCallable = Callable[[str, float, "dict[str, float] | None"], None]
