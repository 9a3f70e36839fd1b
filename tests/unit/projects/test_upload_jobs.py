"""Large uploads become import jobs; uploads are read one file at a time from what Django spooled."""
from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from projects.models import Image, Job
from tests.factories import make_png, make_zip

pytestmark = pytest.mark.django_db


@pytest.fixture
def eager(settings):
    import projects.tasks  # noqa: F401  (registers the tasks eager mode runs)

    settings.CELERY_TASK_ALWAYS_EAGER = True
    settings.UPLOAD_JOB_MIN_FILES = 4


def _post(client, project, files: dict[str, bytes], **fields):
    payload = {"files": [SimpleUploadedFile(name, data) for name, data in files.items()], **fields}
    return client.post(f"/api/projects/{project.pk}/images/", payload, format="multipart")


def test_a_large_upload_answers_202_with_a_job_that_stores_the_images(alice_api, project, eager,
                                                                      django_capture_on_commit_callbacks):
    files = {f"p{i}.png": make_png(seed=i) for i in range(4)}
    files["p0-again.png"] = make_png(seed=0)
    with django_capture_on_commit_callbacks(execute=True):
        response = _post(alice_api, project, files, split="train", state="normal")
    assert response.status_code == 202, response.json()
    body = response.json()
    assert body["created"] == [] and body["job"]["kind"] == "import"
    job = Job.objects.get(pk=body["job"]["id"])
    assert job.status == "succeeded", job.error
    assert job.result["images_created"] == 4 and [d["file"] for d in job.result["duplicates"]] == ["p0-again.png"]
    images = Image.objects.filter(project=project)
    assert sorted(images.values_list("original_name", flat=True)) == ["p0.png", "p1.png", "p2.png", "p3.png"]
    assert set(images.values_list("split", "state")) == {("train", "normal")}
    assert job.params["files"] == 5 and job.input_file  # the packed upload is kept with its job


def test_a_bad_file_in_a_large_upload_fails_the_job_naming_it_and_saves_no_image(alice_api, project, eager,
                                                                                 django_capture_on_commit_callbacks):
    files = {f"p{i}.png": make_png(seed=i) for i in range(3)}
    files["notes.txt"] = b"not an image"
    with django_capture_on_commit_callbacks(execute=True):
        response = _post(alice_api, project, files)
    job = Job.objects.get(pk=response.json()["job"]["id"])
    assert job.status == "failed" and "notes.txt" in job.error and "nothing was saved" in job.error
    assert not Image.objects.filter(project=project).exists()


def test_a_small_upload_with_a_zip_is_stored_in_the_request(alice_api, project, eager):
    archive = make_zip({"a/x.png": make_png(seed=1), "a/y.png": make_png(seed=2)})
    response = _post(alice_api, project, {"set.zip": archive})
    assert response.status_code == 201 and len(response.json()["created"]) == 2
    assert not Job.objects.exists()
    stored = Image.objects.get(original_name="set.zip/a/x.png")
    with stored.file.open("rb") as handle:
        assert handle.read() == make_png(seed=1)
