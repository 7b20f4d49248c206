"""The nightly clean-up: what is finished or abandoned, past its retention.

Run by the scheduled task of the backend (core/tasks.py), which adds the
pruning of its own queue's finished records. Safe to run twice, late, or
after a missed night: each step deletes only what is past its age, and a
second run finds nothing left to delete.
"""

import logging
from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from photos import services as photos

from . import throttle

logger = logging.getLogger(__name__)


def clean_up(prune_queue=None):
    """Delete what is past its retention; return how many of each kind."""
    now = timezone.now()
    retention = now - timedelta(days=settings.CLEANUP_RETENTION_DAYS)
    counts = {
        "unfinished photos": photos.delete_unfinished(before=retention),
        "orphaned files": photos.delete_orphaned_files(
            before=now - timedelta(hours=settings.CLEANUP_ORPHAN_HOURS)
        ),
        "expired login counts": throttle.delete_expired(),
    }
    if prune_queue is not None:
        counts["finished queue records"] = prune_queue(before=retention)
    logger.info(
        "Clean-up deleted %s", ", ".join(f"{n} {kind}" for kind, n in counts.items())
    )
    return counts
