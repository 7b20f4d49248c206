"""The queue table's side of the worker: wake-ups, claims, leases, outcomes.

django-tasks-db keeps each task as a row (``DBTaskResult``); this module is
how the workers (``manage.py worker``) share those rows safely:

- **Wake-up.** On PostgreSQL, every enqueue that commits sends a NOTIFY;
  an idle worker LISTENs and starts the task at once. The worker still
  looks every ``--interval`` seconds, in case a notification was missed.
- **Claims.** A worker claims a READY row by making it RUNNING and adding
  its id to ``worker_ids`` (SKIP LOCKED: two workers never claim one row).
  That list is the claim: every later write about the run (its outcome,
  a re-queue) is an UPDATE that matches it, so a worker whose claim was
  taken over changes nothing.
- **Leases.** A live worker renews its lease (a ``Throttle`` row, timed by
  the database's clock) every TASK_LEASE_SECONDS / 3. A RUNNING task whose
  worker's lease lapsed (killed, out of memory, cut off, paused) is queued
  again by the next sweep of any worker, or recorded failed once
  TASK_MAX_WORKERS_LOST workers were lost running it: it may be what kills
  them.
- **Database errors** are not the task's fault: such a run is queued again
  later (``retry_later``), a bounded number of times.
"""

import functools
import json
import logging
from datetime import timedelta
from traceback import format_exception

from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import connections, router, transaction
from django.db.models import Q
from django.db.models.functions import Now
from django.db.models.sql import UpdateQuery
from django.tasks import TaskResultStatus
from django.utils import timezone
from django_tasks_db.backend import DatabaseBackend
from django_tasks_db.models import DBTaskResult, get_date_max
from django_tasks_db.utils import exclusive_transaction

from .models import Throttle

logger = logging.getLogger(__name__)

CHANNEL = "django_tasks_db"
READY, RUNNING = TaskResultStatus.READY, TaskResultStatus.RUNNING
SUCCESSFUL, FAILED = TaskResultStatus.SUCCESSFUL, TaskResultStatus.FAILED
MAX_RETRY_DELAY = 300  # seconds


class WorkerLost(Exception):
    """Recorded on a task whose workers were lost TASK_MAX_WORKERS_LOST times."""


def database():
    return connections[router.db_for_write(DBTaskResult)]


def listens():
    """Whether workers can wait for a NOTIFY instead of polling."""
    return database().vendor == "postgresql"


def wake_workers(queue_name):
    """Wake the idle workers when the current transaction commits (now, if
    there is none); on other databases they poll."""
    if listens():
        with database().cursor() as cursor:
            cursor.execute("SELECT pg_notify(%s, %s)", [CHANNEL, queue_name])


class Backend(DatabaseBackend):
    """django-tasks-db's backend, which also wakes an idle worker."""

    def enqueue(self, task, args, kwargs):
        # The row and its wake-up in one transaction: one commit, not two
        # (a NOTIFY commits like a write). Inside the caller's transaction,
        # no savepoint: both are the caller's to commit.
        with transaction.atomic(using=database().alias, savepoint=False):
            result = super().enqueue(task, args, kwargs)
            wake_workers(task.queue_name)
        return result

    async def aenqueue(self, task, args, kwargs):
        return await sync_to_async(self.enqueue)(task, args, kwargs)


def claim(tasks, worker_id):
    """Claim the next due row of ``tasks`` for ``worker_id``, or return None."""
    if listens():
        return _claim_in_one_statement(tasks, worker_id)
    ready = tasks.ready()
    with exclusive_transaction(ready.db):
        result = ready.get_locked()
        if result is not None:
            result.claim(worker_id)
    return result


def _claim_in_one_statement(tasks, worker_id):
    """PostgreSQL: the claim in one round trip instead of four (BEGIN,
    SELECT ... FOR UPDATE, UPDATE, COMMIT)."""
    sql, params = _claim_sql(tasks, worker_id)
    return next(iter(DBTaskResult.objects.raw(sql, params)), None)


def _claim_sql(tasks, worker_id):
    """An UPDATE ... RETURNING * of the row that a SKIP LOCKED subquery picks
    from ``tasks`` (the library's ``ready()``, in its order)."""
    sql, params = _claim_statement(tasks)
    return sql, [RUNNING, timezone.now(), json.dumps([worker_id]), *params]


@functools.lru_cache(maxsize=8)
def _claim_statement(tasks):
    """The claim's SQL and the pick's parameters, made once per queryset
    (a worker has one): building it costs more than running it. Due is as
    ``ready()`` says, by the database's clock, so nothing in it changes."""
    ready = tasks.filter(status=READY).filter(
        Q(run_after=get_date_max()) | Q(run_after__lte=Now())
    )
    pick, params = ready.values("pk")[:1].query.sql_with_params()
    table = database().ops.quote_name(DBTaskResult._meta.db_table)
    # Only the quoted table name and the ORM's SQL are formatted in; every
    # value is a parameter.
    sql = (
        f"UPDATE {table} SET status = %s, started_at = %s,"  # noqa: S608
        " worker_ids = worker_ids || %s::jsonb"
        f" WHERE id = ({pick} FOR UPDATE SKIP LOCKED) RETURNING *"
    )
    return sql, params


def next_due(tasks):
    """When the earliest row of ``tasks`` queued for later becomes due, or None."""
    return (
        tasks.filter(status=READY, run_after__gt=timezone.now())
        .exclude(run_after=get_date_max())
        .order_by("run_after")
        .values_list("run_after", flat=True)
        .first()
    )


def _this_run(result):
    """The row while it is still this run's: RUNNING, with the same claim."""
    return DBTaskResult.objects.filter(
        pk=result.pk, status=RUNNING, worker_ids=result.worker_ids
    )


def still_claimed(result):
    """Lock the row and say whether this run still holds it (claims.held)."""
    return _this_run(result).select_for_update().exists()


def succeed(result, return_value, *, then=None):
    """Record the run's success; see ``_finish`` for ``then`` and what it returns."""
    return _finish(
        result,
        then,
        status=SUCCESSFUL,
        return_value=return_value,
        exception_class_path="",
        traceback="",
    )


def fail(result, exc, *, then=None):
    """Record the run's failure; see ``_finish`` for ``then`` and what it returns."""
    return _finish(
        result,
        then,
        status=FAILED,
        return_value=None,
        exception_class_path=f"{type(exc).__module__}.{type(exc).__qualname__}",
        traceback="".join(format_exception(exc)),
    )


def _finish(result, then, **fields):
    """Write the outcome to the row, and to ``result`` if it was written.

    Returns (written, the next claimed row or None): with ``then``, a pair
    (the tasks, the worker id), the worker's next claim is made in the same
    statement on PostgreSQL (one commit per task instead of two, which is
    what a drain waits on). ``written`` is False if the claim was taken over.
    """
    fields["finished_at"] = timezone.now()
    if then is not None and listens():
        written, claimed = _finish_and_claim(result, fields, *then)
    else:
        written, claimed = bool(_this_run(result).update(**fields)), None
    if written:
        for name, value in fields.items():
            setattr(result, name, value)
    return written, claimed


def _finish_and_claim(result, fields, tasks, worker_id):
    """PostgreSQL: the run's outcome (the UPDATE that ``_this_run(result)
    .update(**fields)`` would run) and the next claim as one statement."""
    update = _this_run(result).query.chain(UpdateQuery)
    update.add_update_values(fields)
    finish, finish_params = update.get_compiler(database().alias).as_sql()
    claim, claim_params = _claim_sql(tasks, worker_id)
    pk = database().ops.quote_name(DBTaskResult._meta.pk.column)
    # One row: the claimed one's columns (NULL if none was ready) and
    # whether the outcome was written.
    (row,) = DBTaskResult.objects.raw(
        f"WITH finished AS ({finish} RETURNING {pk}), claimed AS ({claim})"  # noqa: S608
        " SELECT claimed.*, (SELECT count(*) FROM finished) AS outcome_written"
        " FROM (VALUES (0)) AS one LEFT JOIN claimed ON true",
        [*finish_params, *claim_params],
    )
    return bool(row.outcome_written), row if row.pk is not None else None


def requeue(result, *, delay=0):
    """Queue the run's task again (not the task's fault). Returns (written,
    None): not written if the claim was taken over. A delay keeps a broken
    dependency from being hammered."""
    run_after = timezone.now() + timedelta(seconds=delay) if delay else None
    requeued = _this_run(result).update(
        status=READY,
        started_at=None,
        run_after=run_after or result.run_after,
    )
    if requeued:
        wake_workers(result.queue_name)
    return bool(requeued), None


def retry_later(result, exc):
    """Queue again a run that lost the database (``exc``): after
    TASK_RETRY_DELAY seconds, twice as long each next time, at most
    MAX_RETRY_DELAY. Past TASK_DB_RETRIES such runs, record it failed. Returns
    (written, None), like ``requeue``."""
    with transaction.atomic():
        retries = _count(result, "db-retries")
        if retries > settings.TASK_DB_RETRIES:
            logger.error("Task %s lost the database %d times", result.pk, retries)
            return fail(result, exc)
        delay = min(settings.TASK_RETRY_DELAY * 2 ** (retries - 1), MAX_RETRY_DELAY)
        logger.warning("Task %s queued again in %.0f s", result.pk, delay)
        return requeue(result, delay=delay)


def _count(result, what):
    """Count one more ``what`` for the task; return the count (Throttle)."""
    expires_at = timezone.now() + timedelta(days=settings.CLEANUP_RETENTION_DAYS)
    return Throttle.add_one(f"task-{what}:{result.pk}", expires_at)


def lease_key(worker_id):
    return f"worker-lease:{worker_id}"


def renew_lease(worker_id):
    """Hold this worker's lease for TASK_LEASE_SECONDS more."""
    expires_at = Now() + timedelta(seconds=settings.TASK_LEASE_SECONDS)
    key = lease_key(worker_id)
    if not Throttle.objects.filter(key=key).update(expires_at=expires_at):
        Throttle.objects.update_or_create(key=key, defaults={"expires_at": expires_at})


def drop_lease(worker_id):
    Throttle.objects.filter(key=lease_key(worker_id)).delete()


def requeue_lost(worker_id, *, running):
    """Queue again the RUNNING tasks whose worker's lease lapsed; how many.

    Also those that ``worker_id`` claimed but is not running (``running``
    is the pk of the task it runs, or None): the answer to a claim can be
    lost with the connection after the claim committed.
    """
    rows = DBTaskResult.objects.running().values_list("pk", "worker_ids", "started_at")
    rows = list(rows)
    if not rows:
        return 0
    keys = {lease_key(ids[-1]) for _, ids, _ in rows if ids}
    alive = set(
        Throttle.objects.filter(key__in=keys, expires_at__gt=Now()).values_list(
            "key", flat=True
        )
    )
    # Well past the moment between a claim and its run.
    unclaimed_since = timezone.now() - timedelta(seconds=settings.TASK_LEASE_SECONDS)

    def is_lost(pk, ids, started_at):
        if not ids or lease_key(ids[-1]) not in alive:
            return True
        return ids[-1] == worker_id and pk != running and started_at < unclaimed_since

    lost = [(pk, ids) for pk, ids, started_at in rows if is_lost(pk, ids, started_at)]
    for pk, ids in lost:
        _requeue_lost(pk, ids)
    return len(lost)


def _requeue_lost(pk, worker_ids):
    with transaction.atomic():
        result = (
            DBTaskResult.objects.filter(pk=pk, status=RUNNING, worker_ids=worker_ids)
            .select_for_update(skip_locked=True)
            .first()
        )
        if result is None:  # finished, or being written, meanwhile
            return
        lost = _count(result, "workers-lost")
        if lost >= settings.TASK_MAX_WORKERS_LOST:
            logger.error("Task %s lost %d workers: failed", pk, lost)
            fail(result, WorkerLost(f"Its workers were lost {lost} times."))
        else:
            logger.warning("Task %s lost its worker: queued again", pk)
            requeue(result)
