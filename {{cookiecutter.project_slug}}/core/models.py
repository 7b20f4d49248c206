"""The row behind every piece of background work a user asks for.

Status pages read this row, never the task queue: ownership is checked on it,
its status is the same whichever task backend runs the work, and it survives
the queue's own clean-ups.
"""

from django.conf import settings
from django.db import models, transaction
from django.db.models import F

from . import claims


class Status(models.TextChoices):
    PENDING = "pending"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


# What a job is while its task is still to come: the rescue looks at these
# (core/rescue.py), and the pages keep refreshing (templates/includes/).
UNFINISHED = [Status.PENDING, Status.RUNNING]


class Job(models.Model):
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE)
    status = models.CharField(max_length=16, choices=Status, default=Status.PENDING)
    # Shown to the user as it is: a sentence, never a traceback.
    error = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        abstract = True
        ordering = ["-created_at"]

    def set_status(self, status, error=""):
        self.status = status
        self.error = error
        with claims.held():  # a run whose task was taken over writes nothing
            self.save(update_fields=["status", "error", "updated_at"])

    def enqueue(self):
        """Queue this job's task (again): core/rescue.py calls it for a job
        whose task was lost. Inside a transaction, as where it is created."""
        raise NotImplementedError

    @property
    def unfinished(self):
        return self.status in UNFINISHED

    @property
    def status_label(self):
        """The status as the pages show it (core/static/core/poll.js names
        them alike): "pending" is queued, to a user."""
        return "Queued" if self.status == Status.PENDING else self.get_status_display()

    def status_payload(self):
        """The JSON the status endpoint returns; subclasses add their fields."""
        return {"id": self.pk, "status": self.status, "error": self.error or None}


class Throttle(models.Model):
    """A count under a key, until it expires: how often one client or account
    tried one action in one time window (core/throttle.py), how often a job
    was rescued (core/rescue.py), and, on some task backends, a worker's
    lease, a scheduler's claim of a tick or a message's redeliveries.

    A row is useless once expired, and deleted by the nightly clean-up
    (core/cleanup.py).
    """

    key = models.CharField(max_length=64, primary_key=True)
    count = models.PositiveIntegerField(default=0)
    expires_at = models.DateTimeField(db_index=True)

    def __str__(self):
        return f"{self.count} attempts until {self.expires_at:%H:%M:%S}"

    @classmethod
    def add_one(cls, key, expires_at):
        """Count one more under ``key`` (a new row expires at ``expires_at``);
        return the count. The row lock the update takes orders parallel
        calls on the same key, so each sees its own number."""
        with transaction.atomic():
            cls.objects.get_or_create(key=key, defaults={"expires_at": expires_at})
            cls.objects.filter(key=key).update(count=F("count") + 1)
            return cls.objects.values_list("count", flat=True).get(key=key)
