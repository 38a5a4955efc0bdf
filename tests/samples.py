"""Document images and broken uploads made on the fly for tests."""

from __future__ import annotations

import io
import struct
import zlib

from PIL import Image, ImageDraw


def page_image(text: str = "Nota fiscal 123", size: tuple[int, int] = (320, 96)) -> Image.Image:
    image = Image.new("RGB", size, "white")
    ImageDraw.Draw(image).text((8, size[1] // 3), text, fill="black")
    return image


def encode(image: Image.Image, fmt: str = "PNG", **kwargs) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **kwargs)
    return buffer.getvalue()


def png(text: str = "Nota fiscal 123") -> bytes:
    return encode(page_image(text))


def pdf(pages: int) -> bytes:
    images = [page_image(f"Página {n + 1}") for n in range(pages)]
    buffer = io.BytesIO()
    images[0].save(buffer, format="PDF", save_all=True, append_images=images[1:], resolution=72)
    return buffer.getvalue()


def png_bomb(width: int = 100_000, height: int = 100_000) -> bytes:
    """A valid-looking PNG whose header claims ``width x height`` pixels in a few bytes."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    rows = zlib.compress(b"\x00" * 1024)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", rows) + chunk(b"IEND", b"")
    )


def jpeg_rotated() -> bytes:
    """A 200x100 JPEG whose EXIF says: rotate 90° to display (orientation 6)."""
    image = Image.new("RGB", (200, 100), "white")
    exif = Image.Exif()
    exif[0x0112] = 6
    return encode(image, "JPEG", exif=exif.tobytes())
