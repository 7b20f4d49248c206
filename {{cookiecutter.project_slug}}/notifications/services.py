"""Creating and delivering notifications: plain functions, no task queue.

The task module calls ``deliver()`` and decides, the way its library does,
when to call it again.
"""

import logging
import smtplib

from django.conf import settings
from django.core.mail import EmailMessage, EmailMultiAlternatives, mailers
from django.db import InterfaceError, OperationalError, transaction
from django.db.models import F
from django.utils import timezone

from core.models import Status

from .models import Delivery, Notification

logger = logging.getLogger(__name__)


def create_notification(*, owner, subject, message, recipients):
    with transaction.atomic():
        notification = Notification.objects.create(
            owner=owner, subject=subject, message=message
        )
        Delivery.objects.bulk_create(
            Delivery(notification=notification, email=email) for email in recipients
        )
    return notification


def deliver(notification_id):
    """Send to every recipient still pending; True when some wait for a retry.

    Each recipient is locked, sent to and marked in its own transaction, so a
    second run (a retry, or the same task delivered twice) skips every address
    already sent. A crash between the SMTP send and the commit can still send
    that one message twice: email is at-least-once.
    """
    notification = Notification.objects.get(pk=notification_id)
    if notification.status in {Status.DONE, Status.FAILED}:
        return False
    notification.set_status(Status.RUNNING)

    pending = notification.deliveries.filter(state=Delivery.State.PENDING)
    mailer = mailers.default  # one SMTP session for all recipients
    try:
        for delivery_id in pending.values_list("pk", flat=True):
            try:
                mailer.open()  # no-op while the session is open
            except (smtplib.SMTPException, OSError) as exc:
                logger.warning("The mail server cannot be reached: %r", exc)
                _count_an_attempt_for_all(pending)
                break
            with transaction.atomic():
                delivery = (
                    pending.select_for_update(skip_locked=True)
                    .filter(pk=delivery_id)
                    .first()
                )
                if delivery is not None:
                    _send(notification, delivery, mailer)
    except (OperationalError, InterfaceError):
        # The database went away, not the notification's fault: the run ends
        # here, and the next run sends to everyone still pending.
        raise
    except Exception:
        notification.set_status(Status.FAILED, "Sending stopped by an internal error.")
        raise
    finally:
        mailer.close()

    return _finish(notification)


def send_message(*, subject, body, to, html=None):
    """Send one message written elsewhere (a password reset); True: try later.

    Nothing records it as a notification: a refusal for good is logged and
    the message dropped, a transient failure is the task's to retry.
    """
    message = EmailMultiAlternatives(subject=subject, body=body, to=to)
    if html is not None:
        message.attach_alternative(html, "text/html")
    try:
        message.send()
    except (smtplib.SMTPException, OSError) as exc:
        if _refused_for_good(exc):
            logger.warning("The mail server refused %s for good: %r", to, exc)
            return False
        logger.warning("Sending to %s failed, will try again: %r", to, exc)
        return True
    return False


def _send(notification, delivery, mailer):
    message = EmailMessage(
        subject=notification.subject, body=notification.message, to=[delivery.email]
    )
    delivery.attempts += 1
    try:
        mailer.send_messages([message])
    except ValueError:
        # The message cannot be written (a header the form should have
        # refused): no later attempt can do better.
        logger.exception("Notification %s cannot be encoded", notification.pk)
        delivery.state = Delivery.State.FAILED
        delivery.error = "The message could not be written."
    except (smtplib.SMTPException, OSError) as exc:
        if _refused_for_good(exc):
            delivery.state = Delivery.State.FAILED
            delivery.error = "The mail server refused this address."
        else:
            # Transient: the server is down, busy or dropped us. Try again later.
            logger.warning("Sending to %s failed: %r", delivery.email, exc)
            mailer.close()
            delivery.error = "The mail server did not take the message."
            if delivery.attempts >= settings.NOTIFICATION_MAX_ATTEMPTS:
                delivery.state = Delivery.State.FAILED
    else:
        delivery.state = Delivery.State.SENT
        delivery.sent_at = timezone.now()
        delivery.error = ""
    delivery.save(update_fields=["state", "attempts", "error", "sent_at"])


def _count_an_attempt_for_all(pending):
    """No connection: one failed attempt for everyone waiting, not one each.

    Trying each address against a dead server would hold the worker for
    the SMTP timeout (10 s) once per recipient.
    """
    pending.update(
        attempts=F("attempts") + 1, error="The mail server could not be reached."
    )
    pending.filter(attempts__gte=settings.NOTIFICATION_MAX_ATTEMPTS).update(
        state=Delivery.State.FAILED
    )


def _refused_for_good(exc):
    """A 5xx refusal of the recipient; a 4xx one ("try later") is transient.

    smtplib raises SMTPRecipientsRefused for both kinds.
    """
    return isinstance(exc, smtplib.SMTPRecipientsRefused) and all(
        code >= 500 for code, _ in exc.recipients.values()
    )


def _finish(notification):
    payload = notification.status_payload()
    if payload["pending"]:
        return True
    if payload["failed"]:
        total = payload["failed"] + payload["sent"]
        notification.set_status(
            Status.FAILED,
            f"{payload['failed']} of {total} recipients could not be reached.",
        )
    else:
        notification.set_status(Status.DONE)
    return False
