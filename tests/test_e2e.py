"""End to end, for every backend: web and worker started as compose.yaml does.

No Docker engine runs here, so each service's command from compose.yaml runs
natively, with the environment compose would give it, against the local
PostgreSQL, the local broker (if the backend has one) and a real SMTP server
(aiosmtpd). Everything a user does goes through HTTP.
"""

import contextlib
import importlib.util
import io
import os
import re
import shlex
import signal
import subprocess
import time

import pytest
import yaml
from aiosmtpd.controller import Controller
from PIL import Image

from .bakery import BACKENDS, PG_URL, backend_of, production_env, python, run
from .web import (
    PASSWORD,
    SlowInbox,
    catches,
    free_port,
    login,
    post,
    serving,
    settled,
    wait_until,
)

pytestmark = pytest.mark.e2e
# The worker's decode budget in these runs (PHOTO_DECODE_SECONDS).
DECODE_SECONDS = 2


def compose_command(compose, service):
    command = compose["services"][service]["command"]
    return shlex.split(command) if isinstance(command, str) else command


@pytest.fixture(scope="module", params=BACKENDS)
def case(request):
    return request.param


@pytest.fixture(scope="module")
def images(baked, case):
    """The generated project's own image factories (tests/images.py)."""
    path = baked(case) / "tests" / "images.py"
    spec = importlib.util.spec_from_file_location("project_images", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def start(stack, service):
    """Start a service's command as compose would, logging to its file."""
    log = (stack["logs"] / f"{service}.log").open("a")
    stack["processes"][service] = subprocess.Popen(
        compose_command(stack["compose"], service),
        cwd=stack["project"],
        env={**os.environ, **stack["env"]},
        stdout=log,
        stderr=subprocess.STDOUT,
        # A process group of its own, as a container or a systemd unit is.
        start_new_session=True,
    )


def kill(process):
    """SIGKILL to the process and all it forked, as `docker kill` does."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=10)


@pytest.fixture(scope="module")
def stack(synced, case, tmp_path_factory):
    project = synced(case)
    compose = yaml.safe_load((project / "compose.yaml").read_text())
    logs = tmp_path_factory.mktemp("e2e-logs")
    inbox = SlowInbox()
    smtp = Controller(inbox, hostname="127.0.0.1", port=free_port())
    smtp.start()
    port = free_port()
    env = {
        **production_env(f"e2e_{case}", case),
        "USE_HTTPS": "false",  # plain HTTP on loopback; no proxy in front
        "ALLOWED_HOSTS": "127.0.0.1",
        "EMAIL_HOST": "127.0.0.1",
        "EMAIL_PORT": str(smtp.port),
        "MEDIA_ROOT": str(tmp_path_factory.mktemp("e2e-media")),
        "PHOTO_DECODE_SECONDS": str(DECODE_SECONDS),
        "PORT": str(port),
        "PATH": f"{project / '.venv' / 'bin'}{os.pathsep}{os.environ['PATH']}",
    }
    database = env["DATABASE_URL"].rsplit("/", 1)[1]
    maintenance = f"--maintenance-db={PG_URL}/postgres"
    run(project, "dropdb", "--if-exists", "--force", maintenance, database)
    run(project, "createdb", maintenance, database)
    run(project, *compose_command(compose, "migrate"), env=env)
    for name in ("alice", "mallory"):
        run(
            project,
            python(project),
            "manage.py",
            "shell",
            "-c",
            "from django.contrib.auth.models import User; "
            f"User.objects.create_user({name!r}, password={PASSWORD!r})",
            env=env,
        )

    stack = {
        "url": f"http://127.0.0.1:{port}",
        "inbox": inbox,
        "processes": {},
        "logs": logs,
        "compose": compose,
        "project": project,
        "env": env,
        "row": backend_of(case),
    }
    for service in ("web", "worker"):
        start(stack, service)
    processes = stack["processes"]
    try:
        serving(f"{stack['url']}/accounts/login/", timeout=30)
        yield stack
    finally:
        for process in processes.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in processes.values():
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=30)
            kill(process)
        smtp.stop()


@pytest.fixture(scope="module")
def alice(stack):
    client = login(stack, "alice")
    yield client
    client.close()


def test_services_run_the_generated_start_scripts(stack):
    assert compose_command(stack["compose"], "web")[0] == "bin/web"
    assert compose_command(stack["compose"], "worker")[0] == "bin/worker"


def test_every_recipient_gets_the_notification(stack, alice):
    recipients = ["pi@example.org", "postdoc@example.org", "student@example.org"]
    response = post(
        alice,
        "/notifications/",
        data={
            "subject": "Observations taken",
            "message": "Tonight's run of NGC 1300 is on the archive.",
            "recipients": ",\n".join(recipients),
        },
    )
    assert response.status_code == 202, response.text
    body = settled(alice, response.json()["status_url"])
    assert body == {
        "id": response.json()["id"],
        "status": "done",
        "error": None,
        "sent": 3,
        "failed": 0,
        "pending": 0,
    }
    delivered = [
        envelope
        for envelope in stack["inbox"].envelopes
        if b"Subject: Observations taken" in envelope.content
    ]
    assert sorted(rcpt for e in delivered for rcpt in e.rcpt_tos) == sorted(recipients)


def test_uploaded_png_gets_a_thumbnail(alice, images):
    response = post(
        alice, "/photos/", files={"image": ("sky.png", images.png((1600, 1200)))}
    )
    assert response.status_code == 202, response.text
    body = settled(alice, response.json()["status_url"])
    assert body["status"] == "done", body
    thumbnail = alice.get(body["thumbnail_url"])
    assert thumbnail.status_code == 200
    assert thumbnail.headers["content-type"] == "image/webp"
    with Image.open(io.BytesIO(thumbnail.content)) as image:
        assert image.format == "WEBP"
        assert image.size == (320, 240)


def test_another_user_cannot_see_the_photo(stack, alice, images):
    response = post(alice, "/photos/", files={"image": ("a.png", images.png())})
    status_url = response.json()["status_url"]
    mallory = login(stack, "mallory")
    assert mallory.get(status_url).status_code == 404
    mallory.close()


def test_non_image_is_refused_with_a_message(alice):
    response = post(alice, "/photos/", files={"image": ("a.png", b"%PDF-1.7 no")})
    assert response.status_code == 400
    assert "not an image" in response.json()["error"]


def test_decompression_bomb_is_refused_with_a_message(alice, images):
    response = post(alice, "/photos/", files={"image": ("a.png", images.bomb_png())})
    assert response.status_code == 400
    assert "too many pixels" in response.json()["error"]


def test_truncated_image_fails_and_the_worker_keeps_serving(stack, alice, images):
    response = post(
        alice, "/photos/", files={"image": ("cut.png", images.truncated_png())}
    )
    assert response.status_code == 202, response.text
    body = settled(alice, response.json()["status_url"])
    assert body["status"] == "failed"
    assert body["error"] == "The image is truncated or corrupt."
    assert "Traceback" not in body["error"]

    response = post(alice, "/photos/", files={"image": ("ok.png", images.png())})
    assert settled(alice, response.json()["status_url"])["status"] == "done"
    assert stack["processes"]["worker"].poll() is None


def test_hostile_uploads_never_fail_the_server_and_all_finish(stack, alice, images):
    """Mutated files of every allowed format, a chunk bomb, a many-scan JPEG.

    Each is refused with a 400 and a sentence, or accepted and then ends
    done or failed: no 500, nothing left running, no worker held longer
    than the decode budget.
    """
    # First, a JPEG that passes every check of the view and would take the
    # worker 10 s to decode; then the rest, which must not wait for it.
    uploads = [images.many_scan_jpeg(scans=60_000), images.chunk_bomb_png()]
    uploads += [
        data
        for format in ("PNG", "JPEG", "GIF", "WEBP")
        for data in images.mutants(images.small(format), count=200, seed=format)
    ]
    accepted, refused = [], 0
    for data in uploads:
        response = post(alice, "/photos/", files={"image": ("upload", data)})
        assert response.status_code in {202, 400}, response.text
        if response.status_code == 400:
            assert response.json()["error"].endswith("."), response.text
            refused += 1
        else:
            accepted.append(response.json()["status_url"])
    assert accepted and refused  # both kinds were met
    slow = accepted[0]

    started = time.monotonic()
    body = settled(alice, slow, timeout=DECODE_SECONDS + 30)
    assert body["error"] == f"The image took longer than {DECODE_SECONDS} s to decode."
    # The worker was not held: it went on with the uploads after it.
    for status_url in accepted:
        body = settled(alice, status_url, timeout=60)
        assert body["status"] in {"done", "failed"}, body
        assert body["status"] == "done" or body["error"].endswith("."), body
    assert time.monotonic() - started < 120


def test_a_killed_worker_does_what_the_readme_promises(stack, alice):
    """SIGKILL mid-task, then the worker restarts (compose's restart policy).

    The backend row states the guarantee the README renders: at-most-once
    means the task that was running is not run again, and the worker goes
    on with the next ones.
    """
    stack["inbox"].delay = 3
    before = stack["inbox"].receiving
    response = post(
        alice,
        "/notifications/",
        data={"subject": "Killed", "message": "m", "recipients": "a@example.org"},
    )
    assert response.status_code == 202, response.text
    wait_until(lambda: stack["inbox"].receiving > before, 30, "the task to send")
    kill(stack["processes"]["worker"])
    stack["inbox"].delay = 0
    start(stack, "worker")

    after = post(
        alice,
        "/notifications/",
        data={"subject": "After", "message": "m", "recipients": "b@example.org"},
    )
    assert settled(alice, after.json()["status_url"])["status"] == "done"
    killed = alice.get(response.json()["status_url"]).json()
    assert stack["row"]["delivery"]["killed"] == "at-most-once"
    assert (killed["status"], killed["pending"]) == ("running", 1), killed


def test_worker_stops_cleanly_on_sigterm(stack):
    worker = stack["processes"]["worker"]
    # The restarted worker has started (the first one said so too, before
    # it was killed) and handles the signal.
    log = stack["logs"] / "worker.log"
    marker = stack["row"]["ready_marker"]
    wait_until(lambda: log.read_text().count(marker) >= 2, 30, "the worker")
    wait_until(lambda: catches(worker.pid), 30, "the worker's signal handler")
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(timeout=30) == 0
    assert re.search(r"Received (Terminated|SIGTERM)", log.read_text())
