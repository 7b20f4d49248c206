"""Finding the work a task queue dropped, and queueing it again.

A task can be lost between its job row and its worker: huey is at-most-once
(a killed worker's task is gone), a broker restarted without its data loses
what it held, a message can be dropped. The job row knows better: a job
still ``pending`` or ``running`` that nothing has touched for
JOB_RESCUE_SECONDS has no task left to finish it. The backend's schedule of
``rescue_jobs`` (core/tasks.py, every RESCUE_SCHEDULE tick) queues each such
job again, the same way on every backend: nothing is lost for good.

Never two runs at once: a run touches its job when it starts, and no run
lasts longer than TASK_TIME_LIMIT, which JOB_RESCUE_SECONDS must exceed
(settings). A job rescued JOB_MAX_RESCUES times ends ``failed``: its task
may be what kills its workers. A job that was only waiting behind a long
queue is queued twice; the second run finds it finished (the samples are
idempotent).
"""

import logging
from datetime import timedelta

from django.apps import apps
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from .models import UNFINISHED, Job, Status, Throttle

logger = logging.getLogger(__name__)


def job_models():
    """The models of jobs that can be queued again: the subclasses of Job, in
    any app, with an ``enqueue()`` (core/checks.py warns of one without)."""
    return [
        model
        for model in apps.get_models()
        if issubclass(model, Job) and model.enqueue is not Job.enqueue
    ]


def rescue_jobs():
    """Queue again every job left unfinished past JOB_RESCUE_SECONDS; how many."""
    before = timezone.now() - timedelta(seconds=settings.JOB_RESCUE_SECONDS)
    rescued = 0
    for model in job_models():
        stale = model.objects.filter(status__in=UNFINISHED, updated_at__lt=before)
        for pk in stale.values_list("pk", flat=True):
            rescued += _rescue(stale, pk)
    return rescued


def _rescue(stale, pk):
    with transaction.atomic():
        # Skip a job that moved on since, or that another rescue has.
        job = stale.select_for_update(skip_locked=True).filter(pk=pk).first()
        if job is None:
            return 0
        times = _count_rescue(job)
        if times > settings.JOB_MAX_RESCUES:
            logger.error(
                "%s %s lost %d times: failed", job._meta.verbose_name, job.pk, times - 1
            )
            job.set_status(Status.FAILED, "The work was lost too many times.")
            return 0
        logger.warning(
            "%s %s left %s: queued again", job._meta.verbose_name, job.pk, job.status
        )
        job.save(update_fields=["updated_at"])  # the bound starts again
        job.enqueue()
    return 1


def _count_rescue(job):
    """This rescue's number for ``job``: 1, 2, … (kept while the job can be)."""
    key = f"rescue:{job._meta.label_lower}:{job.pk}"
    expires_at = timezone.now() + timedelta(days=settings.CLEANUP_RETENTION_DAYS)
    return Throttle.add_one(key, expires_at)
