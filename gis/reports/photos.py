"""Citizens' photos, made safe to keep and to show: what a phone uploads carries the place the
picture was taken and the device (EXIF GPS, make, model, serial), may not be an image at all
whatever its name says, and may be a small file that decodes to gigapixels.

So a photo is accepted only when Pillow recognises its content as JPEG, PNG or WebP, within a size
in bytes and in pixels checked before it is decoded; it is then decoded and written anew as a
JPEG (turned upright by its EXIF orientation first) without any metadata, and a thumbnail for the
map is made from it. Only the re-encoded bytes are ever stored: nothing of the upload survives
but its pixels.
"""

from __future__ import annotations

import hashlib
import io
import warnings
from dataclasses import dataclass

from PIL import Image, ImageOps, UnidentifiedImageError

from layers.errors import Invalid, TooLarge

ACCEPTED = ("JPEG", "PNG", "WEBP")
MAX_BYTES = 10 * 1024 * 1024  # a phone's full-resolution JPEG is 2-6 MB
MAX_PIXELS = 50_000_000  # a 48-megapixel phone camera fits; a decompression bomb does not
MAX_PHOTOS = 3
LONG_SIDE = 2048  # stored photos: enough to read a street sign, a tenth of the upload's bytes
THUMB_SIDE = 320  # the map's popup
QUALITY = 85
THUMB_QUALITY = 75


@dataclass(frozen=True)
class Photo:
    jpeg: bytes
    width: int
    height: int
    thumbnail: bytes
    sha256: str  # of the stored JPEG: the same photo sent twice is stored once

    content_type = "image/jpeg"


def prepare(data: bytes, field: str = "media", formats: tuple[str, ...] = ACCEPTED) -> Photo:
    """The photo DATA as it will be stored, or the 4xx that names FIELD and why. FORMATS: the
    Pillow formats accepted (cameras' snapshots: JPEG and PNG only)."""
    if len(data) > MAX_BYTES:
        raise TooLarge.for_field("photo_too_large", field, f"larger than {MAX_BYTES // 1024 // 1024} MB",
                                 max_mb=MAX_BYTES // 1024 // 1024)
    with warnings.catch_warnings():
        # Pillow only warns between MAX_IMAGE_PIXELS and twice that; our own bound comes first.
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            image = Image.open(io.BytesIO(data), formats=formats)
        except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError,
                Image.DecompressionBombWarning) as exc:
            raise _not_an_image(field, formats) from exc
        with image:
            if image.width * image.height > MAX_PIXELS:
                raise TooLarge.for_field(
                    "photo_too_many_pixels", field,
                    f"{image.width}x{image.height} pixels: at most {MAX_PIXELS // 1_000_000} megapixels",
                    max_mp=MAX_PIXELS // 1_000_000)
            try:
                upright = _rgb(ImageOps.exif_transpose(image))
            except (OSError, ValueError, SyntaxError, Image.DecompressionBombError,
                    Image.DecompressionBombWarning) as exc:  # truncated or corrupt content
                raise _not_an_image(field, formats) from exc
    upright.thumbnail((LONG_SIDE, LONG_SIDE), Image.Resampling.LANCZOS)
    jpeg = _jpeg(upright, QUALITY)
    thumb = upright.copy()
    thumb.thumbnail((THUMB_SIDE, THUMB_SIDE), Image.Resampling.LANCZOS)
    return Photo(jpeg=jpeg, width=upright.width, height=upright.height,
                 thumbnail=_jpeg(thumb, THUMB_QUALITY), sha256=hashlib.sha256(jpeg).hexdigest())


def _not_an_image(field: str, formats: tuple[str, ...] = ACCEPTED) -> Invalid:
    if "WEBP" not in formats:
        return Invalid.for_field("image_not_jpeg_png", field, "not a JPEG or PNG image")
    return Invalid.for_field("photo_not_an_image", field, "not a JPEG, PNG or WebP image")


def _rgb(image: Image.Image) -> Image.Image:
    """Decoded pixels in RGB; transparency laid on white (a JPEG has none)."""
    image.load()
    if image.mode in ("RGBA", "LA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        white = Image.new("RGB", rgba.size, (255, 255, 255))
        white.paste(rgba, mask=rgba.getchannel("A"))
        return white
    return image.convert("RGB")


def _jpeg(image: Image.Image, quality: int) -> bytes:
    out = io.BytesIO()
    # No exif=, icc_profile= or comment: Pillow writes none of the upload's metadata.
    image.save(out, "JPEG", quality=quality, optimize=True, progressive=True)
    return out.getvalue()
