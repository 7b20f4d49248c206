"""End to end: web and worker started as compose.yaml starts them.

No Docker engine runs here, so each service's command from compose.yaml runs
natively, with the environment compose would give it, against the local
PostgreSQL and a real SMTP server (aiosmtpd). Everything a user does goes
through HTTP.
"""

import importlib.util
import io
import os
import re
import shlex
import signal
import subprocess

import pytest
import yaml
from aiosmtpd.controller import Controller
from PIL import Image

from .bakery import PG_URL, production_env, python, run
from .web import PASSWORD, free_port, login, post, serving, settled

pytestmark = pytest.mark.e2e


class Inbox:
    """An aiosmtpd handler that keeps every message it is given."""

    def __init__(self):
        self.envelopes = []

    async def handle_DATA(self, server, session, envelope):
        self.envelopes.append(envelope)
        return "250 Message accepted"


def compose_command(compose, service):
    command = compose["services"][service]["command"]
    return shlex.split(command) if isinstance(command, str) else command


@pytest.fixture(scope="module")
def images(baked):
    """The generated project's own image factories (tests/images.py)."""
    path = baked("default") / "tests" / "images.py"
    spec = importlib.util.spec_from_file_location("project_images", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def stack(synced, tmp_path_factory):
    project = synced("default")
    compose = yaml.safe_load((project / "compose.yaml").read_text())
    logs = tmp_path_factory.mktemp("e2e-logs")
    inbox = Inbox()
    smtp = Controller(inbox, hostname="127.0.0.1", port=free_port())
    smtp.start()
    port = free_port()
    env = {
        **production_env("e2e"),
        "USE_HTTPS": "false",  # plain HTTP on loopback; no proxy in front
        "ALLOWED_HOSTS": "127.0.0.1",
        "EMAIL_HOST": "127.0.0.1",
        "EMAIL_PORT": str(smtp.port),
        "MEDIA_ROOT": str(tmp_path_factory.mktemp("e2e-media")),
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

    processes = {}
    for service in ("web", "worker"):
        log = (logs / f"{service}.log").open("w")
        processes[service] = subprocess.Popen(
            compose_command(compose, service),
            cwd=project,
            env={**os.environ, **env},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    base_url = f"http://127.0.0.1:{port}"
    try:
        serving(f"{base_url}/accounts/login/", timeout=30)
        yield {
            "url": base_url,
            "inbox": inbox,
            "processes": processes,
            "logs": logs,
            "compose": compose,
        }
    finally:
        for process in processes.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in processes.values():
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
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


def test_worker_stops_cleanly_on_sigterm(stack):
    worker = stack["processes"]["worker"]
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(timeout=30) == 0
    log = (stack["logs"] / "worker.log").read_text()
    assert re.search(r"Received (Terminated|SIGTERM)", log), log
