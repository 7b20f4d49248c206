"""A task run's claim on its work, checked where the run writes its outcome.

A worker that is cut off from the database, or paused, loses its claim when
its lease lapses, and another worker runs the task again. When the first
one comes back, its run must not record its stale outcome over the newer
run's. The worker says how to check its claim (``claimed``); the writes of
a job's outcome (``Job.set_status``, a photo's thumbnail) go through
``held``, which makes them in a transaction that first checks, and locks,
the claim: a write after the claim was taken over raises ``ClaimLost``
instead. Outside a worker that gives a check (the web process, tests, a
task library without leases) the writes are made as they are.
"""

import contextvars
from contextlib import contextmanager

from django.db import transaction

_check = contextvars.ContextVar("claim_check", default=None)


class ClaimLost(Exception):
    """Another run of the task took over: this run's writes would be stale."""


@contextmanager
def claimed(check):
    """Run the body as a task run whose writes hold while ``check()`` is
    true; ``check`` runs inside the writes' transaction and locks what it
    reads, so the claim cannot be taken over before they commit."""
    token = _check.set(check)
    try:
        yield
    finally:
        _check.reset(token)


@contextmanager
def held():
    """Make the body's writes only while this run holds its claim."""
    check = _check.get()
    if check is None:
        yield
        return
    with transaction.atomic():
        if not check():
            raise ClaimLost("Another run of this task took it over.")
        yield
