"""HTTP helpers for tests that drive a running web process, as a user would."""

import asyncio
import re
import signal
import socket
import time
from pathlib import Path

import httpx

PASSWORD = "e2e-password-not-secret"  # noqa: S105


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(condition, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def login(stack, username):
    client = httpx.Client(base_url=stack["url"], timeout=10)
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


def settled(client, status_url, timeout=30):
    """Poll the status URL as the page does, until done or failed."""

    def finished():
        body = client.get(status_url).json()
        return body if body["status"] in {"done", "failed"} else None

    return wait_until(finished, timeout, f"{status_url} to finish")


def serving(url, timeout=60):
    """Wait until ``url`` answers 200, or fail after ``timeout`` seconds."""

    def answers():
        try:
            return httpx.get(url).status_code == 200
        except httpx.TransportError:
            return False

    wait_until(answers, timeout, f"{url} to answer")


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
