"""HTTP helpers for tests that drive a running web process, as a user would."""

import asyncio
import io
import re
import signal
import socket
import ssl
import subprocess
import time
import uuid
from pathlib import Path

import httpx
from PIL import Image

PASSWORD = "e2e-password-not-secret"  # noqa: S105


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# What a service that is still starting, or busy, does to a request: refuse
# the connection, reset it, or not answer in time. A wait counts these as
# "not yet", never as the end of the wait.
NOT_YET = (httpx.TransportError, ConnectionError)


def wait_until(condition, timeout, what):
    """The first true value of ``condition()`` within ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            value = condition()
        except NOT_YET as error:
            value, last = None, error
        if value:
            return value
        time.sleep(0.1)
    after = f" (last: {last!r})" if last else ""
    raise AssertionError(f"timed out after {timeout} s waiting for {what}{after}")


def login(stack, username, **options):
    """A client logged in as ``username``; ``options`` go to httpx.Client."""
    client = httpx.Client(base_url=stack["url"], timeout=10, **options)
    client.get("/accounts/login/")
    response = client.post(
        "/accounts/login/",
        data={
            "username": username,
            "password": PASSWORD,
            "csrfmiddlewaretoken": client.cookies["csrftoken"],
        },
    )
    assert response.status_code == 302, response.text
    return client


def post(client, url, **kwargs):
    token = client.cookies["csrftoken"]
    return client.post(url, headers={"X-CSRFToken": token}, **kwargs)


def notify(client, subject, recipients=("a@example.org",)):
    """POST a notification as the API client does; its status URL."""
    response = post(
        client,
        "/notifications/",
        data={"subject": subject, "message": "m", "recipients": "\n".join(recipients)},
    )
    assert response.status_code == 202, response.text
    return response.json()["status_url"]


def sending(client, subject, count=4, recipients=200):
    """Queue ``count`` notifications of ``recipients`` each; the status of
    the first seen sending (running, some sent), and all their status URLs.

    Many, so that a stop signal can be sent while one is mid-way.
    """
    to = [f"s{i}@example.org" for i in range(recipients)]
    urls = [notify(client, f"{subject} {n}", to) for n in range(count)]

    def running():
        bodies = [client.get(url).json() for url in urls]
        return next((b for b in bodies if b["status"] == "running" and b["sent"]), None)

    return wait_until(running, 60, "a notification to be sending"), urls


def http_contract(alice, mallory, delivered):
    """What the project does for its users over HTTP, however it is run
    (processes started by the tests, compose, the server guide): a photo
    gets its thumbnail and its owner gets both back, a notification reaches
    every recipient, and another user sees none of it.

    ``alice`` and ``mallory`` are logged-in clients; ``delivered(subject)``
    gives the sorted recipients the mail server got with that subject.
    Returns the photo's status URL, its thumbnail response and the
    notification's status URL.
    """
    sky = noise_png((640, 480))
    response = post(alice, "/photos/", files={"image": ("sky.png", sky)})
    assert response.status_code == 202, response.text
    photo = response.json()["status_url"]
    body = settled(alice, photo, timeout=60)
    assert (body["status"], body["error"]) == ("done", None), body
    original = alice.get(body["image_url"])
    assert original.status_code == 200
    assert (original.headers["content-type"], original.content) == ("image/png", sky)
    thumbnail = alice.get(body["thumbnail_url"])
    assert thumbnail.status_code == 200
    assert thumbnail.headers["content-type"] == "image/webp"
    with Image.open(io.BytesIO(thumbnail.content)) as image:
        assert (image.format, image.size) == ("WEBP", (320, 240))

    subject = f"Contract {uuid.uuid4().hex[:8]}"
    recipients = [f"r{i}@example.org" for i in range(5)]
    note = notify(alice, subject, recipients)
    body = settled(alice, note, timeout=60)
    assert body == {
        "id": body["id"],
        "status": "done",
        "error": None,
        "sent": 5,
        "failed": 0,
        "pending": 0,
    }
    assert delivered(subject) == recipients

    for url in (photo, original.url.path, thumbnail.url.path, note):
        assert mallory.get(url).status_code == 404, url
    return photo, thumbnail, note


def mailpit_recipients(mailpit_url, subject):
    """The recipients of the messages with ``subject`` in Mailpit's API."""
    answer = httpx.get(f"{mailpit_url}/api/v1/messages?limit=2000", timeout=10)
    answer.raise_for_status()
    return sorted(
        to["Address"]
        for message in answer.json()["messages"]
        if message["Subject"] == subject
        for to in message["To"]
    )


def noise_png(size):
    """A PNG that takes the worker a moment to decode (noise compresses badly)."""
    buffer = io.BytesIO()
    Image.effect_noise(size, 60).convert("RGB").save(buffer, "PNG")
    return buffer.getvalue()


def settled(client, status_url, timeout=30):
    """Poll the status URL as the page does, until done or failed."""

    def finished():
        body = client.get(status_url).json()
        return body if body["status"] in {"done", "failed"} else None

    return wait_until(finished, timeout, f"{status_url} to finish")


def serving(url, timeout=60):
    """Wait until ``url`` answers 200, or fail after ``timeout`` seconds."""

    wait_until(lambda: httpx.get(url).status_code == 200, timeout, f"{url} to answer")


class SlowInbox:
    """An SMTP handler that keeps each message and answers after a delay."""

    def __init__(self, delay=0.0):
        self.delay = delay
        self.receiving = 0
        self.envelopes = []

    async def handle_DATA(self, server, session, envelope):
        self.receiving += 1
        await asyncio.sleep(self.delay)
        self.envelopes.append(envelope)
        return "250 Message accepted"

    def recipients(self, subject):
        """The sorted recipients of the messages with ``subject`` (as
        ``mailpit_recipients`` for Mailpit)."""
        return sorted(
            recipient
            for envelope in self.envelopes
            if f"Subject: {subject}".encode() in envelope.content
            for recipient in envelope.rcpt_tos
        )


def catches(pid, signum=signal.SIGTERM):
    """True once process ``pid`` has a handler for ``signum`` (Linux /proc).

    Some workers log that they started before they install their handlers
    (huey): a stop signal in between would kill them outright.
    """
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    caught = re.search(r"^SigCgt:\s*([0-9a-f]+)$", status, re.M)
    return bool(int(caught[1], 16) & 1 << (signum - 1))


def multipart(name, filename, content):
    """A multipart/form-data body with one file field: (body, content type)."""
    boundary = "offload-test-boundary"
    body = (
        (
            f"--{boundary}\r\n"
            f'Content-Disposition: form-data; name="{name}"; filename="{filename}"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n"
        ).encode()
        + content
        + f"\r\n--{boundary}--\r\n".encode()
    )
    return body, f"multipart/form-data; boundary={boundary}"


def trickle(body, bytes_per_second, piece=2000):
    """Yield ``body`` at a client's slow upload speed."""
    for start in range(0, len(body), piece):
        yield body[start : start + piece]
        time.sleep(piece / bytes_per_second)


def connect(url, tls, timeout=10):
    """A raw socket to an http:// or https:// URL (``tls``: an SSL context)."""
    scheme, _, hostport = url.partition("://")
    host, _, port = hostport.partition(":")
    sock = socket.create_connection((host, int(port)), timeout=timeout)
    if scheme == "https":
        sock = tls.wrap_socket(sock, server_hostname=host)
    return sock


def read_response(sock):
    """The status code, headers and body of the HTTP/1.1 response on ``sock``."""
    data = b""

    def more():
        nonlocal data
        chunk = sock.recv(65536)
        data += chunk
        return chunk

    while b"\r\n\r\n" not in data and more():
        pass
    head, _, data = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {
        name.lower(): value
        for name, _, value in (line.partition(": ") for line in lines[1:])
    }
    if headers.get("transfer-encoding") == "chunked":
        while not data.endswith(b"0\r\n\r\n") and more():
            pass
        body = b""
        while data:
            size, _, data = data.partition(b"\r\n")
            body += data[: int(size, 16)]
            data = data[int(size, 16) + 2 :]
        return int(lines[0].split()[1]), headers, body
    while len(data) < int(headers.get("content-length", 0)) and more():
        pass
    return int(lines[0].split()[1]), headers, data


def nginx_conf(site, folder, upstream_port):
    """deploy/nginx's site for a test run: local ports, a fresh certificate.

    Returns (nginx.conf path, https URL, an SSL context that trusts the
    certificate). Each replaced line must be found, so that a change to the
    shipped file cannot quietly escape the test.
    """
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
         "-keyout", folder / "key.pem", "-out", folder / "cert.pem"],
        check=True, capture_output=True,
    )  # fmt: skip
    port = free_port()
    replacements = [
        (r"server 127\.0\.0\.1:8000;", f"server 127.0.0.1:{upstream_port};"),
        (r"listen 443 ssl;", f"listen 127.0.0.1:{port} ssl;"),
        (r"listen 80;", f"listen 127.0.0.1:{free_port()};"),
        (r"listen \[::\]:\d+( ssl)?;\n", ""),
        (r"ssl_certificate \S+;", f"ssl_certificate {folder / 'cert.pem'};"),
        (r"ssl_certificate_key \S+;", f"ssl_certificate_key {folder / 'key.pem'};"),
    ]
    text = site.read_text()
    for pattern, replacement in replacements:
        text, found = re.subn(pattern, replacement, text)
        assert found, f"{pattern} not in {site}"
    (folder / "site.conf").write_text(text)
    temp = "\n".join(
        f"  {kind}_temp_path {folder / kind};"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    main = folder / "nginx.conf"
    main.write_text(
        f"daemon off;\nuser root;\nworker_processes 1;\npid {folder / 'nginx.pid'};\n"
        f"error_log {folder / 'error.log'} info;\n"
        "events { worker_connections 256; }\n"
        f"http {{\n  access_log {folder / 'access.log'};\n{temp}\n"
        f"  include {folder / 'site.conf'};\n}}\n"
    )
    tls = ssl.create_default_context(cafile=folder / "cert.pem")
    return main, f"https://127.0.0.1:{port}", tls
