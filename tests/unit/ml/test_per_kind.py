"""Per-defect-kind metrics: each kind judged against the normal images on its own."""
from __future__ import annotations

import numpy as np
import pytest

from ml.metrics.per_kind import kind_from_path, per_kind_metrics


@pytest.mark.parametrize("name, kind", [
    ("bottle/test/broken_large/000.png", "broken_large"),
    ("test/crack/012.png", "crack"),
    ("bottle/test/good/000.png", None),
    ("images/000.png", None),
    ("test/000.png", None),
])
def test_kind_from_an_mvtec_path(name, kind):
    assert kind_from_path(name) == kind


def _image(defect: str | None, found: bool, rng):
    truth = np.zeros((32, 32), np.uint8)
    heat = rng.uniform(0, 0.2, (32, 32)).astype(np.float32)
    if defect:
        truth[8:16, 8:16] = 255
        if found:
            heat[8:16, 8:16] = 0.9
    return heat, truth


def test_a_kind_the_model_finds_scores_high_and_one_it_misses_scores_low():
    rng = np.random.default_rng(0)
    rows = [(None, False)] * 6 + [("scratch", True)] * 4 + [("stain", False)] * 3 + [("stain", True)]
    maps, masks, labels, kinds = [], [], [], []
    for defect, found in rows:
        heat, truth = _image(defect, found, rng)
        maps.append(heat)
        masks.append(truth)
        labels.append(1 if defect else 0)
        kinds.append(defect)
    scores = [float(m.max()) for m in maps]
    out = per_kind_metrics(scores, maps, masks, labels, kinds, threshold=0.5)
    assert sorted(out) == ["scratch", "stain"]
    assert out["scratch"]["images"] == 4 and out["stain"]["images"] == 4
    assert out["scratch"]["image_recall"] == 1.0
    assert out["stain"]["image_recall"] == 0.25
    assert out["scratch"]["aupro"] > 0.9 > out["stain"]["aupro"]
    assert out["scratch"]["pixel_recall"] == 1.0
    assert out["stain"]["pixel_recall"] == pytest.approx(0.25)


def test_one_kind_only_gives_nothing_extra():
    assert per_kind_metrics([0.1, 0.9], None, None, [0, 1], [None, "crack"], 0.5) == {}
