"""Pretrained backbones: real ImageNet weights, multi-level features, plain errors without weights."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from skimage import data

from ml.components.backbones import (
    BackboneWeightsMissing,
    FeatureExtractor,
    UnknownLayer,
    load_efficientnet_lite0,
    normalize,
)
from ml.components.features import images_to_tensor


@pytest.fixture(scope="module")
def lite0_extractor():
    return FeatureExtractor("efficientnet_lite0", ["block4", "block10"])


def test_lite0_weights_recognise_a_cat():
    model = load_efficientnet_lite0()
    image = images_to_tensor([data.chelsea()], 224)
    with torch.inference_mode():
        logits = model(normalize("efficientnet_lite0", image))
    top5 = set(logits[0].topk(5).indices.tolist())
    # ImageNet classes 281-285 are the domestic cats (tabby, tiger cat, Persian, Siamese, Egyptian).
    assert top5 & set(range(281, 286)), f"top-5 classes {sorted(top5)} contain no cat: weights are not ImageNet's"


def test_lite0_mid_levels_have_strides_8_and_16(lite0_extractor):
    assert lite0_extractor.channels == {"block4": 40, "block10": 112}
    assert lite0_extractor.strides == {"block4": 8, "block10": 16}
    with torch.inference_mode():
        maps = lite0_extractor(torch.rand(2, 3, 256, 256))
    assert list(maps) == ["block4", "block10"]
    assert tuple(maps["block4"].shape) == (2, 40, 32, 32)
    assert tuple(maps["block10"].shape) == (2, 112, 16, 16)


def test_extractor_matches_the_plain_network_and_is_frozen(lite0_extractor):
    model = load_efficientnet_lite0()
    x = torch.rand(1, 3, 128, 128)
    with torch.inference_mode():
        h = model._swish(model._bn0(model._conv_stem(normalize("efficientnet_lite0", x))))
        for block in model._blocks[:5]:
            h = block(h)
        ours = lite0_extractor(x)["block4"]
    # Batch norm folded into the convolutions: same features up to rounding.
    assert torch.allclose(ours, h, atol=1e-3)
    lite0_extractor.train()
    assert not lite0_extractor.training
    assert not any(p.requires_grad for p in lite0_extractor.parameters())


def test_reflection_padding_changes_only_how_borders_are_seen():
    zero = FeatureExtractor("efficientnet_lite0", ["block4"])
    reflect = FeatureExtractor("efficientnet_lite0", ["block4"], reflection_padding=True)
    assert not any(isinstance(m, torch.nn.ZeroPad2d) for m in reflect.modules())
    image = images_to_tensor([data.chelsea()], 256)
    with torch.inference_mode():
        a, b = zero(image)["block4"], reflect(image)["block4"]
    assert a.shape == b.shape
    difference = (a - b).abs().mean(dim=(0, 1))
    assert difference[0, :].mean() > difference[12:20, 12:20].mean()


def test_unknown_layer_names_the_known_ones():
    with pytest.raises(UnknownLayer, match="block10"):
        FeatureExtractor("efficientnet_lite0", ["layer3"])


def test_vgg19_without_weights_says_so(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    with pytest.raises(BackboneWeightsMissing, match="cannot download"):
        FeatureExtractor("vgg19", ["conv4"])


def test_missing_weights_file_is_named(tmp_path):
    missing = tmp_path / "nowhere" / "vgg19.pth"
    with pytest.raises(BackboneWeightsMissing, match="nowhere"):
        FeatureExtractor("vgg19", ["conv4"], weights_path=str(missing))


def test_with_a_weights_folder_only_files_inside_it_are_taken(tmp_path):
    from ml.components.backbones import find_weights
    from ml.components.weights import WeightsPathRefused

    folder = tmp_path / "weights"
    folder.mkdir()
    (folder / "resnet18.pth").write_bytes(b"x")
    (tmp_path / "outside.pth").write_bytes(b"x")
    (folder / "link.pth").symlink_to(tmp_path / "outside.pth")
    assert find_weights("resnet18", "resnet18.pth", weights_dir=folder) == (folder / "resnet18.pth").resolve()
    messages = set()
    for path in ("../outside.pth", str(tmp_path / "outside.pth"), "link.pth", "absent.pth", "."):
        with pytest.raises(WeightsPathRefused) as caught:
            find_weights("resnet18", path, weights_dir=folder)
        messages.add(str(caught.value).replace(repr(path), "<path>"))
    assert len(messages) == 1 and str(tmp_path) not in messages.pop()


def test_torchvision_backbone_from_a_given_file(tmp_path):
    import torchvision

    path = tmp_path / "resnet18.pth"
    torch.save(torchvision.models.resnet18(weights=None).state_dict(), path)
    extractor = FeatureExtractor("resnet18", ["layer2", "layer3"], weights_path=str(path))
    assert extractor.channels == {"layer2": 128, "layer3": 256}
    assert extractor.strides == {"layer2": 8, "layer3": 16}
    assert np.isfinite(extractor(torch.rand(1, 3, 64, 64))["layer3"].detach().numpy()).all()


def test_extractor_in_cpu_chunks_gives_each_image_its_own_features(lite0_extractor):
    x = torch.rand(lite0_extractor.cpu_chunk * 2 + 1, 3, 64, 64)
    with torch.inference_mode():
        batched = lite0_extractor(x)  # three chunks
        alone = [lite0_extractor(x[i : i + 1]) for i in range(len(x))]
    for name, maps in batched.items():
        assert maps.shape[0] == len(x)
        assert maps.is_contiguous(memory_format=torch.channels_last)
        assert torch.allclose(maps, torch.cat([a[name] for a in alone]), atol=1e-4)
