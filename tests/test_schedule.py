"""The real scheduler, every 2 s, under two workers: each tick queued once.

For every backend that schedules (its folder fills core/tasks.py): the
worker processes start as compose.yaml starts them, on PostgreSQL, with the
clean-up's schedule shortened by settings. The clean-up is a task like any
other: the test reads when each run was queued from the project itself.
"""

import itertools
import json
import os
import shlex
import signal
import subprocess
import time
from pathlib import Path

import pytest
import yaml

from .bakery import BACKENDS, PG_URL, ROOT, production_env, python, run

SCHEDULING = [
    name
    for name in BACKENDS
    if (ROOT / "templates" / "backends" / name / "core" / "tasks.py").exists()
]
EVERY = 2  # seconds between ticks in these runs

# Prints the times (epoch seconds) at which the clean-up was queued, as JSON,
# last (the project logs to stdout too).
QUEUED_TIMES = """
import json
from django_tasks_db.models import DBTaskResult
rows = DBTaskResult.objects.filter(task_path="core.tasks.clean_up")
print(json.dumps(sorted((r.enqueued_at.timestamp(), r.status) for r in rows)))
"""


# Photos and files for the clean-up to sort: (name, status, days old).
SEED = """
import os, time
from datetime import timedelta
from django.contrib.auth.models import User
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.utils import timezone
from photos.models import Photo
owner = User.objects.create_user("owner")
for name, status, days in [
    ("old-failed", "failed", 15), ("old-done", "done", 400), ("new-failed", "failed", 1)
]:
    photo = Photo.objects.create(
        owner=owner, status=status, image=ContentFile(b"x", name=f"{name}.png")
    )
    Photo.objects.filter(pk=photo.pk).update(
        created_at=timezone.now() - timedelta(days=days)
    )
for name, hours in [("old-orphan", 25), ("new-orphan", 1)]:
    path = default_storage.save(f"photos/originals/{name}.png", ContentFile(b"x"))
    then = time.time() - hours * 3600
    os.utime(default_storage.path(path), (then, then))
"""


# The photos left: (status, days old, file name), as JSON.
KEPT = """
import json
from django.utils import timezone
from photos.models import Photo
print(json.dumps(sorted(
    (p.status, (timezone.now() - p.created_at).days, p.image.name.split("/")[-1])
    for p in Photo.objects.all()
)))
"""


@pytest.fixture(params=SCHEDULING)
def project(request, synced, tmp_path):
    project = synced(request.param)
    env = {
        **production_env(f"schedule_{request.param}", request.param),
        "MEDIA_ROOT": str(tmp_path / "media"),
        "CLEANUP_SCHEDULE": f"* * * * * */{EVERY}",
        "SCHEDULER_INTERVAL": "1",
        "PATH": f"{project / '.venv' / 'bin'}{os.pathsep}{os.environ['PATH']}",
    }
    database = env["DATABASE_URL"].rsplit("/", 1)[1]
    maintenance = f"--maintenance-db={PG_URL}/postgres"
    run(project, "dropdb", "--if-exists", "--force", maintenance, database)
    run(project, "createdb", maintenance, database)
    run(project, "bin/migrate", env=env)
    run(project, python(project), "manage.py", "shell", "-c", SEED, env=env)
    compose = yaml.safe_load((project / "compose.yaml").read_text())
    command = compose["services"]["worker"]["command"]
    return project, env, shlex.split(command) if isinstance(command, str) else command


def workers(project, env, command, count, seconds):
    """Run ``count`` workers for ``seconds``, then stop them as compose does."""
    processes = [
        subprocess.Popen(
            command,
            cwd=project,
            env={**os.environ, **env},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        for _ in range(count)
    ]
    started = time.time()
    time.sleep(seconds)
    stopped = time.time()
    for process in processes:
        process.send_signal(signal.SIGTERM)
    for process in processes:
        assert process.wait(timeout=60) == 0
    return started, stopped


def queued_times(project, env):
    """When each clean-up was queued; all ran but one queued as workers stopped."""
    shell = run(
        project, python(project), "manage.py", "shell", "-c", QUEUED_TIMES, env=env
    )
    rows = json.loads(shell.stdout.splitlines()[-1])  # after the log lines
    statuses = [status for _, status in rows]
    assert set(statuses[:-1]) <= {"SUCCESSFUL"}, rows
    return [queued for queued, _ in rows]


def ticks_between(start, end):
    """How many tick times (multiples of EVERY) fall in [start, end)."""
    return int(end // EVERY) - int(start // EVERY)


def test_each_tick_is_queued_once_under_two_workers_and_a_restart(project):
    project, env, command = project
    started, stopped = workers(project, env, command, count=2, seconds=13)
    first = queued_times(project, env)
    # Due ticks, less one for start-up (the scheduler syncs after Django
    # starts) and one for a tick due as the workers stopped.
    due = ticks_between(started, stopped)
    assert due - 2 <= len(first) <= due, (due, first)

    time.sleep(5)  # no worker: these ticks are skipped, not made up later
    restarted, stopped = workers(project, env, command, count=1, seconds=7)
    times = queued_times(project, env)
    second = times[len(first) :]
    assert times[: len(first)] == first
    assert all(restarted <= t <= stopped + 1 for t in second), (restarted, second)
    due = ticks_between(restarted, stopped)
    assert due - 2 <= len(second) <= due, (due, second)
    # One run per tick: two runs of one tick would be queued together.
    gaps = [later - earlier for earlier, later in itertools.pairwise(times)]
    assert min(gaps) > EVERY / 2, gaps


def test_the_clean_up_deletes_what_it_should_and_nothing_else(project):
    project, env, command = project
    workers(project, env, command, count=1, seconds=5)
    kept = run(project, python(project), "manage.py", "shell", "-c", KEPT, env=env)
    photos = json.loads(kept.stdout.splitlines()[-1])
    assert [(status, days) for status, days, _ in photos] == [
        ("done", 400),
        ("failed", 1),
    ]
    media = Path(env["MEDIA_ROOT"]) / "photos" / "originals"
    assert {path.name for path in media.iterdir()} == {
        *(name for _, _, name in photos),
        "new-orphan.png",
    }
