"""The project's worker command on RQ, as a real process: it starts afresh
in place after --max-jobs and goes on working."""

import os
import signal

import pytest
from django.core.files.base import ContentFile

from core.models import Status
from photos import tasks
from photos.models import Photo
from tests import images
from tests.test_worker import settle, start_worker, wait_for_log

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def test_the_worker_starts_afresh_in_place_after_max_jobs(
    owner, media_root, worker_env, tmp_path
):
    photos = [
        Photo.objects.create(
            owner=owner, image=ContentFile(images.png((40, 30)), name="a.png")
        )
        for _ in range(3)
    ]
    for photo in photos:
        tasks.enqueue_thumbnail(photo.pk)
    worker = start_worker(
        tmp_path / "worker.log",
        ["--max-jobs", "2"],
        **worker_env,
        MEDIA_ROOT=str(media_root),
    )
    log = worker.log
    try:
        for photo in photos:
            assert settle(Photo, photo.pk, worker).status == Status.DONE
        wait_for_log(worker, "Worker starting afresh (after 2 jobs)")
        assert log.read_text().count(f"started with PID {worker.pid},") == 2
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(timeout=30) == 0, log.read_text()
    finally:
        if worker.poll() is None:
            os.killpg(worker.pid, signal.SIGKILL)
            worker.wait()
