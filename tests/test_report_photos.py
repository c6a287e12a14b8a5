"""Citizens' photos (issue 15): only images, judged by content; size-limited in bytes and in pixels
before decoding; stored re-encoded with no EXIF (no GPS, no device); upright; with a thumbnail.
The photos are made here with Pillow the way a phone writes them (EXIF GPS IFD, make, model,
orientation), and read back from the bytes that would be stored."""

from __future__ import annotations

import io

import pytest
from PIL import Image, ImageDraw

from gis.reports import photos
from layers.errors import Invalid, TooLarge

GPS_IFD = 0x8825
MAKE, MODEL, ORIENTATION, DATETIME_ORIGINAL = 0x010F, 0x0110, 0x0112, 0x9003


def phone_jpeg(width: int = 1200, height: int = 900, orientation: int = 1) -> bytes:
    """A JPEG as a phone writes one: GPS position (Hà Nội), device, orientation, a red mark in
    the top-left corner to tell which way up the pixels are."""
    image = Image.new("RGB", (width, height), (40, 120, 200))
    ImageDraw.Draw(image).rectangle((0, 0, width // 5, height // 5), fill=(230, 20, 20))
    exif = Image.Exif()
    exif[MAKE] = "PhoneMaker"
    exif[MODEL] = "Model X 12"
    exif[ORIENTATION] = orientation
    exif.get_ifd(GPS_IFD).update({1: "N", 2: (21.0, 1.0, 30.0), 3: "E", 4: (105.0, 51.0, 12.0)})
    out = io.BytesIO()
    image.save(out, "JPEG", exif=exif, quality=90)
    return out.getvalue()


def stored(photo: photos.Photo) -> Image.Image:
    image = Image.open(io.BytesIO(photo.jpeg))
    assert image.format == "JPEG"
    return image


def test_the_upload_has_what_a_phone_writes() -> None:
    """The fixture itself: a test of stripping must start from a file that has it."""
    exif = Image.open(io.BytesIO(phone_jpeg())).getexif()
    assert exif[MODEL] == "Model X 12" and exif.get_ifd(GPS_IFD)[1] == "N"


def test_stored_photo_carries_no_location_and_no_device() -> None:
    photo = photos.prepare(phone_jpeg())
    image = stored(photo)
    assert not image.getexif(), dict(image.getexif())
    assert not image.getexif().get_ifd(GPS_IFD)
    assert "exif" not in image.info and "icc_profile" not in image.info
    for needle in (b"PhoneMaker", b"Model X 12", b"Exif"):
        assert needle not in photo.jpeg and needle not in photo.thumbnail
    assert not Image.open(io.BytesIO(photo.thumbnail)).getexif()
    assert (image.width, image.height) == (photo.width, photo.height) == (1200, 900)


def test_photo_is_turned_upright_by_its_orientation() -> None:
    # Orientation 6: the pixels are stored turned; the viewer turns them 90° clockwise.
    photo = photos.prepare(phone_jpeg(1200, 900, orientation=6))
    image = stored(photo).convert("RGB")
    assert (image.width, image.height) == (900, 1200)
    # the red corner, top-left as stored, is top-right once upright
    r, g, b = image.getpixel((image.width - 20, 20))
    assert r > 180 and g < 80, (r, g, b)
    r, g, b = image.getpixel((20, 20))
    assert b > 150 and r < 100, (r, g, b)


def test_large_photo_is_scaled_down_and_gets_a_thumbnail() -> None:
    photo = photos.prepare(phone_jpeg(4000, 3000))
    assert (photo.width, photo.height) == (photos.LONG_SIDE, photos.LONG_SIDE * 3 // 4)
    thumb = Image.open(io.BytesIO(photo.thumbnail))
    assert thumb.format == "JPEG" and max(thumb.size) == photos.THUMB_SIDE
    assert len(photo.thumbnail) < len(photo.jpeg)


@pytest.mark.parametrize("fmt", ["PNG", "WEBP"])
def test_png_and_webp_are_accepted_with_transparency_on_white(fmt: str) -> None:
    image = Image.new("RGBA", (64, 48), (0, 0, 0, 0))
    ImageDraw.Draw(image).rectangle((0, 0, 31, 47), fill=(0, 128, 0, 255))
    out = io.BytesIO()
    image.save(out, fmt)
    result = stored(photos.prepare(out.getvalue())).convert("RGB")
    assert result.size == (64, 48)
    assert min(result.getpixel((60, 24))) > 240  # transparent -> white
    r, g, b = result.getpixel((10, 24))
    assert g > 100 and r < 40 and b < 40


@pytest.mark.parametrize("data", [
    b"<html><script>alert(1)</script></html>",
    b"%PDF-1.7\n1 0 obj\n<<>>\nendobj\n",
    b"",
    b"\xff\xd8\xff\xe0" + b"\x00" * 64,  # a JPEG's first bytes and nothing after
], ids=["html", "pdf", "empty", "jpeg-header-only"])
def test_what_is_not_an_image_is_refused_by_content(data: bytes) -> None:
    with pytest.raises(Invalid) as caught:
        photos.prepare(data, field="media")
    assert caught.value.parameter == "media"
    assert caught.value.problems[0].message is not None
    assert caught.value.problems[0].message.key == "photo_not_an_image"


def test_truncated_jpeg_is_refused() -> None:
    whole = phone_jpeg()
    with pytest.raises(Invalid):
        photos.prepare(whole[: len(whole) // 2])


def test_gif_is_not_among_the_accepted_formats() -> None:
    out = io.BytesIO()
    Image.new("P", (10, 10)).save(out, "GIF")
    with pytest.raises(Invalid):
        photos.prepare(out.getvalue())


def test_too_many_bytes_is_refused_before_decoding() -> None:
    data = phone_jpeg() + b"\x00" * (photos.MAX_BYTES + 1)
    with pytest.raises(TooLarge) as caught:
        photos.prepare(data)
    assert caught.value.problems[0].message is not None
    assert caught.value.problems[0].message.key == "photo_too_large"


def test_decompression_bomb_is_refused_before_decoding() -> None:
    # 9,000 x 9,000 of one colour: a few KB as PNG, 81 megapixels (243 MB as RGB) when decoded.
    out = io.BytesIO()
    Image.new("1", (9_000, 9_000)).save(out, "PNG")
    assert len(out.getvalue()) < 200_000
    with pytest.raises(TooLarge) as caught:
        photos.prepare(out.getvalue())
    assert caught.value.problems[0].message is not None
    assert caught.value.problems[0].message.key == "photo_too_many_pixels"


def test_the_same_photo_gives_the_same_stored_bytes() -> None:
    data = phone_jpeg()
    assert photos.prepare(data).sha256 == photos.prepare(data).sha256
