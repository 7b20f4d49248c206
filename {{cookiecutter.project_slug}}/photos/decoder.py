"""The child process that decodes one untrusted image (photos.images.thumbnail).

Run as ``python -m photos.decoder`` by the worker: a new interpreter, not a
fork of a worker that may run threads. It reads the limits (a JSON line)
and then the image from its input, and writes the outcome (a JSON line) and
then the thumbnail's bytes. It needs none of Django but the few settings it
is given (``settings.configure``), so it starts in a fraction of a second.
"""

import json
import resource
import sys

from django.conf import settings

from core import forks
from photos.images import decode


def main():
    forks.die_with(int(sys.argv[1]))  # a killed worker leaves no decoder behind
    limits = json.loads(sys.stdin.buffer.readline())
    # Caps the whole process: a decoder asking for more gets MemoryError.
    resource.setrlimit(resource.RLIMIT_AS, (limits["memory"], limits["memory"]))
    settings.configure(
        PHOTO_ALLOWED_FORMATS=limits["formats"], PHOTO_MAX_PIXELS=limits["pixels"]
    )
    data = sys.stdin.buffer.read()
    outcome, thumbnail = decode(data, tuple(limits["size"]))
    sys.stdout.buffer.write(json.dumps(outcome).encode() + b"\n" + thumbnail)


if __name__ == "__main__":
    main()
