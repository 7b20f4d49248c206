"""Image files for upload tests, made on the spot with Pillow."""

import io
import struct
import zlib

from PIL import Image


def encode(image, format, **options):
    buffer = io.BytesIO()
    image.save(buffer, format, **options)
    return buffer.getvalue()


def png(size=(640, 480), color=(200, 40, 40)):
    return encode(Image.new("RGB", size, color), "PNG")


def rotated_jpeg(size=(400, 200)):
    """A landscape JPEG whose EXIF says: display rotated 90 degrees (portrait)."""
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: rotate 90 clockwise to display
    return encode(Image.new("RGB", size, (20, 90, 200)), "JPEG", exif=exif)


def bmp():
    return encode(Image.new("RGB", (10, 10)), "BMP")


def truncated_png():
    """A real PNG header and the first half of its data: decoding fails."""
    data = encode(Image.effect_noise((400, 300), 60).convert("RGB"), "PNG")
    return data[: len(data) // 2]


def bomb_png(width=50_000, height=50_000):
    """A tiny PNG whose header claims 2.5 gigapixels (a decompression bomb)."""
    data = bytearray(png((1, 1)))
    # IHDR starts after the 8-byte signature and the chunk's length (4 bytes).
    ihdr = bytearray(data[12:29])  # type + 13 bytes of fields
    ihdr[4:12] = struct.pack(">II", width, height)
    data[12:29] = ihdr
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(ihdr)))
    return bytes(data)
