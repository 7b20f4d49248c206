"""A message to many recipients, and one delivery row per recipient.

The delivery rows make sending idempotent: a retry, or a second run of the
same task, only sends to addresses still pending.
"""

from django.db import models
from django.urls import reverse

from core.models import Job


class Notification(Job):
    subject = models.CharField(max_length=200)
    message = models.TextField()

    def __str__(self):
        return self.subject

    def get_absolute_url(self):
        return reverse("notifications:detail", args=[self.pk])

    def status_url(self):
        return reverse("notifications:status", args=[self.pk])

    def enqueue(self):
        from . import tasks  # tasks -> services -> models: imported when used

        tasks.enqueue_delivery(self.pk)

    def status_payload(self):
        counts = dict(
            self.deliveries.values_list("state").annotate(n=models.Count("pk"))
        )
        return {
            **super().status_payload(),
            "sent": counts.get(Delivery.State.SENT, 0),
            "failed": counts.get(Delivery.State.FAILED, 0),
            "pending": counts.get(Delivery.State.PENDING, 0),
        }


class Delivery(models.Model):
    class State(models.TextChoices):
        PENDING = "pending"
        SENT = "sent"
        FAILED = "failed"

    notification = models.ForeignKey(
        Notification, on_delete=models.CASCADE, related_name="deliveries"
    )
    email = models.EmailField()
    state = models.CharField(max_length=16, choices=State, default=State.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    error = models.CharField(max_length=500, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name_plural = "deliveries"
        constraints = [
            models.UniqueConstraint(
                fields=["notification", "email"], name="one_delivery_per_recipient"
            ),
        ]

    def __str__(self):
        return f"{self.email} ({self.state})"

    # How the notification's page shows each state: the job badge's colour
    # (core/static/core/site.css) and a word for the recipient.
    SHOWN = {
        State.PENDING: ("pending", "Waiting"),
        State.SENT: ("done", "Sent"),
        State.FAILED: ("failed", "Refused"),
    }

    @property
    def shown(self):
        """(badge status, word) for this delivery's state on the page."""
        return self.SHOWN[self.state]
