"""Uploading, listing and serving images against real Postgres, with every bad input the issue lists."""
from __future__ import annotations

import io

import pytest
from PIL import Image as PILImage

from projects.models import AuditEvent, Blob, Image
from tests.factories import make_image_bytes, make_png, make_zip

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]


def _nothing_saved(project):
    return not Image.objects.filter(project=project).exists() and not AuditEvent.objects.filter(verb="image.upload").exists()


def test_upload_several_files_and_a_zip_then_list_them(alice_api, charlie_api, project, upload):
    response = upload(alice_api, project, {
        "a.png": make_png(seed=1), "b.jpg": make_image_bytes(32, 48, seed=2, fmt="JPEG"),
        "more.zip": make_zip({"good/c.png": make_png(seed=3), "good/d.png": make_png(seed=4)}),
    }, split="train", state="normal")
    assert response.status_code == 201, response.json()
    created = response.json()["created"]
    assert sorted(i["original_name"] for i in created) == ["a.png", "b.jpg", "more.zip/good/c.png", "more.zip/good/d.png"]
    jpeg = next(i for i in created if i["original_name"] == "b.jpg")
    assert (jpeg["width"], jpeg["height"], jpeg["content_type"], jpeg["split"]) == (32, 48, "image/jpeg", "train")
    listing = charlie_api.get(f"/api/projects/{project.pk}/images/?split=train&page_size=2").json()
    assert listing["count"] == 4 and len(listing["results"]) == 2 and listing["next"]
    assert charlie_api.get(f"/api/projects/{project.pk}/images/?split=test").json()["count"] == 0
    assert AuditEvent.objects.get(verb="image.upload").details["image_ids"] == sorted(i["id"] for i in created)


def test_duplicates_are_reported_not_stored_twice(alice_api, project, upload):
    first = upload(alice_api, project, {"a.png": make_png(seed=1)})
    again = upload(alice_api, project, {"copy-of-a.png": make_png(seed=1), "a-again.png": make_png(seed=1),
                                        "b.png": make_png(seed=2)})
    assert again.status_code == 201
    body = again.json()
    assert [i["original_name"] for i in body["created"]] == ["b.png"]
    assert [(d["file"], d["image_id"]) for d in body["duplicates"]] == [
        ("copy-of-a.png", first.json()["created"][0]["id"]), ("a-again.png", first.json()["created"][0]["id"]),
    ]
    assert Image.objects.filter(project=project).count() == 2
    only_duplicates = upload(alice_api, project, {"a.png": make_png(seed=1)})
    assert only_duplicates.status_code == 200 and only_duplicates.json()["created"] == []


@pytest.mark.parametrize("files, named, problem", [
    ({"ok.png": make_png(), "notes.txt": b"just text"}, "notes.txt", "not an image"),
    ({"ok.png": make_png(), "cut.png": make_png(seed=5)[:150]}, "cut.png", "corrupt image"),
    ({"ok.png": make_png(), "set.zip": make_zip({"x.png": make_png(seed=1), "readme.md": b"# hi"})},
     "set.zip/readme.md", "not an image"),
    ({"ok.png": make_png(), "evil.zip": make_zip({"../x.png": make_png(seed=1)})}, "evil.zip/../x.png", "path traversal"),
    ({"abs.zip": make_zip({"/tmp/x.png": make_png(seed=1)})}, "abs.zip//tmp/x.png", "absolute path"),
    ({"broken.zip": b"PK\x03\x04 not really"}, "broken.zip", "not a valid zip"),
])
def test_a_batch_with_a_bad_file_saves_nothing_and_names_it(alice_api, project, upload, files, named, problem):
    response = upload(alice_api, project, files)
    assert response.status_code == 400
    body = response.json()
    assert named in body["error"] and problem in body["error"] and "nothing was saved" in body["error"]
    assert any(bad["file"] == named and problem in bad["error"] for bad in body["details"]["bad_files"])
    assert _nothing_saved(project)


def test_every_bad_file_is_listed(alice_api, project, upload):
    response = upload(alice_api, project, {"a.txt": b"a", "b.txt": b"b", "ok.png": make_png()})
    assert [bad["file"] for bad in response.json()["details"]["bad_files"]] == ["a.txt", "b.txt"]


def test_decompression_bomb_is_a_400_naming_the_limit(alice_api, project, upload, settings):
    settings.MAX_IMAGE_PIXELS = 1_000_000
    buffer = io.BytesIO()
    PILImage.new("1", (5000, 5000)).save(buffer, format="PNG")
    response = upload(alice_api, project, {"bomb.png": buffer.getvalue()})
    assert response.status_code == 400
    assert "bomb.png" in response.json()["error"] and "MAX_IMAGE_PIXELS=1000000" in response.json()["error"]
    assert _nothing_saved(project)


def test_upload_over_max_upload_bytes_is_a_413_naming_the_limit(alice_api, project, upload, settings):
    settings.MAX_UPLOAD_BYTES = 5000
    response = upload(alice_api, project, {"big.png": make_png(128, 128)})
    assert response.status_code == 413
    assert "MAX_UPLOAD_BYTES=5000" in response.json()["error"]
    assert _nothing_saved(project)


def test_a_zip_bomb_over_the_limit_is_refused(alice_api, project, upload, settings):
    settings.MAX_UPLOAD_BYTES = 200_000
    archive = make_zip({f"{i}.png": make_png(128, 128, seed=i) for i in range(5)})  # ~250 kB unpacked
    response = upload(alice_api, project, {"many.zip": archive})
    assert response.status_code in (400, 413) and "MAX_UPLOAD_BYTES=200000" in response.json()["error"]
    assert _nothing_saved(project)


def test_no_files_and_bad_fields_are_named(alice_api, project, upload):
    empty = alice_api.post(f"/api/projects/{project.pk}/images/", {}, format="multipart")
    assert empty.status_code == 400 and "files" in empty.json()["error"]
    bad_split = upload(alice_api, project, {"a.png": make_png()}, split="holdout")
    assert bad_split.status_code == 400 and bad_split.json()["error"].startswith("split:")
    assert _nothing_saved(project)


def test_image_file_has_etag_and_answers_304(bob_api, project, image_factory):
    image = image_factory(project)[0]
    response = bob_api.get(f"/api/images/{image.pk}/file")
    assert response.status_code == 200 and response["Content-Type"] == "image/png"
    assert response.content == make_png(seed=0)
    assert response["ETag"] == f'"{image.sha256}"' and "immutable" in response["Cache-Control"]
    assert bob_api.get(f"/api/images/{image.pk}/file", HTTP_IF_NONE_MATCH=response["ETag"]).status_code == 304


def test_thumbnail_is_made_by_a_task_never_inside_a_request(bob_api, project, image_factory):
    from projects.services import image_thumbnails_make

    image = image_factory(project, size=512)[0]
    url = f"/api/images/{image.pk}/thumbnail"
    blobs = Blob.objects.count()
    pending = bob_api.get(url)
    assert pending.status_code == 202 and pending["Content-Type"] == "image/svg+xml"
    assert "no-store" in pending["Cache-Control"] and pending["Retry-After"]
    assert Blob.objects.count() == blobs  # the request rendered nothing

    assert image_thumbnails_make(image_ids=[image.pk]) == 1  # what the queued task does
    response = bob_api.get(url)
    assert response.status_code == 200 and response["Content-Type"] == "image/jpeg"
    assert PILImage.open(io.BytesIO(response.content)).size == (256, 256)
    blobs = Blob.objects.count()
    assert image_thumbnails_make(image_ids=[image.pk]) == 0  # made once
    again = bob_api.get(url)
    assert again.content == response.content and Blob.objects.count() == blobs
    assert bob_api.get(url, HTTP_IF_NONE_MATCH=response["ETag"]).status_code == 304


def test_an_upload_queues_the_thumbnails_of_its_images_after_commit(alice_api, project, upload, settings,
                                                                  django_capture_on_commit_callbacks):
    import projects.tasks  # noqa: F401  (registers the task eager mode runs)

    settings.CELERY_TASK_ALWAYS_EAGER = True
    with django_capture_on_commit_callbacks(execute=True):
        response = upload(alice_api, project, {"a.png": make_png(300, 200, seed=1), "b.png": make_png(seed=2)})
    for created in response.json()["created"]:
        thumbnail = alice_api.get(f"/api/images/{created['id']}/thumbnail")
        assert thumbnail.status_code == 200 and thumbnail["Content-Type"] == "image/jpeg"


def test_patch_state_split_and_delete(alice_api, bob_api, project, image_factory):
    image = image_factory(project)[0]
    marked = bob_api.patch(f"/api/images/{image.pk}/", {"state": "normal"}, format="json")
    assert marked.status_code == 200 and marked.json()["state"] == "normal"
    assert bob_api.patch(f"/api/images/{image.pk}/", {"split": "train"}, format="json").status_code == 403
    assert alice_api.patch(f"/api/images/{image.pk}/", {"split": "train"}, format="json").json()["split"] == "train"
    bad = alice_api.patch(f"/api/images/{image.pk}/", {"state": "weird"}, format="json")
    assert bad.status_code == 400 and bad.json()["error"].startswith("state:")
    assert alice_api.delete(f"/api/images/{image.pk}/").status_code == 204
    assert not Image.objects.filter(pk=image.pk).exists()
    assert list(AuditEvent.objects.filter(object_id=str(image.pk)).values_list("verb", flat=True).order_by("id")) == [
        "image.update", "image.update", "image.delete"]


def test_annotated_filter(alice_api, project, image_factory, alice):
    from annotations.models import Annotation, AnnotationSet, LabelClass

    first, second = image_factory(project, 2)
    label = LabelClass.objects.create(project=project, name="scratch")
    annotation_set = AnnotationSet.objects.create(image=first, version=1)
    Annotation.objects.create(annotation_set=annotation_set, label_class=label, version=1, author=alice,
                              polygon={"outer": [[1, 1], [10, 1], [10, 10]], "holes": []})
    AnnotationSet.objects.create(image=second, version=1)  # saved once, but empty: not annotated
    annotated = alice_api.get(f"/api/projects/{project.pk}/images/?annotated=true").json()["results"]
    unannotated = alice_api.get(f"/api/projects/{project.pk}/images/?annotated=false").json()["results"]
    assert [i["id"] for i in annotated] == [first.pk] and annotated[0]["annotated"] is True
    assert [i["id"] for i in unannotated] == [second.pk]
    assert alice_api.get(f"/api/projects/{project.pk}/images/?annotated=maybe").status_code == 400


def test_upload_hook_runs_after_commit_with_the_new_ids(alice_api, project, upload, django_capture_on_commit_callbacks):
    from projects import hooks

    seen = []

    def record(*, project_id, image_ids):
        seen.append((project_id, image_ids))

    hooks.register_images_uploaded(record)
    try:
        with django_capture_on_commit_callbacks(execute=True):
            response = upload(alice_api, project, {"a.png": make_png(seed=1), "b.png": make_png(seed=2)})
        with django_capture_on_commit_callbacks(execute=True):
            upload(alice_api, project, {"bad.txt": b"x"})
    finally:
        hooks.images_uploaded.remove(record)
    assert seen == [(project.pk, [i["id"] for i in response.json()["created"]])]
