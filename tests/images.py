"""Image files for upload tests, made on the spot with Pillow."""

import io
import struct
import zlib

from PIL import Image


def png(size=(640, 480), color=(200, 40, 40)):
    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, "PNG")
    return buffer.getvalue()


def truncated_png():
    """A real PNG header and the first half of its data: decoding fails."""
    noise = Image.effect_noise((400, 300), 60).convert("RGB")
    buffer = io.BytesIO()
    noise.save(buffer, "PNG")
    data = buffer.getvalue()
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
