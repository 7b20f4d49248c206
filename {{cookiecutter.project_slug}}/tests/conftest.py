"""Fixtures shared by the whole suite: users, clients, media, a real SMTP
server, the worker processes a test starts."""

import asyncio
import os
import signal
import socket

import pytest
from aiosmtpd.controller import Controller
from django.test import Client

# Backend-specific helpers: how queued tasks are inspected and run.
pytest_plugins = ["tests.backend"]


@pytest.fixture(scope="session")
def django_db_modify_db_settings(django_db_modify_db_settings_parallel_suffix):
    """On SQLite, test in a file, so a worker subprocess sees the same data:
    one file per process of ``pytest -n`` (pytest-xdist), as PostgreSQL's
    test databases are one per process."""
    from django.conf import settings

    database = settings.DATABASES["default"]
    if database["ENGINE"] == "django.db.backends.sqlite3":
        process = os.environ.get("PYTEST_XDIST_WORKER", "main")
        database["TEST"]["NAME"] = str(settings.BASE_DIR / f"test_{process}.sqlite3")


@pytest.fixture(autouse=True)
def media_root(settings, tmp_path):
    """Uploads on the local disk, in the test's own folder, even where .env
    names a bucket (tests/photos/test_bucket.py tests a bucket of its own)."""
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    }
    return settings.MEDIA_ROOT


def make_client(user=None):
    # As behind the TLS-terminating proxy: no redirect to HTTPS.
    client = Client(headers={"X-Forwarded-Proto": "https"})
    if user is not None:
        client.force_login(user)
    return client


@pytest.fixture
def owner(django_user_model):
    return django_user_model.objects.create_user("owner", "owner@example.com")


@pytest.fixture
def other(django_user_model):
    return django_user_model.objects.create_user("other", "other@example.com")


@pytest.fixture
def anonymous_client():
    return make_client()


@pytest.fixture
def owner_client(owner):
    return make_client(owner)


@pytest.fixture
def other_client(other):
    return make_client(other)


class Mailbox:
    """aiosmtpd handler: keeps messages, refuses chosen recipients.

    ``delay`` seconds pass between a message's arrival (``receiving``
    counts them) and the server's answer, as with a slow server.
    """

    def __init__(self):
        self.envelopes = []
        self.refuse = {}  # address -> SMTP reply, e.g. "550 No such user"
        self.delay = 0.0
        self.receiving = 0

    async def handle_RCPT(self, server, session, envelope, address, options):
        if address in self.refuse:
            return self.refuse[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        self.receiving += 1
        await asyncio.sleep(self.delay)
        self.envelopes.append(envelope)
        return "250 Message accepted"

    @property
    def recipients(self):
        return sorted(rcpt for envelope in self.envelopes for rcpt in envelope.rcpt_tos)


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def smtp_server(settings):
    """A real SMTP server on loopback, and the settings to send to it."""
    mailbox = Mailbox()
    controller = Controller(mailbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    settings.MAILERS = {
        "default": {
            "BACKEND": "django.core.mail.backends.smtp.EmailBackend",
            "OPTIONS": {"host": "127.0.0.1", "port": controller.port},
        }
    }
    mailbox.port = controller.port
    yield mailbox
    controller.stop()


@pytest.fixture
def workers():
    """The worker processes a test starts (append them): killed at its end."""
    started = []
    yield started
    for worker in started:
        if worker.poll() is None:
            os.killpg(worker.pid, signal.SIGKILL)
            worker.wait()
