"""The annotations REST API: what each persona may do, conflicts, bad polygons, masks, imports and exports.

alice admin, bob annotator, charlie inspector, dave outsider (tests/conftest.py).
Jobs run eagerly here (CELERY_TASK_ALWAYS_EAGER through the one job runner);
tests/integration/test_import_worker.py runs one through a real worker.
"""
from __future__ import annotations

import io
import json
import zipfile

import numpy as np
import pytest
from PIL import Image as PILImage

from annotations.models import AnnotationSet, LabelClass
from projects.models import Image, Job
from tests.factories import make_png, make_zip

pytestmark = pytest.mark.django_db

SQUARE = [[10, 10], [50, 10], [50, 50], [10, 50]]
HOLE = [[20, 20], [40, 20], [40, 40], [20, 40]]


@pytest.fixture
def image(project, image_factory):
    return image_factory(project, size=64)[0]


@pytest.fixture
def eager_jobs(settings, django_capture_on_commit_callbacks):
    """Run queued jobs in-process when the request's transaction commits."""
    settings.CELERY_TASK_ALWAYS_EAGER = True

    def run(call):
        with django_capture_on_commit_callbacks(execute=True):
            return call()

    return run


def _put(client, image, polygons, version):
    return client.put(f"/api/images/{image.pk}/annotations/", {"version": version, "polygons": polygons}, format="json")


def _png_array(response) -> np.ndarray:
    return np.asarray(PILImage.open(io.BytesIO(response.content)))


# --- permissions ------------------------------------------------------------------

@pytest.mark.parametrize("who, status", [("alice", 200), ("bob", 200), ("charlie", 200), ("dave", 404)])
def test_every_member_reads_annotations_and_masks_outsiders_get_404(personas_api, image, who, status):
    client = personas_api[who]
    assert client.get(f"/api/images/{image.pk}/annotations/").status_code == status
    assert client.get(f"/api/images/{image.pk}/mask.png").status_code == status
    assert client.get(f"/api/projects/{image.project_id}/label-classes/").status_code == status


@pytest.mark.parametrize("who, status", [("alice", 200), ("bob", 200), ("charlie", 403), ("dave", 404)])
def test_annotators_and_admins_edit_polygons_inspectors_cannot(personas_api, image, who, status):
    response = _put(personas_api[who], image, [{"outer": SQUARE}], 0)
    assert response.status_code == status, response.content
    assert AnnotationSet.objects.filter(image=image, version=1).exists() == (status == 200)
    if status == 403:
        assert "inspector" in response.json()["error"]


def test_anonymous_requests_are_refused(anon_api, image):
    assert anon_api.get(f"/api/images/{image.pk}/annotations/").status_code in (401, 403)
    assert anon_api.get(f"/api/images/{image.pk}/mask.png").status_code in (401, 403)


@pytest.mark.parametrize("who, status", [("alice", 201), ("bob", 403), ("charlie", 403), ("dave", 404)])
def test_only_admins_create_label_classes(personas_api, project, who, status):
    response = personas_api[who].post(f"/api/projects/{project.pk}/label-classes/", {"name": "dent"}, format="json")
    assert response.status_code == status
    assert LabelClass.objects.filter(project=project, name="dent").exists() == (status == 201)


@pytest.mark.parametrize("who, status", [("alice", 200), ("bob", 403), ("charlie", 403), ("dave", 404)])
def test_only_admins_edit_and_delete_label_classes(personas_api, project, who, status):
    lc = LabelClass.objects.create(project=project, name="dent")
    url = f"/api/projects/{project.pk}/label-classes/{lc.pk}/"
    assert personas_api[who].patch(url, {"color": "#00ff00"}, format="json").status_code == status
    assert personas_api[who].delete(url).status_code == (204 if status == 200 else status)


@pytest.mark.parametrize("who, status", [("alice", 202), ("bob", 403), ("charlie", 403), ("dave", 404)])
def test_only_admins_import(personas_api, project, eager_jobs, who, status):
    archive = make_zip({"train/good/a.png": make_png(seed=1), "test/good/b.png": make_png(seed=2)})
    response = eager_jobs(lambda: personas_api[who].post(
        f"/api/projects/{project.pk}/imports/",
        {"file": io.BytesIO(archive), "format": "mvtec"}, format="multipart",
    ))
    assert response.status_code == status, response.content
    assert Image.objects.filter(project=project).count() == (2 if status == 202 else 0)
    assert personas_api[who].get(f"/api/projects/{project.pk}/imports/").status_code == (200 if status == 202 else status)


@pytest.mark.parametrize("who, status", [("alice", 202), ("bob", 202), ("charlie", 403), ("dave", 404)])
def test_admins_and_annotators_export_inspectors_cannot(personas_api, project, image, eager_jobs, who, status):
    client = personas_api[who]
    response = eager_jobs(lambda: client.post(f"/api/projects/{project.pk}/exports/?format=coco"))
    assert response.status_code == status, response.content
    listing = client.get(f"/api/projects/{project.pk}/exports/?format=coco")
    assert listing.status_code == (200 if status == 202 else status)
    if status == 202:
        job = listing.json()["results"][0]
        assert job["status"] == "succeeded" and job["download_url"]
        assert client.get(job["download_url"]).status_code == 200
        assert personas_api["charlie"].get(job["download_url"]).status_code == 403
        assert personas_api["dave"].get(job["download_url"]).status_code == 404


# --- annotation semantics ----------------------------------------------------------

def test_get_shows_polygons_with_class_version_and_draft_flag(bob_api, image):
    empty = bob_api.get(f"/api/images/{image.pk}/annotations/").json()
    assert (empty["version"], empty["polygons"], empty["is_draft"]) == (0, [], False)

    saved = _put(bob_api, image, [{"outer": SQUARE, "holes": [HOLE]}], 0).json()

    assert saved["version"] == 1 and saved["state"] == "anomalous" and saved["updated_by"] == "bob"
    (polygon,) = saved["polygons"]
    assert polygon["outer"] == [[float(x), float(y)] for x, y in SQUARE] and len(polygon["holes"]) == 1
    assert polygon["label_class"]["name"] == "anomaly" and polygon["source"] == "manual"
    # What GET returns can be sent back as is (label_class as an object is accepted).
    again = _put(bob_api, image, saved["polygons"], saved["version"])
    assert again.status_code == 200 and again.json()["version"] == 2


def test_a_stale_save_gets_409_naming_both_versions_and_changes_nothing(alice_api, bob_api, image):
    _put(bob_api, image, [{"outer": SQUARE}], 0)
    response = _put(alice_api, image, [], 0)

    assert response.status_code == 409
    body = response.json()
    assert "version 1" in body["error"] and "version 0" in body["error"]
    assert body["details"] == {"current_version": 1, "your_version": 0}
    current = bob_api.get(f"/api/images/{image.pk}/annotations/").json()
    assert current["version"] == 1 and len(current["polygons"]) == 1 and current["state"] == "anomalous"


@pytest.mark.parametrize(
    "polygons, words",
    [
        ([{"outer": SQUARE}, {"outer": [[1, 1], [2, 2]]}], "polygon 1"),
        ([{"outer": [[1, 1], [200, 2], [3, 9]]}], "point 1 has x=200 outside the image"),
        ([{"outer": SQUARE, "holes": [[[0, 0], [5, 0], [5, 5]]]}], "hole 0"),
        ("not a list", "polygons"),
    ],
)
def test_bad_polygons_get_400_naming_the_polygon_and_point(bob_api, image, polygons, words):
    response = _put(bob_api, image, polygons, 0)
    assert response.status_code == 400
    assert words in response.json()["error"]
    assert not AnnotationSet.objects.filter(image=image, version__gt=0).exists()


def test_nan_in_the_json_body_is_refused(bob_api, image):
    body = '{"version": 0, "polygons": [{"outer": [[1, 1], [NaN, 5], [9, 1]]}]}'
    response = bob_api.put(f"/api/images/{image.pk}/annotations/", body, content_type="application/json")
    assert response.status_code == 400
    assert not AnnotationSet.objects.filter(image=image, version__gt=0).exists()


def test_mask_png_is_image_sized_0_or_255_with_holes_cut_and_an_etag(charlie_api, bob_api, image):
    blank = charlie_api.get(f"/api/images/{image.pk}/mask.png")
    assert blank["Content-Type"] == "image/png" and _png_array(blank).shape == (64, 64) and not _png_array(blank).any()

    _put(bob_api, image, [{"outer": SQUARE, "holes": [HOLE]}], 0)
    response = charlie_api.get(f"/api/images/{image.pk}/mask.png")
    mask = _png_array(response)
    assert set(np.unique(mask)) == {0, 255} and mask[15, 15] == 255 and mask[30, 30] == 0
    assert response["ETag"] != blank["ETag"]
    cached = charlie_api.get(f"/api/images/{image.pk}/mask.png", HTTP_IF_NONE_MATCH=response["ETag"])
    assert cached.status_code == 304


# --- imports and exports ------------------------------------------------------------

def test_an_import_that_is_not_a_zip_or_in_an_unknown_format_gets_400(alice_api, project):
    url = f"/api/projects/{project.pk}/imports/"
    not_zip = alice_api.post(url, {"file": io.BytesIO(b"hello"), "format": "via"}, format="multipart")
    assert not_zip.status_code == 400 and "zip" in not_zip.json()["error"]
    unknown = alice_api.post(url, {"file": io.BytesIO(make_zip({"a.png": make_png()})), "format": "yolo"},
                             format="multipart")
    assert unknown.status_code == 400 and "format" in unknown.json()["error"]
    assert not Job.objects.exists()


def test_an_archive_with_path_traversal_gets_400_and_no_job(alice_api, project):
    archive = make_zip({"train/good/a.png": make_png(), "../../evil.png": make_png(seed=1)})
    response = alice_api.post(f"/api/projects/{project.pk}/imports/", {"file": io.BytesIO(archive), "format": "mvtec"},
                              format="multipart")
    assert response.status_code == 400 and "path traversal" in response.json()["error"]
    assert not Job.objects.exists()


def test_a_malformed_import_ends_in_a_failed_job_with_the_reason(alice_api, project, eager_jobs):
    archive = make_zip({"train/a.png": make_png(), "train/via_region_data.json": b"{broken"})
    response = eager_jobs(lambda: alice_api.post(
        f"/api/projects/{project.pk}/imports/", {"file": io.BytesIO(archive), "format": "via"}, format="multipart"))
    assert response.status_code == 202
    job = Job.objects.get(pk=response.json()["id"])
    assert job.status == "failed" and "via_region_data.json" in job.error and "not valid JSON" in job.error
    assert not Image.objects.filter(project=project).exists()
    listed = alice_api.get(f"/api/projects/{project.pk}/imports/").json()["results"][0]
    assert listed["status"] == "failed" and listed["format"] == "via"


def test_an_import_job_records_what_it_created(alice_api, project, eager_jobs):
    mask = np.zeros((64, 64), np.uint8)
    mask[5:20, 5:20] = 255
    buffer = io.BytesIO()
    PILImage.fromarray(mask).save(buffer, format="PNG")
    archive = make_zip({
        "plates/train/good/a.png": make_png(seed=1),
        "plates/test/dent/b.png": make_png(seed=2),
        "plates/ground_truth/dent/b_mask.png": buffer.getvalue(),
    })
    response = eager_jobs(lambda: alice_api.post(
        f"/api/projects/{project.pk}/imports/", {"file": io.BytesIO(archive), "format": "mvtec"}, format="multipart"))
    job = Job.objects.get(pk=response.json()["id"])
    assert job.status == "succeeded", job.error
    assert job.result["images_created"] == 2 and job.result["polygons"] == 1
    assert job.kind == "import" and job.requested_by.username == "alice"


def test_a_finished_export_downloads_as_a_zip_in_the_chosen_format(bob_api, project, image, eager_jobs):
    _put(bob_api, image, [{"outer": SQUARE}], 0)
    response = eager_jobs(lambda: bob_api.post(f"/api/projects/{project.pk}/exports/", {"format": "mvtec"}, format="json"))
    job = response.json()
    assert response.status_code == 202 and job["format"] == "mvtec"
    download = bob_api.get(f"/api/projects/{project.pk}/exports/{job['id']}/download")
    assert download.status_code == 200 and download["Content-Type"] == "application/zip"
    names = zipfile.ZipFile(io.BytesIO(b"".join(download.streaming_content))).namelist()
    assert names == ["ground_truth/anomaly/image_000_mask.png", "test/anomaly/image_000.png"]


def test_a_large_export_is_stored_in_chunks_and_streams_back_whole(bob_api, project, image, eager_jobs, settings):
    from projects.models import Blob, BlobChunk

    settings.BLOB_CHUNK_BYTES = 1024  # the archive (two PNGs) spans several chunks
    _put(bob_api, image, [{"outer": SQUARE}], 0)
    job = eager_jobs(lambda: bob_api.post(f"/api/projects/{project.pk}/exports/", {"format": "mvtec"}, format="json")).json()
    stored = Job.objects.get(pk=job["id"]).output_file.name
    blob = Blob.objects.get(sha256=stored)
    assert blob.chunks > 1 and bytes(blob.data) == b""
    assert BlobChunk.objects.filter(blob=blob).count() == blob.chunks
    download = bob_api.get(f"/api/projects/{project.pk}/exports/{job['id']}/download")
    assert download.status_code == 200 and download.streaming
    content = b"".join(download.streaming_content)
    assert len(content) == blob.size == int(download["Content-Length"])
    names = zipfile.ZipFile(io.BytesIO(content)).namelist()
    assert names == ["ground_truth/anomaly/image_000_mask.png", "test/anomaly/image_000.png"]
    assert bob_api.get(f"/api/projects/{project.pk}/exports/{job['id']}/download", HTTP_IF_NONE_MATCH=download["ETag"]).status_code == 304


def test_an_unfinished_export_cannot_be_downloaded(bob_api, project):
    response = bob_api.post(f"/api/projects/{project.pk}/exports/", {"format": "coco"}, format="json")
    download = bob_api.get(f"/api/projects/{project.pk}/exports/{response.json()['id']}/download")
    assert download.status_code == 409 and "queued" in download.json()["error"]


def test_an_unknown_export_format_gets_400(bob_api, project):
    response = bob_api.post(f"/api/projects/{project.pk}/exports/", {"format": "yolo"}, format="json")
    assert response.status_code == 400 and "format" in response.json()["error"]


def test_label_class_list_and_duplicate_name(alice_api, project):
    url = f"/api/projects/{project.pk}/label-classes/"
    assert alice_api.post(url, {"name": "dent", "color": "#112233"}, format="json").status_code == 201
    duplicate = alice_api.post(url, {"name": "dent"}, format="json")
    assert duplicate.status_code == 409 and "already exists" in duplicate.json()["error"]
    assert alice_api.get(url).json() == [{"id": LabelClass.objects.get().pk, "name": "dent", "color": "#112233"}]
    assert json.loads(alice_api.post(url, {"name": "x", "color": "red"}, format="json").content)["error"]


def test_an_import_over_max_upload_bytes_gets_413(alice_api, project, settings):
    settings.MAX_UPLOAD_BYTES = 1000
    archive = make_zip({"train/good/a.png": make_png(seed=1)})
    response = alice_api.post(f"/api/projects/{project.pk}/imports/", {"file": io.BytesIO(archive), "format": "mvtec"},
                              format="multipart")
    assert response.status_code == 413 and "MAX_UPLOAD_BYTES" in response.json()["error"]
    assert not Job.objects.exists()
