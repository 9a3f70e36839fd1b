"""Real-time semantic segmentation networks of the road-scene paper
(../shared/seeds/road-scene-anomaly-segmentation.txt, section II-C): ERFNet,
ENet and BiSeNet, plus a U-Net decoder under a pretrained EfficientNet-Lite0
encoder (labelled as ours, not the paper's).

Every network maps ``(N, 3, H, W)`` normalised images to ``(N, C, H, W)``
class logits; H and W must be divisible by the network's ``stride``.
"""
from __future__ import annotations

NETWORKS = ("erfnet", "enet", "bisenet", "lite0_unet")
STRIDES = {"erfnet": 8, "enet": 8, "bisenet": 32, "lite0_unet": 32}


def build(name: str, num_classes: int, pretrained: bool = True):
    """The network ``name`` with ``num_classes`` outputs; ``pretrained`` loads ImageNet weights where the
    network has a pretrained part (BiSeNet's context path, the Lite0 U-Net's encoder)."""
    if name == "erfnet":
        from ml.components.segmentation.erfnet import ERFNet

        return ERFNet(num_classes)
    if name == "enet":
        from ml.components.segmentation.enet import ENet

        return ENet(num_classes)
    if name == "bisenet":
        from ml.components.segmentation.bisenet import BiSeNet

        return BiSeNet(num_classes, pretrained=pretrained)
    if name == "lite0_unet":
        from ml.components.unet import PretrainedEncoderUNet

        return PretrainedEncoderUNet(in_channels=3, out_channels=num_classes, base_channels=32, pretrained=pretrained)
    raise ValueError(f"unknown network {name!r}; known networks: {', '.join(NETWORKS)}")
