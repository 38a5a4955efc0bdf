"""Upload decoding: type sniffing, limits, EXIF orientation, downscaling, PDF pages."""

from __future__ import annotations

import pytest

from app.errors import InvalidImage, InvalidRequest, UnsupportedMediaType
from app.images import load_pages, parse_page_range, sniff

from .. import samples

LIMITS = {"max_image_pixels": 10_000_000, "model_max_pixels": 200_000, "max_pdf_pages": 3}


@pytest.mark.parametrize(
    ("data", "media_type"),
    [
        (samples.png(), "image/png"),
        (samples.encode(samples.page_image(), "JPEG"), "image/jpeg"),
        (samples.encode(samples.page_image(), "TIFF"), "image/tiff"),
        (samples.encode(samples.page_image(), "WEBP"), "image/webp"),
        (samples.pdf(1), "application/pdf"),
    ],
)
def test_sniffs_the_type_from_the_bytes(data, media_type):
    assert sniff(data) == media_type


def test_every_supported_format_decodes_to_rgb():
    for fmt in ("PNG", "JPEG", "TIFF", "WEBP"):
        [page] = load_pages(samples.encode(samples.page_image(), fmt), **LIMITS)
        assert page.image.mode == "RGB" and page.image.size == (320, 96)


def test_exif_orientation_is_applied():
    [page] = load_pages(samples.jpeg_rotated(), **LIMITS)
    assert page.image.size == (100, 200)  # stored 200x100, displayed rotated


def test_large_images_are_downscaled_to_the_budget_keeping_aspect():
    big = samples.encode(samples.page_image(size=(2000, 1000)))
    [page] = load_pages(big, **LIMITS)
    width, height = page.image.size
    assert width * height <= 200_000 and abs(width / height - 2) < 0.02


def test_transparency_becomes_white():
    from PIL import Image

    image = Image.new("RGBA", (10, 10), (0, 0, 0, 0))
    [page] = load_pages(samples.encode(image), **LIMITS)
    assert page.image.getpixel((5, 5)) == (255, 255, 255)


@pytest.mark.parametrize(
    ("data", "error"),
    [
        (b"", InvalidImage),
        (b"plain text", UnsupportedMediaType),
        (samples.png()[:50], InvalidImage),
        (samples.png_bomb(), InvalidImage),
        (samples.pdf(4), InvalidImage),
        (b"%PDF-1.4 garbage", InvalidImage),
    ],
    ids=["empty", "text", "truncated", "bomb", "pdf-too-long", "pdf-corrupt"],
)
def test_bad_uploads_raise_typed_errors(data, error):
    with pytest.raises(error):
        load_pages(data, **LIMITS)


def test_pdf_pages_and_ranges():
    assert [p.number for p in load_pages(samples.pdf(3), **LIMITS)] == [1, 2, 3]
    assert [p.number for p in load_pages(samples.pdf(5), page_range="2-3,5", **LIMITS)] == [2, 3, 5]


@pytest.mark.parametrize("spec", ["0", "4", "2-1", "a", "1-"])
def test_bad_page_ranges(spec):
    with pytest.raises(InvalidRequest):
        parse_page_range(spec, 3)
