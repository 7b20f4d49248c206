from django.db import models


class Tick(models.Model):
    """One run of the no-op task: when it was queued, when it started."""

    enqueued_at = models.FloatField()
    started_at = models.FloatField()

    def __str__(self):
        return f"{self.started_at - self.enqueued_at:.3f} s"
