"""Model versions: activation (one active per project, rollback) and thresholds (re-flagging)."""
from __future__ import annotations

import pytest
from django.db import IntegrityError, transaction

from inspection.models import ModelVersion, Prediction
from projects.models import AuditEvent, Image, Job

pytestmark = pytest.mark.django_db


@pytest.fixture
def second_version(trained, project, alice, run_job_now):
    from inspection.services.training import training_job_start

    job = run_job_now(training_job_start(project=project, user=alice, pipeline="test-meandiff", config={"seed": 1}))
    return ModelVersion.objects.get(job=job)


def test_activation_keeps_exactly_one_active_and_rolls_back(trained, second_version, alice_api, run_job_now):
    first, _ = trained
    response = alice_api.post(f"/api/model-versions/{second_version.pk}/activate")
    assert response.status_code == 200 and response.json()["is_active"]
    assert list(ModelVersion.objects.filter(is_active=True)) == [second_version]
    # Activating fills the review queue: a job predicts the images this version has not scored yet.
    job = Job.objects.filter(kind="inference").latest("created_at")
    assert job.params == {"model_version": second_version.pk, "image_ids": None, "only_missing": True, "reason": "manual"}
    assert run_job_now(job).result["predicted"] == 11

    alice_api.post(f"/api/model-versions/{first.pk}/activate")  # rollback
    assert list(ModelVersion.objects.filter(is_active=True)) == [first]
    assert AuditEvent.objects.filter(verb="model_version.activate").count() == 3
    listing = alice_api.get(f"/api/projects/{first.project_id}/model-versions/").json()["results"]
    assert [(v["number"], v["is_active"]) for v in listing] == [(2, False), (1, True)]
    assert all("image_auroc" in v["metrics"] for v in listing)  # side by side


def test_the_database_refuses_two_active_versions(trained, second_version):
    with pytest.raises(IntegrityError), transaction.atomic():
        ModelVersion.objects.filter(pk=second_version.pk).update(is_active=True)


def _redraw_jobs(model_version):
    return Job.objects.filter(kind="redraw", params__model_version=model_version.pk).order_by("pk")


def test_threshold_change_reflags_in_the_request_and_redraws_regions_in_a_job(trained, alice_api, run_job_now):
    model_version, data = trained
    url = f"/api/model-versions/{model_version.pk}/"
    assert Prediction.objects.filter(model_version=model_version, flagged=True).count() == 3
    normal = Prediction.objects.get(image=data["train"][0])
    assert not normal.polygons

    regions_before = dict(Prediction.objects.values_list("pk", "polygons"))
    response = alice_api.patch(url, {"threshold": 0.0}, format="json")
    assert response.status_code == 200 and response.json()["threshold"] == 0.0
    assert response.json()["threshold_policy"] == "manual"
    assert Prediction.objects.filter(model_version=model_version, flagged=False).count() == 0
    # The image threshold flags; the regions stay as the region threshold drew them, and no job is queued.
    assert dict(Prediction.objects.values_list("pk", "polygons")) == regions_before
    assert not _redraw_jobs(model_version).exists()

    response = alice_api.patch(url, {"region_threshold": 0.0}, format="json")
    assert response.status_code == 200 and response.json()["region_threshold"] == 0.0
    assert response.json()["region_threshold_policy"] == "manual" and response.json()["threshold"] == 0.0
    normal.refresh_from_db()
    assert not normal.polygons  # not drawn inside the request
    (job,) = _redraw_jobs(model_version)
    assert job.status == "queued" and job.params["region_threshold"] == 0.0
    job = run_job_now(job)
    assert job.status == "succeeded" and job.result["redrawn"] == Prediction.objects.filter(model_version=model_version).count()
    normal.refresh_from_db()
    assert normal.polygons  # every pixel above a zero region threshold: the region covers the image
    flags = dict(Prediction.objects.values_list("pk", "flagged"))

    # Above every heatmap maximum: flags and regions are cleared by the request's one UPDATE.
    alice_api.patch(url, {"threshold": 10.0, "region_threshold": 10.0}, format="json")
    assert not Prediction.objects.filter(flagged=True).exists()
    assert not Prediction.objects.exclude(polygons=[]).exists()
    assert run_job_now(_redraw_jobs(model_version).last()).result["redrawn"] == 0
    assert AuditEvent.objects.filter(verb="model_version.threshold").count() == 3
    assert flags and all(flags.values())  # (they were all flagged at 0.0 before)
    assert alice_api.patch(url, {}, format="json").status_code == 400


def test_a_redraw_superseded_by_a_later_threshold_change_stops_and_the_later_one_draws(trained, alice_api, run_job_now):
    model_version, data = trained
    url = f"/api/model-versions/{model_version.pk}/"
    alice_api.patch(url, {"threshold": 0.0, "region_threshold": 0.0}, format="json")
    alice_api.patch(url, {"threshold": 0.05, "region_threshold": 0.05}, format="json")
    first, second = _redraw_jobs(model_version)
    assert run_job_now(first).result["superseded"] is True
    second = run_job_now(second)
    assert second.result["superseded"] is False
    predictions = list(Prediction.objects.filter(model_version=model_version))
    for prediction in predictions:
        assert prediction.flagged == (prediction.score > 0.05)
        if prediction.heatmap_max <= 0.05:
            assert prediction.polygons == []
    # The regions now are those of 0.05, not of 0.0 (which covered whole images).
    assert 0 < sum(bool(p.polygons) for p in predictions) < len(predictions)
    assert second.result["redrawn"] == sum(p.heatmap_max > 0.05 for p in predictions)


def test_a_threshold_change_over_1000_predictions_answers_within_200_ms(trained, alice_api, django_assert_max_num_queries):
    """Issue 9's figure: the request costs a constant number of queries, whatever the count."""
    import time

    model_version, _ = trained
    template = Prediction.objects.filter(model_version=model_version).first()
    images = [Image(project=model_version.project, sha256=f"{i:064x}", width=48, height=48, content_type="image/png",
                    file=template.image.file.name, original_name=f"bulk{i}.png") for i in range(1000)]
    Image.objects.bulk_create(images)
    Prediction.objects.bulk_create([
        Prediction(image=image, model_version=model_version, score=i / 1000, heatmap=template.heatmap.name,
                   heatmap_min=template.heatmap_min, heatmap_max=i / 1000, polygons=template.polygons, flagged=False)
        for i, image in enumerate(images)
    ])
    url = f"/api/model-versions/{model_version.pk}/"
    with django_assert_max_num_queries(20):
        started = time.perf_counter()
        response = alice_api.patch(url, {"threshold": 0.5}, format="json")
        elapsed = time.perf_counter() - started
    assert response.status_code == 200
    assert Prediction.objects.filter(model_version=model_version, image__original_name__startswith="bulk", flagged=True).count() == 499
    assert elapsed < 0.2, f"threshold change over 1,000 predictions took {elapsed * 1000:.0f} ms"


@pytest.mark.parametrize("bad", ["high", None, "nan", "Infinity"])
def test_bad_thresholds_are_refused(trained, alice_api, bad):
    model_version, _ = trained
    response = alice_api.patch(f"/api/model-versions/{model_version.pk}/", {"threshold": bad}, format="json")
    assert response.status_code == 400 and "threshold" in response.json()["error"]
    model_version.refresh_from_db()
    assert model_version.threshold_policy != "manual"


@pytest.mark.parametrize("persona, status", [("bob", 403), ("charlie", 403), ("dave", 404)])
def test_only_admins_activate_and_set_thresholds(trained, second_version, personas_api, persona, status):
    client = personas_api[persona]
    assert client.post(f"/api/model-versions/{second_version.pk}/activate").status_code == status
    assert client.patch(f"/api/model-versions/{second_version.pk}/", {"threshold": 0.1}, format="json").status_code == status
    second_version.refresh_from_db()
    assert not second_version.is_active and second_version.threshold != 0.1


def test_members_read_model_versions_outsiders_do_not(trained, bob_api, charlie_api, dave_api):
    model_version, _ = trained
    assert bob_api.get(f"/api/model-versions/{model_version.pk}/").status_code == 200
    assert charlie_api.get(f"/api/projects/{model_version.project_id}/model-versions/").status_code == 200
    assert dave_api.get(f"/api/model-versions/{model_version.pk}/").status_code == 404
    assert dave_api.get(f"/api/projects/{model_version.project_id}/model-versions/").status_code == 404


def _clone_versions(model_version, n):
    """``n`` more versions like ``model_version``, each with a job carrying a long log and big curves."""
    for k in range(n):
        job = Job.objects.create(project=model_version.project, kind="training", status="succeeded",
                                 log=[f"line {i}" for i in range(2000)])
        ModelVersion.objects.create(
            project=model_version.project, number=model_version.number + 1 + k, pipeline=model_version.pipeline,
            config=model_version.config, artifact=model_version.artifact.name, threshold=model_version.threshold,
            region_threshold=model_version.region_threshold, metrics=model_version.metrics, curves={"roc": list(range(5000))}, snapshot=model_version.snapshot,
            job=job, created_by=model_version.created_by,
        )


def test_the_model_version_list_costs_the_same_queries_for_any_number_of_versions(
    trained, project, charlie_api, django_assert_max_num_queries, django_assert_num_queries
):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    model_version, _ = trained
    url = f"/api/projects/{project.pk}/model-versions/"
    with CaptureQueriesContext(connection) as one:
        first = charlie_api.get(url).json()
    _clone_versions(model_version, 6)
    with CaptureQueriesContext(connection) as seven:
        body = charlie_api.get(url, {"page_size": 5}).json()
    assert body["count"] == 7 and len(body["results"]) == 5  # ?page_size is honoured here too
    assert len(seven.captured_queries) == len(one.captured_queries), [q["sql"] for q in seven.captured_queries]
    listed = next(q["sql"] for q in seven.captured_queries if 'FROM "inspection_modelversion"' in q["sql"]
                  and "LIMIT" in q["sql"])
    columns = listed.split(" FROM ")[0]
    assert '"curves"' not in columns and '"log"' not in columns, columns
    assert '"inspection_datasetsnapshot"."images"' not in columns.replace('("inspection_datasetsnapshot"."images")', "")
    assert body["results"][-1]["snapshot"]["images"] == first["results"][0]["snapshot"]["images"] > 0
