"""Image files for upload tests, made on the spot with Pillow."""

import io
import random
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
    data = png((1, 1))
    # IHDR: after the 8-byte signature; its fields start with the size.
    fields = struct.pack(">II", width, height) + data[24:29]
    return data[:8] + chunk(b"IHDR", fields) + data[33:]


def chunk(kind, body):
    """A PNG chunk: length, type, body, CRC."""
    return (
        struct.pack(">I", len(body))
        + kind
        + body
        + struct.pack(">I", zlib.crc32(kind + body))
    )


def chunk_bomb_png(inflated=100_000_000):
    """A small PNG whose zTXt chunk inflates to ``inflated`` bytes."""
    data = png((8, 8))
    text = b"Comment\0\0" + zlib.compress(b"\0" * inflated, 9)
    # After the signature (8 bytes) and IHDR (25 bytes).
    return data[:33] + chunk(b"zTXt", text) + data[33:]


def many_scan_jpeg(scans, size=(2000, 2000)):
    """A progressive JPEG whose smallest scan is repeated ``scans`` times.

    Each scan is a pass over every pixel: the decoding time grows with the
    number of scans, not with the file's size (12 bytes a scan).
    """
    data = encode(Image.new("RGB", size, (30, 60, 90)), "JPEG", progressive=True)
    segments = list(_segments(data))
    start, end = min(
        ((s, e) for marker, s, e in segments if marker == 0xDA),
        key=lambda span: span[1] - span[0],
    )
    eoi = segments[-1][1]
    return data[:eoi] + data[start:end] * scans + data[eoi:]


def _segments(data):
    """(marker, start, end) of each JPEG segment after SOI, scans included."""
    i = 2
    while i < len(data):
        marker = data[i + 1]
        if marker == 0xD9:  # end of image
            yield marker, i, i + 2
            return
        end = i + 2 + int.from_bytes(data[i + 2 : i + 4], "big")
        if marker == 0xDA:  # start of scan: entropy-coded data up to a marker
            end = data.index(b"\xff", end)
            while data[end + 1] == 0 or 0xD0 <= data[end + 1] <= 0xD7:
                end = data.index(b"\xff", end + 2)
        yield marker, i, end
        i = end


def mutants(data, count, seed):
    """``count`` copies of ``data``, each with a few random bytes changed,
    removed or inserted: a fuzzer's first round, the same for a given seed."""
    # Test data, repeatable by its seed: no secret depends on it.
    rng = random.Random(seed)  # noqa: S311
    for _ in range(count):
        mutant = bytearray(data)
        for _ in range(rng.randint(1, 10)):
            at = rng.randrange(len(mutant))
            roll = rng.random()
            if roll < 0.6:
                mutant[at] = rng.randrange(256)
            elif roll < 0.8:
                del mutant[at : at + rng.randint(1, 16)]
            else:
                mutant[at:at] = rng.randbytes(rng.randint(1, 16))
        yield bytes(mutant)


def small(format):
    """A small image of each allowed format, the seed of the mutants."""
    return encode(Image.new("RGB", (64, 48), (10, 120, 200)), format)
