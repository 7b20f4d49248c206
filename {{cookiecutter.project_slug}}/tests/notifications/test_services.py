import pytest
from django.core import mail

from core.models import Status
from notifications import services
from notifications.models import Delivery
from tests.conftest import free_port
from tests.notifications.conftest import RECIPIENTS

pytestmark = pytest.mark.django_db


def states(notification):
    return dict(notification.deliveries.values_list("email", "state"))


def test_one_message_per_recipient(notification):
    assert services.deliver(notification.pk) is False

    assert sorted(m.to[0] for m in mail.outbox) == RECIPIENTS
    assert all(len(m.to) == 1 for m in mail.outbox)
    assert {m.subject for m in mail.outbox} == {"Observations taken"}
    assert set(states(notification).values()) == {Delivery.State.SENT}
    notification.refresh_from_db()
    assert notification.status == Status.DONE
    assert notification.error == ""


def test_a_second_run_sends_nothing_more(notification):
    services.deliver(notification.pk)
    services.deliver(notification.pk)
    assert len(mail.outbox) == len(RECIPIENTS)


def test_a_rerun_after_a_partial_run_sends_only_to_the_rest(notification):
    notification.deliveries.filter(email="pi@example.org").update(
        state=Delivery.State.SENT
    )
    services.deliver(notification.pk)
    assert sorted(m.to[0] for m in mail.outbox) == RECIPIENTS[1:]


def test_sends_over_real_smtp(notification, smtp_server):
    services.deliver(notification.pk)
    assert smtp_server.recipients == RECIPIENTS
    assert b"Subject: Observations taken" in smtp_server.envelopes[0].content


def test_permanent_refusal_fails_that_recipient_at_once(notification, smtp_server):
    smtp_server.refuse["student@example.org"] = "550 No such user"

    assert services.deliver(notification.pk) is False

    assert smtp_server.recipients == RECIPIENTS[:2]
    delivery = notification.deliveries.get(email="student@example.org")
    assert (delivery.state, delivery.attempts) == (Delivery.State.FAILED, 1)
    assert delivery.error == "The mail server refused this address."
    notification.refresh_from_db()
    assert notification.status == Status.FAILED
    assert notification.error == "1 of 3 recipients could not be reached."


def test_temporary_refusal_waits_for_a_retry_then_gives_up(
    notification, smtp_server, settings
):
    settings.NOTIFICATION_MAX_ATTEMPTS = 2
    smtp_server.refuse["postdoc@example.org"] = "451 Try again later"

    assert services.deliver(notification.pk) is True
    delivery = notification.deliveries.get(email="postdoc@example.org")
    assert (delivery.state, delivery.attempts) == (Delivery.State.PENDING, 1)
    notification.refresh_from_db()
    assert notification.status == Status.RUNNING

    assert services.deliver(notification.pk) is False
    delivery.refresh_from_db()
    assert (delivery.state, delivery.attempts) == (Delivery.State.FAILED, 2)
    assert delivery.error == "The mail server did not take the message."
    # The others were sent once, on the first run.
    assert smtp_server.recipients == ["pi@example.org", "student@example.org"]


def test_temporary_refusal_then_success(notification, smtp_server):
    smtp_server.refuse["postdoc@example.org"] = "451 Try again later"
    assert services.deliver(notification.pk) is True
    del smtp_server.refuse["postdoc@example.org"]

    assert services.deliver(notification.pk) is False

    assert smtp_server.recipients == RECIPIENTS
    notification.refresh_from_db()
    assert notification.status == Status.DONE


@pytest.fixture
def server_down(settings):
    settings.MAILERS = {
        "default": {
            "BACKEND": "django.core.mail.backends.smtp.EmailBackend",
            "OPTIONS": {"host": "127.0.0.1", "port": free_port()},
        }
    }


def test_server_down_costs_everyone_one_attempt(notification, server_down):
    assert services.deliver(notification.pk) is True

    assert set(states(notification).values()) == {Delivery.State.PENDING}
    assert set(notification.deliveries.values_list("attempts", flat=True)) == {1}
    assert set(notification.deliveries.values_list("error", flat=True)) == {
        "The mail server could not be reached."
    }


def test_server_down_for_every_attempt_fails_the_notification(
    notification, server_down, settings
):
    settings.NOTIFICATION_MAX_ATTEMPTS = 2
    assert services.deliver(notification.pk) is True
    assert services.deliver(notification.pk) is False

    assert set(states(notification).values()) == {Delivery.State.FAILED}
    notification.refresh_from_db()
    assert notification.status == Status.FAILED
    assert notification.error == "3 of 3 recipients could not be reached."


def test_status_payload_counts_deliveries(notification):
    notification.deliveries.filter(email="pi@example.org").update(
        state=Delivery.State.SENT
    )
    notification.deliveries.filter(email="student@example.org").update(
        state=Delivery.State.FAILED
    )
    assert notification.status_payload() == {
        "id": notification.pk,
        "status": "pending",
        "error": None,
        "sent": 1,
        "failed": 1,
        "pending": 1,
    }
