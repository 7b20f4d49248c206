"""The decoder: the process that makes thumbnails of untrusted images.

A worker process starts one, the first time it makes a thumbnail, as
``python -m photos.decoder``: a new interpreter, never a fork of the worker.
A worker may run threads (a task library's, a database driver's), and a
forked copy of a threaded process can wait forever on a lock another thread
held. The decoder has no threads, so it may fork: each image is decoded in
a child of its own, forked with Pillow's decoders and encoders loaded
(getting there takes a new interpreter about 0.4 s; a fork, milliseconds).
The child's memory is capped (PHOTO_DECODE_MEMORY_BYTES); an image still
decoding after PHOTO_DECODE_SECONDS has the worker kill the decoder with
its child, and start another for the next image. The decoder dies with its
worker, and the child with the decoder (core/forks.py).

One image at a time per worker process, over the decoder's stdin and
stdout: the worker writes a JSON line (the limits, the image's length) and
the image; the decoder answers a JSON line (the outcome, the thumbnail's
length) and the thumbnail.
"""

import io
import json
import os
import resource
import select
import subprocess
import sys
import threading
import time
from pathlib import Path

from django.conf import settings
from PIL import Image

from core import forks

from .images import CORRUPT, ImageRejected, decode

# Where `python -m photos.decoder` finds the project's packages.
PROJECT_DIR = Path(__file__).resolve().parent.parent


class Decoder:
    """The worker's side: its decoder process, started on first use."""

    def __init__(self):
        self.lock = threading.Lock()  # one image at a time
        self.process = None
        self.owner = None  # the worker process that started it

    def thumbnail(self, data, size, seconds):
        job = {
            "memory": settings.PHOTO_DECODE_MEMORY_BYTES,
            "formats": settings.PHOTO_ALLOWED_FORMATS,
            "pixels": settings.PHOTO_MAX_PIXELS,
            "size": list(size),
            "length": len(data),
        }
        request = json.dumps(job).encode() + b"\n" + data
        with self.lock:
            try:
                process = self._started()
                process.stdin.write(request)
                process.stdin.flush()
                reply = _reply(process.stdout.fileno(), time.monotonic() + seconds)
            except OSError:  # it died (the OOM killer, someone's kill)
                self._stop()
                raise RuntimeError("The image decoder stopped unexpectedly.") from None
            if reply is None:  # still decoding: the decoder and its child go
                self._stop()
                raise ImageRejected(
                    f"The image took longer than {seconds:g} s to decode."
                )
        outcome, webp = reply
        if outcome["outcome"] == "rejected":
            raise ImageRejected(outcome["message"])
        if outcome["outcome"] == "error":
            message = outcome["message"]
            raise RuntimeError(f"Decoding the image failed in the decoder: {message}")
        return outcome["width"], outcome["height"], webp

    def _started(self):
        """This worker's running decoder; a new one if there is none."""
        mine = self.process and self.owner == os.getpid()
        if not (mine and self.process.poll() is None):
            self.process = subprocess.Popen(
                [sys.executable, "-m", "photos.decoder", str(os.getpid())],
                cwd=PROJECT_DIR,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                bufsize=0,
            )
            self.owner = os.getpid()
            try:
                reply = _reply(self.process.stdout.fileno(), time.monotonic() + 60)
            except OSError:  # it died starting: its error is on stderr
                reply = None
            if reply is None or reply[0]["outcome"] != "ready":
                self._stop()
                raise RuntimeError("The image decoder did not start.")
        return self.process

    def _stop(self):
        if self.process and self.owner == os.getpid():
            self.process.kill()
            self.process.wait()
        self.process = None


def _reply(fd, deadline):
    """The decoder's next answer, (outcome, bytes), or None at the deadline.

    Raises BrokenPipeError if the decoder is gone.
    """
    buffer = b""
    outcome = None
    while outcome is None or len(buffer) < outcome["length"]:
        if outcome is None and b"\n" in buffer:
            header, _, buffer = buffer.partition(b"\n")
            outcome = json.loads(header)
            continue
        left = deadline - time.monotonic()
        if left <= 0:
            return None
        readable, _, _ = select.select([fd], [], [], left)
        if readable:
            chunk = os.read(fd, 1 << 16)
            if not chunk:
                raise BrokenPipeError("the decoder closed its output")
            buffer += chunk
    return outcome, buffer


_decoder = Decoder()


def thumbnail(data, size, seconds):
    """WEBP thumbnail of the image ``data``: (width, height, webp bytes).

    Raises ImageRejected, with a sentence for the user, for an image that is
    not one, is too large, needs too much memory or more than ``seconds``.
    """
    return _decoder.thumbnail(data, size, seconds)


# The decoder's side --------------------------------------------------------


def serve(requests, replies):
    """Decode each image the worker sends, each in a forked child."""
    while line := requests.readline():
        job = json.loads(line)
        data = requests.read(job["length"])
        _answer(replies, *_in_a_child(job, data))


def _answer(replies, outcome, data=b""):
    replies.write(json.dumps({**outcome, "length": len(data)}).encode() + b"\n" + data)
    replies.flush()


def _in_a_child(job, data):
    read_end, write_end = os.pipe()
    decoder = os.getpid()
    pid = os.fork()
    if pid == 0:  # the child: capped, it decodes, answers and exits
        os.close(read_end)
        forks.die_with(decoder)
        resource.setrlimit(resource.RLIMIT_AS, (job["memory"], job["memory"]))
        settings.configure(
            PHOTO_ALLOWED_FORMATS=job["formats"], PHOTO_MAX_PIXELS=job["pixels"]
        )
        outcome, webp = decode(data, tuple(job["size"]))
        with os.fdopen(write_end, "wb") as pipe:
            pipe.write(json.dumps(outcome).encode() + b"\n" + webp)
        os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        output = pipe.read()
    os.waitpid(pid, 0)
    header, _, webp = output.partition(b"\n")
    if not header:  # the child died without a word: the decoder crashed
        return {"outcome": "rejected", "message": CORRUPT}, b""
    return json.loads(header), webp


def _warm_up():
    """Load the decoders and the WEBP encoder once, for every child to share."""
    Image.init()
    Image.new("RGB", (8, 8)).save(io.BytesIO(), format="WEBP")


def main():
    forks.die_with(int(sys.argv[1]))  # a killed worker leaves no decoder behind
    _warm_up()
    _answer(sys.stdout.buffer, {"outcome": "ready"})
    serve(sys.stdin.buffer, sys.stdout.buffer)


if __name__ == "__main__":
    main()
