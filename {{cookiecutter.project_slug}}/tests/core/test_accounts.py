"""Login and password reset: throttled, and the reset mail sent by the worker."""

import email
import re

import pytest
from django.contrib.auth.signals import user_logged_in, user_login_failed

from core import throttle
from notifications import tasks
from tests.backend import queued

pytestmark = pytest.mark.django_db

LOGIN = "/accounts/login/"
RESET = "/accounts/password_reset/"
PASSWORD = "right-password"  # noqa: S105


@pytest.fixture
def limits(settings, monkeypatch):
    """Small limits, and a clock stopped at the start of a window.

    Windows are fixed (core/throttle.py): attempts on either side of a
    window's end would be counted apart.
    """
    monkeypatch.setattr(throttle, "now", lambda: 1_800_000_000.0)
    settings.THROTTLES = {
        "login/address": (6, 300),
        "login/account": (3, 300),
        "password_reset/address": (6, 3600),
        "password_reset/account": (2, 3600),
    }
    return settings.THROTTLES


@pytest.fixture
def carol(django_user_model):
    """Password reset mails go only to accounts that have a password."""
    return django_user_model.objects.create_user(
        "carol", "carol@example.com", password=PASSWORD
    )


def log_in(client, username, address="127.0.0.1", accept="text/html"):
    return client.post(
        LOGIN,
        {"username": username, "password": "wrong"},
        REMOTE_ADDR=address,
        headers={"Accept": accept},
    )


def test_login_is_limited_per_account(limits, anonymous_client, owner):
    statuses = [
        log_in(anonymous_client, "Owner", f"192.0.2.{i}").status_code for i in range(4)
    ]
    assert statuses == [200, 200, 200, 429]

    response = log_in(anonymous_client, "owner", "192.0.2.9")
    assert response.status_code == 429
    assert 0 < int(response["Retry-After"]) <= 300
    assert "Too many attempts; try again in" in response.content.decode()
    # Another account from the same addresses is not affected.
    assert log_in(anonymous_client, "other", "192.0.2.9").status_code == 200


def test_login_is_limited_per_address(limits, anonymous_client):
    statuses = [log_in(anonymous_client, f"user{i}").status_code for i in range(7)]
    assert statuses == [200] * 6 + [429]
    assert log_in(anonymous_client, "user9", "192.0.2.1").status_code == 200


def test_an_address_over_its_limit_counts_against_no_account(
    limits, anonymous_client, owner
):
    for i in range(6):
        log_in(anonymous_client, f"user{i}", "192.0.2.1")
    # Past its own limit, the address tries one account again and again...
    statuses = [
        log_in(anonymous_client, "owner", "192.0.2.1").status_code for _ in range(5)
    ]
    assert statuses == [429] * 5
    # ...and the account's owner, elsewhere, is not locked out by it.
    assert log_in(anonymous_client, "owner", "192.0.2.2").status_code == 200


def test_a_throttled_login_checks_no_password(limits, anonymous_client, carol):
    for _ in range(3):
        log_in(anonymous_client, "carol")
    checked = []

    def record(**kwargs):
        checked.append(kwargs)

    user_logged_in.connect(record)
    user_login_failed.connect(record)
    try:
        wrong = log_in(anonymous_client, "carol")
        right = anonymous_client.post(
            LOGIN, {"username": "carol", "password": PASSWORD}
        )
    finally:
        user_logged_in.disconnect(record)
        user_login_failed.disconnect(record)
    assert (wrong.status_code, right.status_code) == (429, 429)
    assert checked == []
    assert "_auth_user_id" not in anonymous_client.session


def test_an_api_client_gets_json_429(limits, anonymous_client):
    for _ in range(3):
        log_in(anonymous_client, "dave")
    response = log_in(anonymous_client, "dave", accept="application/json")
    assert response.status_code == 429
    assert response.json() == {"error": "Too many requests; try again later."}
    assert 0 < int(response["Retry-After"]) <= 300


def test_the_window_ends(limits, anonymous_client, monkeypatch):
    for _ in range(3):
        log_in(anonymous_client, "erin")
    assert log_in(anonymous_client, "erin").status_code == 429
    later = throttle.now() + 301
    monkeypatch.setattr(throttle, "now", lambda: later)
    assert log_in(anonymous_client, "erin").status_code == 200


@pytest.mark.parametrize(
    ("remote", "forwarded", "counted_as"),
    [
        ("127.0.0.1", "198.51.100.7", "198.51.100.7"),
        ("127.0.0.1", "10.0.0.1, 198.51.100.7", "198.51.100.7"),
        ("203.0.113.1", "198.51.100.7", "203.0.113.1"),  # not our proxy
        ("2001:db8::1", "", "2001:db8::/64"),
    ],
)
def test_the_address_counted(rf, remote, forwarded, counted_as):
    request = rf.get("/", REMOTE_ADDR=remote, HTTP_X_FORWARDED_FOR=forwarded)
    assert throttle.client_address(request) == counted_as


def test_password_reset_mail_is_queued_not_sent_in_the_request(
    anonymous_client, carol, django_capture_on_commit_callbacks, mailoutbox
):
    with django_capture_on_commit_callbacks(execute=True):
        response = anonymous_client.post(RESET, {"email": "carol@example.com"})
    assert response.status_code == 302
    assert response["Location"] == "/accounts/password_reset/done/"
    assert mailoutbox == []
    (call,) = queued(tasks.send_email)
    assert call.kwargs["to"] == ["carol@example.com"]
    assert re.search(r"/accounts/reset/\w+/[\w-]+/", call.kwargs["body"])


def test_the_worker_sends_the_reset_mail_and_its_link_works(
    run_queued_tasks, anonymous_client, carol, smtp_server
):
    anonymous_client.post(RESET, {"email": "carol@example.com"})
    run_queued_tasks()

    (envelope,) = smtp_server.envelopes
    assert envelope.rcpt_tos == ["carol@example.com"]
    body = email.message_from_bytes(envelope.content).get_payload(decode=True)
    link = re.search(r"https?://[^/\s]+(/accounts/reset/\S+/)", body.decode())[1]
    page = anonymous_client.get(link, follow=True)
    assert b"Choose a new password" in page.content
    assert b"new_password1" in page.content


def test_password_reset_is_limited_per_account_without_saying_so(
    limits, anonymous_client, carol, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        responses = [
            anonymous_client.post(
                RESET, {"email": "carol@example.com"}, REMOTE_ADDR=f"192.0.2.{i}"
            )
            for i in range(5)
        ]
    # The same answer every time; two mails only.
    assert {response.status_code for response in responses} == {302}
    assert len(queued(tasks.send_email)) == 2


def test_password_reset_is_limited_per_address(limits, anonymous_client):
    statuses = [
        anonymous_client.post(RESET, {"email": f"u{i}@example.com"}).status_code
        for i in range(7)
    ]
    assert statuses == [302] * 6 + [429]
