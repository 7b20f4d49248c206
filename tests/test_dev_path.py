"""The README's path without Docker: migrate, then `honcho start`, on SQLite.

The generated .env (DEBUG on, fresh key) is used as it is; email goes to the
console backend, so the worker's output shows it.
"""

import io
import os
import signal
import subprocess

import pytest
from PIL import Image

from .bakery import BACKENDS, UV, run
from .web import PASSWORD, free_port, login, post, serving, settled, wait_until

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module", params=BACKENDS)
def honcho(request, synced, tmp_path_factory):
    project = synced(request.param)
    # Nothing from the outer environment may point it at another database.
    env = {k: v for k, v in os.environ.items() if not k.startswith("DATABASE_")}
    database = project / "db.sqlite3"
    database.unlink(missing_ok=True)
    subprocess.run(
        [UV, "run", "python", "manage.py", "migrate"],
        cwd=project,
        env=env,
        check=True,
        capture_output=True,
        timeout=120,
    )
    run(
        project,
        UV,
        "run",
        "python",
        "manage.py",
        "shell",
        "-c",
        "from django.contrib.auth.models import User; "
        f"User.objects.create_user('alice', password={PASSWORD!r})",
        env={"DATABASE_URL": f"sqlite:///{database}"},
    )
    port = free_port()
    log = tmp_path_factory.mktemp("honcho") / "honcho.log"
    with log.open("w") as output:
        process = subprocess.Popen(
            [UV, "run", "honcho", "start", "--port", str(port)],
            cwd=project,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        serving(f"{url}/accounts/login/")
        yield {"url": url, "process": process, "log": log}
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()


def test_two_commands_run_web_and_worker_on_sqlite(honcho):
    client = login(honcho, "alice")
    response = post(
        client,
        "/notifications/",
        data={
            "subject": "Observations taken",
            "message": "On the archive.",
            "recipients": "pi@example.org",
        },
    )
    assert response.status_code == 202, response.text
    assert settled(client, response.json()["status_url"])["status"] == "done"
    # The console mailer prints the message in the worker's output.
    wait_until(
        lambda: "Subject: Observations taken" in honcho["log"].read_text(),
        10,
        "the email in the worker's output",
    )

    image = io.BytesIO()
    Image.new("RGB", (640, 480), (10, 120, 200)).save(image, "PNG")
    response = post(client, "/photos/", files={"image": ("sky.png", image.getvalue())})
    assert response.status_code == 202, response.text
    body = settled(client, response.json()["status_url"])
    assert body["status"] == "done", body
    assert client.get(body["thumbnail_url"]).headers["content-type"] == "image/webp"
    client.close()


def test_honcho_stops_both_processes_on_sigterm(honcho):
    honcho["process"].send_signal(signal.SIGTERM)
    # Development processes run under reloaders and honcho's shell, which die
    # by the signal (exit code -15): check that both stop, and promptly. The
    # graceful exit of the production commands is tested in test_e2e.py.
    honcho["process"].wait(timeout=30)
    log = honcho["log"].read_text()
    assert "web.1 stopped" in log
    assert "worker.1 stopped" in log
