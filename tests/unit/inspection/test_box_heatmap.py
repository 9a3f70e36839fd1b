"""The box tool refines GrabCut with the active model's heatmap when the image has a prediction."""
from __future__ import annotations

import pytest

from ml.assist import pixel_area
from ml.formats.common import Region
from tests.unit.inspection.conftest import SQUARE

pytestmark = pytest.mark.django_db


def test_box_uses_the_active_models_heatmap(trained, bob_api):
    _, dataset = trained
    image = dataset["test_defect"][0]
    res = bob_api.post(f"/api/images/{image.pk}/annotation-tools/box/", {"polygons": [], "box": [4, 4, 40, 40]}, format="json")
    assert res.status_code == 200, res.json()
    body = res.json()
    assert body["used_heatmap"] is True
    x0, y0, x1, y1 = SQUARE
    area = pixel_area([Region(outer=p["outer"], holes=p["holes"]) for p in body["polygons"]], 48, 48)
    assert abs(area - (x1 - x0) * (y1 - y0)) <= 0.05 * (x1 - x0) * (y1 - y0)


def test_without_a_prediction_the_box_alone_decides(project, upload, bob_api):
    image = upload(project, [300], defect=True)[0]
    res = bob_api.post(f"/api/images/{image.pk}/annotation-tools/box/", {"polygons": [], "box": [4, 4, 40, 40]}, format="json")
    assert res.status_code == 200 and res.json()["used_heatmap"] is False
