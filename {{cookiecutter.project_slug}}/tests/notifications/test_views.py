import re

import pytest
from django.core import mail
from django.db import transaction

from core.models import Status
from notifications import services, tasks
from notifications.models import Notification
from tests.backend import queued
from tests.queued import Queued

pytestmark = pytest.mark.django_db

VALID = {
    "subject": "Observations taken",
    "message": "On the archive.",
    "recipients": "pi@example.org, postdoc@example.org",
}


def test_post_queues_the_sending_and_answers_202(
    owner_client, owner, django_capture_on_commit_callbacks
):
    # Some backends queue once the transaction commits: let it commit.
    with django_capture_on_commit_callbacks(execute=True):
        response = owner_client.post("/notifications/", VALID)

    assert response.status_code == 202
    notification = Notification.objects.get(owner=owner)
    assert response.json() == {
        "id": notification.pk,
        "status_url": f"/notifications/{notification.pk}/status/",
    }
    assert notification.deliveries.count() == 2
    assert queued(tasks.send_notification) == [Queued([notification.pk], {}, None)]
    assert mail.outbox == []


def test_bad_input_answers_400_with_a_sentence(owner_client):
    response = owner_client.post("/notifications/", {**VALID, "subject": "a\nb"})
    assert response.status_code == 400
    assert response.json() == {"error": "The subject must be a single line."}
    assert Notification.objects.count() == 0
    assert queued(tasks.send_notification) == []


def test_browser_is_sent_to_the_status_page(owner_client):
    response = owner_client.post(
        "/notifications/", VALID, headers={"Accept": "text/html"}
    )
    notification = Notification.objects.get()
    assert response.status_code == 302
    assert response["Location"] == f"/notifications/{notification.pk}/"


def test_browser_gets_the_form_again_on_bad_input(owner_client):
    response = owner_client.post(
        "/notifications/", {**VALID, "recipients": ""}, headers={"Accept": "text/html"}
    )
    assert response.status_code == 400
    assert b"This field is required." in response.content


def test_status_reports_the_deliveries(owner_client):
    status_url = owner_client.post("/notifications/", VALID).json()["status_url"]
    body = owner_client.get(status_url).json()
    assert body["status"] == "pending"
    assert (body["sent"], body["failed"], body["pending"]) == (0, 0, 2)
    assert body["error"] is None


def test_detail_page_polls_the_status_url(owner_client):
    notification_id = owner_client.post("/notifications/", VALID).json()["id"]
    response = owner_client.get(f"/notifications/{notification_id}/")
    assert response.status_code == 200
    assert f'data-status-url="/notifications/{notification_id}/status/"' in (
        response.content.decode()
    )


def test_detail_page_shows_progress_per_recipient_without_javascript(owner_client):
    notification_id = owner_client.post("/notifications/", VALID).json()["id"]
    notification = Notification.objects.get()
    sent, refused = notification.deliveries.order_by("email")
    sent.state, refused.state = "sent", "failed"
    refused.error = "550 No such user"
    sent.save()
    refused.save()
    notification.set_status(Status.DONE)

    page = owner_client.get(f"/notifications/{notification_id}/").content.decode()
    counts = re.findall(r'data-field="(\w+)">(\d+)</strong> (\w+)', page)
    assert counts == [
        ("sent", "1", "sent"),
        ("pending", "0", "waiting"),
        ("failed", "1", "refused"),
    ]
    assert re.search(r"pi@example.org</span> <span[^>]*>Sent</span>", page)
    assert re.search(
        r"postdoc@example.org</span> <span[^>]*>Refused</span> "
        r'<span class="error">550 No such user</span>',
        page,
    )
    assert 'data-status="done">Done</span>' in page
    assert 'http-equiv="refresh"' not in page  # finished: nothing to wait for


def test_detail_page_of_a_queued_notification_refreshes_without_javascript(
    owner_client,
):
    notification_id = owner_client.post("/notifications/", VALID).json()["id"]
    page = owner_client.get(f"/notifications/{notification_id}/").content.decode()
    assert '<noscript><meta http-equiv="refresh" content="5"></noscript>' in page
    assert 'data-status="pending">Queued</span>' in page
    assert '<p class="error" data-field="error" hidden></p>' in page  # no error


@pytest.mark.parametrize("suffix", ["", "status/"])
def test_another_users_notification_is_not_found(owner_client, other_client, suffix):
    notification_id = owner_client.post("/notifications/", VALID).json()["id"]
    response = other_client.get(f"/notifications/{notification_id}/{suffix}")
    assert response.status_code == 404


def test_anonymous_browser_is_sent_to_login(anonymous_client):
    response = anonymous_client.post(
        "/notifications/", VALID, headers={"Accept": "text/html"}
    )
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")
    assert Notification.objects.count() == 0


def test_anonymous_api_client_is_told_401(anonymous_client):
    response = anonymous_client.post("/notifications/", VALID)
    assert response.status_code == 401
    assert Notification.objects.count() == 0


def test_the_queued_task_sends_a_posted_notification(run_queued_tasks, owner_client):
    response = owner_client.post("/notifications/", VALID)
    assert response.status_code == 202
    assert len(mail.outbox) == 0  # nothing is sent in the request

    run_queued_tasks()

    assert sorted(m.to[0] for m in mail.outbox) == [
        "pi@example.org",
        "postdoc@example.org",
    ]
    notification = Notification.objects.get(pk=response.json()["id"])
    assert notification.status == Status.DONE


def test_nothing_is_queued_when_the_transaction_rolls_back(
    owner, django_capture_on_commit_callbacks
):
    # Whether the backend queues inside the transaction or once it commits.
    with (
        django_capture_on_commit_callbacks(execute=True),
        pytest.raises(RuntimeError),
        transaction.atomic(),
    ):
        created = services.create_notification(
            owner=owner, subject="s", message="m", recipients=["a@example.org"]
        )
        tasks.enqueue_delivery(created.pk)
        raise RuntimeError("the request failed after enqueueing")
    assert Notification.objects.count() == 0
    assert queued(tasks.send_notification) == []
