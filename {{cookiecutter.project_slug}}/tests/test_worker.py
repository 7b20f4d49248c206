"""The real worker process (bin/worker) against the test database.

Requests go through the test client; the work happens in a separate process
that knows only the database, the media folder and the SMTP server.
"""

import contextlib
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import quote

import pytest
from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection

from core.models import Status
from notifications.models import Notification
from photos import tasks as photo_tasks
from photos.models import Photo
from tests import images

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]
PROJECT = Path(settings.BASE_DIR)
# What the worker logs when it starts.
WORKER_READY = "{{ cookiecutter._backends[cookiecutter.task_backend].ready_marker }}"


def database_url():
    db = connection.settings_dict
    if db["ENGINE"] == "django.db.backends.sqlite3":
        return f"sqlite:///{db['NAME']}"
    credentials = quote(db["USER"])
    if db["PASSWORD"]:
        credentials += ":" + quote(db["PASSWORD"])
    return (
        f"postgres://{credentials}@{db['HOST'] or 'localhost'}:{db['PORT'] or 5432}"
        f"/{db['NAME']}"
    )


def start_worker(log, args=(), **env):
    """bin/worker as a process of its own, on the test database, logging to
    ``log``; ``env`` says what else it knows (media, mail server, queue)."""
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "DATABASE_URL": database_url(),
        "DEBUG": "false",
        # The same key as this process: queued messages may be signed with it.
        "SECRET_KEY": settings.SECRET_KEY,
        # Uploads on the disk, as in the tests (MEDIA_ROOT), whatever .env says.
        "S3_BUCKET": "",
        **env,
    }
    with log.open("w") as output:
        process = subprocess.Popen(
            [PROJECT / "bin" / "worker", *args],
            cwd=PROJECT,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
            # Its own process group: what it forks is stopped with it.
            start_new_session=True,
        )
    process.log = log
    return process


@pytest.fixture
def worker(smtp_server, media_root, worker_env, tmp_path):
    process = start_worker(
        tmp_path / "worker.log",
        **worker_env,
        MEDIA_ROOT=str(media_root),
        EMAIL_HOST="127.0.0.1",
        EMAIL_PORT=str(smtp_server.port),
        EMAIL_USE_TLS="false",
    )
    yield process
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def start_ready(workers, log, args=(), **env):
    """``start_worker``, then wait until it is ready; ``workers`` (the
    fixture) kills it at the test's end."""
    worker = start_worker(log, args, **env)
    workers.append(worker)
    wait_until_ready(worker)
    return worker


def kill_while_paused(victim, other):
    """SIGKILL ``victim`` and its processes while ``other`` is paused, and
    resume ``other`` once the database holds no lock of the dead worker;
    return when the kill happened.

    A broker gives a dead worker's task out again as its connection closes.
    PostgreSQL notices its own closed connection a moment later, and until
    then the dead run's row locks stand: the notification sample skips a
    locked recipient and tries again in 15 to 30 s, later than the bound
    the tests check. They measure the broker's redelivery, not that race.
    """
    os.killpg(other.pid, signal.SIGSTOP)
    try:
        os.killpg(victim.pid, signal.SIGKILL)
        victim.wait()
        killed = time.monotonic()
        wait_for(lambda: not locks_held_by_others(), 30, victim.log)
    finally:
        os.killpg(other.pid, signal.SIGCONT)
    return killed


def locks_held_by_others():
    """How many table locks other sessions hold in the test database."""
    if connection.vendor != "postgresql":
        return 0  # SQLite: nothing outlives its process
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_locks l JOIN pg_database d ON d.oid = l.database"
            " WHERE d.datname = current_database() AND l.locktype = 'relation'"
            " AND l.pid <> pg_backend_pid()"
        )
        return cursor.fetchone()[0]


def wait_for(condition, seconds, log):
    """Wait until ``condition()``; past ``seconds``, fail with the log."""
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, log.read_text()
        time.sleep(0.05)


def settle(model, pk, worker, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        row = model.objects.get(pk=pk)
        if row.status in {Status.DONE, Status.FAILED}:
            return row
        assert worker.poll() is None, worker.log.read_text()
        time.sleep(0.1)
    raise AssertionError(f"not finished in {timeout} s:\n{worker.log.read_text()}")


def test_worker_sends_email_and_makes_thumbnails(worker, owner_client, smtp_server):
    notification_id = owner_client.post(
        "/notifications/",
        {
            "subject": "Observations taken",
            "message": "On the archive.",
            "recipients": "pi@example.org, postdoc@example.org",
        },
    ).json()["id"]
    bad_id = owner_client.post("/photos/", {"image": _file(images.truncated_png())})
    good_id = owner_client.post("/photos/", {"image": _file(images.png((800, 600)))})

    assert settle(Notification, notification_id, worker).status == Status.DONE
    assert smtp_server.recipients == ["pi@example.org", "postdoc@example.org"]

    bad = settle(Photo, bad_id.json()["id"], worker)
    assert (bad.status, bad.error) == (
        Status.FAILED,
        "The image is truncated or corrupt.",
    )

    good = settle(Photo, good_id.json()["id"], worker)
    assert good.status == Status.DONE
    assert good.thumbnail.storage.exists(good.thumbnail.name)
    assert worker.poll() is None  # a bad image did not stop the worker


def test_worker_exits_cleanly_on_sigterm(worker):
    wait_until_ready(worker)
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(timeout=10) == 0, worker.log.read_text()


def test_a_running_task_finishes_when_the_worker_is_stopped(
    worker, owner_client, smtp_server
):
    smtp_server.delay = 2  # the task is sending when the signal comes
    wait_until_ready(worker)
    response = owner_client.post(
        "/notifications/",
        {"subject": "Stopping", "message": "m", "recipients": "pi@example.org"},
    )
    deadline = time.monotonic() + 30
    while not smtp_server.receiving:
        assert time.monotonic() < deadline, worker.log.read_text()
        time.sleep(0.05)

    worker.send_signal(signal.SIGTERM)

    assert worker.wait(timeout=30) == 0, worker.log.read_text()
    notification = Notification.objects.get(pk=response.json()["id"])
    assert notification.status == Status.DONE, worker.log.read_text()
    assert smtp_server.recipients == ["pi@example.org"]


def wait_until_ready(worker, timeout=30):
    """Started, and handling SIGTERM: a signal before that kills it outright.

    Some workers log their start before they install their signal handlers
    (huey), so on Linux this also waits for the handler itself.
    """
    wait_for_log(worker, WORKER_READY, timeout)
    status = Path(f"/proc/{worker.pid}/status")
    deadline = time.monotonic() + timeout
    while status.exists() and not _catches(status, signal.SIGTERM):
        assert time.monotonic() < deadline, worker.log.read_text()
        time.sleep(0.05)


def _catches(status, signum):
    caught = re.search(r"^SigCgt:\s*([0-9a-f]+)$", status.read_text(), re.M)
    return bool(int(caught[1], 16) & 1 << (signum - 1))


def wait_for_log(worker, text, timeout=30):
    deadline = time.monotonic() + timeout
    while text not in worker.log.read_text():
        assert worker.poll() is None, worker.log.read_text()
        assert time.monotonic() < deadline, worker.log.read_text()
        time.sleep(0.1)


def _file(data):
    return SimpleUploadedFile("upload.png", data)


def test_what_the_worker_forks_dies_with_it(owner, media_root, worker_env, tmp_path):
    """Killed alone, as supervisord's restart or the OOM killer leave it, the
    worker takes what it started along (core/forks.py): a photo's decoder
    and the child decoding a slow image, and its task library's own
    processes."""
    photo = Photo.objects.create(
        owner=owner,
        # About 10 s of decoding: the decoder is busy when the worker dies.
        image=ContentFile(images.many_scan_jpeg(scans=200_000), name="slow.jpg"),
    )
    worker = start_worker(
        tmp_path / "worker.log",
        **worker_env,
        MEDIA_ROOT=str(media_root),
        PHOTO_DECODE_SECONDS="60",
    )
    try:
        wait_until_ready(worker)
        time.sleep(1)  # the task library's processes have started
        idle = descendants(worker.pid)
        photo_tasks.enqueue_thumbnail(photo.pk)
        deadline = time.monotonic() + 30
        # The decoder, and the child it forked for this image, decoding.
        while len(descendants(worker.pid) - idle) < 2:
            assert time.monotonic() < deadline, worker.log.read_text()
            time.sleep(0.05)
        forked = descendants(worker.pid)
        os.kill(worker.pid, signal.SIGKILL)  # the worker alone, not its group
        worker.wait(timeout=10)
        deadline = time.monotonic() + 10
        while left := {pid for pid in forked if process_state(pid) not in {None, "Z"}}:
            assert time.monotonic() < deadline, f"{left} outlived the worker"
            time.sleep(0.1)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(worker.pid, signal.SIGKILL)
        worker.wait()


def descendants(pid):
    """The ids of the processes ``pid`` forked, and theirs (Linux /proc)."""
    children = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError):
            # "pid (name) state ppid ...": the name may hold spaces.
            fields = stat.read_text().rsplit(")", 1)[1].split()
            children.setdefault(int(fields[1]), set()).add(int(stat.parent.name))
    found, todo = set(), [pid]
    while todo:
        for child in children.get(todo.pop(), ()):
            found.add(child)
            todo.append(child)
    return found


def process_state(pid):
    """The state letter of process ``pid`` (Z: exited, not reaped yet), or
    None once it is gone."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return None
    return re.search(r"^State:\s+(\S)", status, re.M)[1]
