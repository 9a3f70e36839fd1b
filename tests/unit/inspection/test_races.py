"""Racing activations and threshold changes against real Postgres (threads, real row locks)."""
from __future__ import annotations

import threading

import pytest
from django.db import connection

from inspection.models import ModelVersion, Prediction

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def _race(functions) -> list[BaseException]:
    barrier = threading.Barrier(len(functions))
    errors: list[BaseException] = []

    def run(fn):
        try:
            barrier.wait()
            fn()
        except BaseException as exc:  # collected and asserted on by the test
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(fn,)) for fn in functions]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return errors


@pytest.fixture
def versions(trained, project, alice, run_job_now):
    from inspection.services.training import training_job_start

    extra = [
        ModelVersion.objects.get(job=run_job_now(training_job_start(project=project, user=alice, pipeline="test-meandiff", config={"seed": s})))
        for s in (1, 2, 3)
    ]
    return [trained[0], *extra]


def test_racing_activations_leave_exactly_one_active(versions, alice):
    from inspection.services.model_versions import model_version_activate

    for _ in range(3):
        errors = _race([lambda v=v: model_version_activate(model_version=v, user=alice, predict_missing=False) for v in versions])
        assert errors == []
        assert ModelVersion.objects.filter(project=versions[0].project, is_active=True).count() == 1


def test_racing_threshold_changes_leave_flags_and_regions_matching_the_stored_threshold(versions, alice, run_job_now):
    from inspection.services.model_versions import model_version_set_threshold
    from projects.models import Job

    model_version = versions[0]
    thresholds = [0.0, 0.05, 0.2, 10.0]
    errors = _race([
        lambda t=t: model_version_set_threshold(model_version=model_version, threshold=t, region_threshold=t, user=alice)
        for t in thresholds
    ])
    assert errors == []
    model_version.refresh_from_db()
    assert model_version.threshold in thresholds and model_version.region_threshold == model_version.threshold
    # Each change queued a redraw; whichever order they run in, only the current region threshold's draws.
    redraws = [run_job_now(job) for job in Job.objects.filter(kind="redraw").order_by("-pk")]
    assert all(job.status == "succeeded" for job in redraws)
    assert {job.params["region_threshold"] for job in redraws if not job.result["superseded"]} == {model_version.region_threshold}
    for prediction in Prediction.objects.filter(model_version=model_version):
        assert prediction.flagged == (prediction.score > model_version.threshold)
        assert bool(prediction.polygons) == (prediction.heatmap_max > model_version.region_threshold)


def test_threshold_change_racing_an_inference_job_leaves_consistent_flags(versions, project, alice):
    from inspection.services.inference import inference_job_run, inference_job_start
    from inspection.services.model_versions import model_version_set_threshold

    model_version = versions[0]
    job = inference_job_start(project=project, user=alice, model_version=model_version)
    errors = _race([
        lambda: inference_job_run(job_id=job.pk),
        lambda: model_version_set_threshold(model_version=model_version, threshold=0.0, user=alice),
    ])
    assert errors == []
    model_version.refresh_from_db()
    assert model_version.threshold == 0.0
    assert Prediction.objects.filter(model_version=model_version, flagged=False).count() == 0
