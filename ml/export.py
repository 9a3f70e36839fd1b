"""Models that leave the app: ONNX and TorchScript exports of fitted pipelines,
and a runner that predicts with an exported file (onnxruntime or torch.jit).

An exported model takes ``images`` ``(N, 3, S, S)`` float32 RGB in [0, 1] at
the pipeline's working size ``S`` (the caller resizes) and returns
``maps`` ``(N, S, S)`` float32 (the same anomaly maps the app computes at the
working size, post-processing included) and ``scores`` ``(N,)`` float32. The
image and region thresholds, the score normalisation and ``S`` travel with the file as metadata
(ONNX ``metadata_props``; TorchScript extra file ``export.json``), so a
consumer can flag images and outline regions exactly as the app does.

Exportable: ``patchcore`` (its nearest-neighbour search becomes a matrix
product and a minimum against the memory bank, which ONNX and TorchScript
both trace), ``dfr`` and ``unet``. Map post-processing that is traced: the
bilinear upsampling to ``S`` and the Gaussian blur. The resize of each map
back to its input image's size is left to the runner (bilinear,
half-pixel centres, as in the app).
"""
from __future__ import annotations

import json
import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ml.base import Pipeline, Predictions, check_images

Format = Literal["onnx", "torchscript"]
FORMATS: tuple[str, ...] = ("onnx", "torchscript")
EXPORT_FORMAT = "anomaly-inspection-export/1"
_TORCHSCRIPT_META = "export.json"


class ExportError(ValueError):
    """A pipeline or format that cannot be exported, with the reason."""


# --- traceable networks -------------------------------------------------------------------

class _PatchCoreExport(nn.Module):
    """Patch features -> squared distances by ``|q|^2 - 2 q.B^T + |B|^2`` -> min over the bank (Roth et al.
    2022, section 3.3), upsampled and blurred; the image score is eq. 7 with the b nearest bank rows of m*."""

    def __init__(self, pipeline: Pipeline):
        super().__init__()
        self.model = pipeline.model
        self.size = int(pipeline.config.image_size)
        self.sigma = float(pipeline.config.blur_sigma)

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        from ml.components.features import gaussian_blur, upsample

        model = self.model
        embedding = model.embed(images)
        n, d, h, w = embedding.shape
        patches = embedding.permute(0, 2, 3, 1).reshape(n, h * w, d)
        bank = model.memory_bank
        d2 = (patches * patches).sum(2, keepdim=True) - 2.0 * patches @ bank.T + model.bank_sq_norms
        min_d2, nn_index = d2.min(dim=2)
        patch_scores = min_d2.clamp_min(0).sqrt()  # (N, h*w)
        maps = gaussian_blur(upsample(patch_scores.reshape(n, h, w), self.size), self.sigma)
        max_scores, max_positions = patch_scores.max(dim=1)
        if model.num_neighbors <= 1:
            return maps, max_scores
        k = min(model.num_neighbors, bank.shape[0])
        test_patch = torch.gather(patches, 1, max_positions.view(n, 1, 1).expand(n, 1, d)).squeeze(1)  # (N, D)
        nearest_row = torch.gather(nn_index, 1, max_positions.view(n, 1)).squeeze(1)
        nearest = bank.index_select(0, nearest_row)  # (N, D)
        nd2 = (nearest * nearest).sum(1, keepdim=True) - 2.0 * nearest @ bank.T + model.bank_sq_norms
        _, support = nd2.topk(k, dim=1, largest=False)  # (N, b), m* first
        support_features = bank.index_select(0, support.reshape(-1)).reshape(n, k, d)
        distances = (support_features - test_patch.unsqueeze(1)).pow(2).sum(2).sqrt()
        weights = 1.0 - torch.softmax(distances, dim=1)[:, 0]
        return maps, weights * max_scores


class _DFRExport(nn.Module):
    """Regional features -> 1x1 autoencoder -> per-region L2 error (eq. 5), upsampled and blurred; score = map max."""

    def __init__(self, pipeline: Pipeline):
        super().__init__()
        if pipeline.model.autoencoder is None:
            raise ExportError("dfr is not fitted: nothing to export")
        self.model = pipeline.model
        self.size = int(pipeline.config.image_size)
        self.sigma = float(pipeline.config.blur_sigma)

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        from ml.components.features import gaussian_blur, upsample

        regional = self.model(images)
        maps = gaussian_blur(upsample(regional, self.size), self.sigma)
        return maps, maps.flatten(1).max(dim=1).values


class _UNetExport(nn.Module):
    """The pipeline's input normalisation -> U-Net logits -> sigmoid map; score = mean of the top
    ``score_top_fraction`` pixels."""

    def __init__(self, pipeline: Pipeline):
        super().__init__()
        if pipeline.config.input != "image":
            raise ExportError(f"unet with input {pipeline.config.input!r} cannot be exported (only 'image')")
        self.model = pipeline.model
        # The pipeline's own pre-processing (it depends on the encoder), traced as it runs in the app.
        self.network_input = pipeline._network_input
        size = int(pipeline.config.image_size)
        self.top_k = max(1, int(round(pipeline.config.score_top_fraction * size * size)))

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        probs = torch.sigmoid(self.model(self.network_input(images)))[:, 0]
        return probs, probs.flatten(1).topk(self.top_k, dim=1).values.mean(dim=1)


_EXPORTERS: dict[str, type[nn.Module]] = {"patchcore": _PatchCoreExport, "dfr": _DFRExport, "unet": _UNetExport}


def exportable() -> list[str]:
    return sorted(_EXPORTERS)


def export_network(pipeline: Pipeline) -> nn.Module:
    """The traceable ``nn.Module`` (images -> maps, scores) of a fitted pipeline, on CPU in eval mode."""
    if pipeline.name not in _EXPORTERS:
        raise ExportError(f"pipeline {pipeline.name!r} cannot be exported yet; exportable: {', '.join(exportable())}")
    pipeline.model.to("cpu")
    pipeline.device = torch.device("cpu")
    network = _EXPORTERS[pipeline.name](pipeline).eval()
    for parameter in network.parameters():
        parameter.requires_grad_(False)
    return network


def export_metadata(pipeline: Pipeline) -> dict[str, Any]:
    return {
        "format": EXPORT_FORMAT,
        "pipeline": pipeline.name,
        "image_size": int(pipeline.config.image_size),
        "threshold": pipeline.threshold,
        # Which pixels are outlined (None: the image threshold, as for models from before it).
        "region_threshold": pipeline.region_threshold,
        "normalization": dict(pipeline.normalization),
        "input": "images (N, 3, S, S) float32 RGB in [0, 1], S = image_size",
        "outputs": "maps (N, S, S) float32, scores (N,) float32",
    }


def export_model(pipeline: Pipeline, fmt: str, out: str | Path) -> Path:
    """Write ``pipeline`` as ``fmt`` ("onnx" or "torchscript") to ``out``; returns the path."""
    if fmt not in FORMATS:
        raise ExportError(f"unknown export format {fmt!r}; known: {', '.join(FORMATS)}")
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    network = export_network(pipeline)
    size = int(pipeline.config.image_size)
    example = torch.rand(2, 3, size, size, generator=torch.Generator().manual_seed(0))
    meta = export_metadata(pipeline)
    # The backbones run channels-last for CPU speed; tracing wants plain layouts.
    network = network.to(memory_format=torch.contiguous_format)
    with warnings.catch_warnings():
        # Shape checks inside the networks become constants of the trace: the input size is fixed at S.
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        # torch marks TorchScript and the TorchScript-based ONNX exporter deprecated; both still
        # write files that onnxruntime and torch.jit.load read, which the tests check.
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", FutureWarning)
        _write(network, example, fmt, out, meta)
    return out


def _write(network: nn.Module, example: torch.Tensor, fmt: str, out: Path, meta: dict[str, Any]) -> None:
    if fmt == "torchscript":
        with torch.no_grad():
            traced = torch.jit.trace(network, example, check_trace=False)
        torch.jit.save(traced, str(out), _extra_files={_TORCHSCRIPT_META: json.dumps(meta)})
        return
    import onnx

    with torch.no_grad():
        torch.onnx.export(
            network,
            (example,),
            str(out),
            input_names=["images"],
            output_names=["maps", "scores"],
            dynamic_axes={"images": {0: "batch"}, "maps": {0: "batch"}, "scores": {0: "batch"}},
            opset_version=17,
            dynamo=False,
        )
    model = onnx.load(str(out))
    for key, value in meta.items():
        entry = model.metadata_props.add()
        entry.key = key
        entry.value = json.dumps(value)
    onnx.save(model, str(out))


# --- running an exported file -------------------------------------------------------------

def is_exported(path: str | Path) -> bool:
    """True for an ONNX file or a TorchScript file written by :func:`export_model`."""
    path = Path(path)
    if path.suffix.lower() == ".onnx":
        return True
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as archive:
        return any(name.endswith(f"extra/{_TORCHSCRIPT_META}") for name in archive.namelist())


@dataclass
class _RunnerConfig:
    image_size: int
    batch_size: int = 8


class ExportedModel:
    """Predicts with an exported file like a pipeline does: ``predict(images) -> Predictions``,
    maps at each input's size, masks = map > region threshold (the image threshold when the file has
    none); ``threshold``, ``region_threshold`` and ``normalization`` as stored."""

    def __init__(self, path: str | Path):
        path = Path(path)
        if path.suffix.lower() == ".onnx":
            import onnxruntime

            self._session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
            props = self._session.get_modelmeta().custom_metadata_map
            meta = {key: json.loads(value) for key, value in props.items()}
            self._run = lambda x: self._session.run(["maps", "scores"], {"images": x})
        else:
            extra = {_TORCHSCRIPT_META: ""}
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", FutureWarning)  # torch.jit is deprecated but reads the file
                module = torch.jit.load(str(path), map_location="cpu", _extra_files=extra)
            meta = json.loads(extra[_TORCHSCRIPT_META] or "{}")

            def run(x: np.ndarray) -> list[np.ndarray]:
                with torch.inference_mode():
                    maps, scores = module(torch.from_numpy(x))
                return [maps.numpy(), scores.numpy()]

            self._run = run
        if meta.get("format") != EXPORT_FORMAT:
            raise ExportError(f"{path}: not a model exported by this library (no {EXPORT_FORMAT} metadata)")
        self.name = meta["pipeline"]
        self.threshold = meta.get("threshold")
        self.region_threshold = meta.get("region_threshold")
        self.normalization = dict(meta.get("normalization") or {})
        self.config = _RunnerConfig(image_size=int(meta["image_size"]))

    def run_tensors(self, images01: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(N, 3, S, S)`` float32 in [0, 1] -> maps ``(N, S, S)``, scores ``(N,)`` at the working size."""
        maps, scores = self._run(np.ascontiguousarray(images01, dtype=np.float32))
        return np.asarray(maps, np.float32), np.asarray(scores, np.float32)

    def predict(self, images: Sequence[np.ndarray]) -> Predictions:
        import cv2

        from ml.data.io import resize_image

        check_images(images)
        size = self.config.image_size
        if not images:
            return Predictions(np.zeros(0, np.float32), np.zeros((0, size, size), np.float32))
        batch = np.stack([resize_image(image, size) for image in images]).astype(np.float32).transpose(0, 3, 1, 2) / 255.0
        maps, scores = self.run_tensors(batch)
        out = []
        for m, image in zip(maps, images):
            h, w = image.shape[:2]
            out.append(m if (h, w) == m.shape else cv2.resize(m, (w, h), interpolation=cv2.INTER_LINEAR))
        stacked: np.ndarray | list[np.ndarray] = np.stack(out) if all(m.shape == out[0].shape for m in out) else out
        masks = None
        cut = self.threshold if self.region_threshold is None else self.region_threshold
        if cut is not None:
            masks = stacked > cut if isinstance(stacked, np.ndarray) else [m > cut for m in stacked]
        return Predictions(scores=scores, maps=stacked, masks=masks)
