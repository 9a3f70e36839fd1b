"""Checking uploaded bytes (pure functions, no database)."""
from __future__ import annotations

import io

from PIL import Image as PILImage

from projects.uploads import BadFile, CheckedImage, check_image, expand_zip
from tests.factories import make_image_bytes, make_png, make_zip


def test_a_png_passes_with_its_size_and_type():
    checked = check_image("a.png", make_png(40, 30), max_pixels=10_000)
    assert isinstance(checked, CheckedImage)
    assert (checked.width, checked.height, checked.content_type) == (40, 30, "image/png")


def test_jpeg_and_grayscale_pass():
    assert check_image("a.jpg", make_image_bytes(fmt="JPEG"), max_pixels=10_000).content_type == "image/jpeg"
    assert isinstance(check_image("g.png", make_image_bytes(mode="L"), max_pixels=10_000), CheckedImage)


def test_text_is_not_an_image():
    bad = check_image("notes.txt", b"hello", max_pixels=10_000)
    assert isinstance(bad, BadFile) and "not an image" in bad.error


def test_truncated_png_is_corrupt():
    bad = check_image("cut.png", make_png(64, 64)[:200], max_pixels=10_000)
    assert isinstance(bad, BadFile) and bad.error.startswith("corrupt image")


def test_decompression_bomb_is_refused_before_decoding():
    # A 20000 x 20000 single-colour PNG is tiny on disk but 400 M pixels decoded.
    buffer = io.BytesIO()
    PILImage.new("1", (20000, 20000)).save(buffer, format="PNG")
    bad = check_image("bomb.png", buffer.getvalue(), max_pixels=1_000_000)
    assert isinstance(bad, BadFile)
    assert "MAX_IMAGE_PIXELS=1000000" in bad.error and "20000x20000" in bad.error


def test_gif_is_not_accepted():
    buffer = io.BytesIO()
    PILImage.new("RGB", (8, 8)).save(buffer, format="GIF")
    bad = check_image("a.gif", buffer.getvalue(), max_pixels=10_000)
    assert isinstance(bad, BadFile) and "unsupported image format GIF" in bad.error


def test_zip_entries_are_listed_with_the_archive_name():
    entries, bad = expand_zip("set.zip", make_zip({"good/1.png": make_png(), "__MACOSX/._1.png": b"x", "dir/": b""}),
                              max_total_bytes=10**6)
    assert [name for name, _ in entries] == ["set.zip/good/1.png"] and bad == []


def test_zip_path_traversal_and_absolute_names_are_bad_entries():
    archive = make_zip({"../evil.png": make_png(), "/etc/x.png": make_png(seed=1), "ok.png": make_png(seed=2)})
    entries, bad = expand_zip("set.zip", archive, max_total_bytes=10**6)
    assert {item.name for item in bad} == {"set.zip/../evil.png", "set.zip//etc/x.png"}
    assert any("path traversal" in item.error for item in bad) and any("absolute" in item.error for item in bad)
    assert [name for name, _ in entries] == ["set.zip/ok.png"]


def test_zip_that_unpacks_over_the_limit_is_refused():
    entries, bad = expand_zip("big.zip", make_zip({"a.png": make_png(), "b.png": make_png(seed=1)}), max_total_bytes=100)
    assert entries == [] and "MAX_UPLOAD_BYTES=100" in bad[0].error


def test_broken_zip_is_named():
    entries, bad = expand_zip("broken.zip", b"PK\x03\x04garbage", max_total_bytes=10**6)
    assert entries == [] and bad[0].name == "broken.zip" and "not a valid zip" in bad[0].error
