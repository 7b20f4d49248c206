"""The real schedulers, with a short schedule: each tick runs the task once.

For every backend: the worker processes (and the scheduler, where the
backend has one) start as compose.yaml starts them,
on PostgreSQL, with the clean-up's schedule shortened by settings to the
finest its scheduler keeps (the row's ``schedule_resolution_seconds``: every
2 s where it counts seconds, every minute on huey). The runs are read from
the clean-up's own log line, whichever worker ran it.
"""

import itertools
import json
import os
import re
import shlex
import signal
import subprocess
import time
from datetime import datetime
from pathlib import Path

import pytest
import yaml

from .bakery import (
    BACKENDS,
    backend_of,
    fresh_database,
    production_env,
    python,
    run,
)
from .web import wait_until

RAN = re.compile(r"^(\S+ \S+) \S+ \d+ INFO core\.cleanup: Clean-up deleted", re.M)

# Photos and files for the clean-up to sort: (status, days old); orphans.
SEED = """
import os, time
from datetime import timedelta
from django.contrib.auth.models import User
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.utils import timezone
from photos.models import Photo
owner = User.objects.create_user("owner")
for status, days in [("failed", 15), ("done", 400), ("failed", 1)]:
    photo = Photo.objects.create(
        owner=owner, status=status, image=ContentFile(b"x", name="a.png")
    )
    Photo.objects.filter(pk=photo.pk).update(
        created_at=timezone.now() - timedelta(days=days)
    )
for name, hours in [("old-orphan", 25), ("new-orphan", 1)]:
    path = default_storage.save(f"photos/originals/{name}.png", ContentFile(b"x"))
    then = time.time() - hours * 3600
    os.utime(default_storage.path(path), (then, then))
"""

# The photos left: (status, days old, file name), as JSON, last (the project
# logs to stdout too).
KEPT = """
import json
from django.utils import timezone
from photos.models import Photo
print(json.dumps(sorted(
    (p.status, (timezone.now() - p.created_at).days, p.image.name.split("/")[-1])
    for p in Photo.objects.all()
)))
"""


@pytest.fixture(params=BACKENDS)
def project(request, synced, tmp_path):
    project = synced(request.param)
    # Every 2 s where the scheduler counts seconds (a sixth crontab field),
    # else every minute.
    resolution = backend_of(request.param)["schedule_resolution_seconds"]
    tick = 60 if resolution >= 60 else 2
    env = {
        **production_env(f"schedule_{request.param}", request.param),
        "CLEANUP_SCHEDULE": "* * * * *" if tick == 60 else f"* * * * * */{tick}",
        "SCHEDULER_INTERVAL": "1",
        "MEDIA_ROOT": str(tmp_path / "media"),
        "PATH": f"{project / '.venv' / 'bin'}{os.pathsep}{os.environ['PATH']}",
    }
    fresh_database(env)
    run(project, "bin/migrate", env=env)
    run(project, python(project), "manage.py", "shell", "-c", SEED, env=env)
    services = yaml.safe_load((project / "compose.yaml").read_text())["services"]
    commands = {
        name: shlex.split(service["command"])
        for name, service in services.items()
        if name in {"worker", "scheduler"}
    }
    row = backend_of(request.param)
    markers = {"worker": row["ready_marker"]}
    if row["scheduler"]:
        markers["scheduler"] = row["scheduler"]["ready_marker"]
    return {
        "path": project,
        "env": env,
        "commands": commands,
        "markers": markers,
        "tick": tick,
        "logs": tmp_path,
    }


def workers(project, count, seconds, schedulers=1):
    """Run ``count`` workers for ``seconds``, with ``schedulers`` scheduler
    processes where the backend has them, stop them all as compose does, and
    return the times the clean-up ran (epoch seconds, from the logs) and the
    ticks that fell while they could run: from the first scheduling process
    ready (a scheduler, or a worker where there is none) to the stop.

    The ``seconds`` count from the moment every process said it is ready:
    on a busy machine a start takes seconds, and ticks that fell before it
    were never meant to run. Those that fell while the others started, once
    one scheduling process was up, may run: they count too.
    """
    counts = {"worker": count}
    if "scheduler" in project["commands"]:
        counts["scheduler"] = schedulers
    scheduling = "scheduler" if "scheduler" in counts else "worker"
    logs, processes, first_ready = [], [], None
    # The workers first, then the schedulers: a tick queued while no worker
    # is up yet would run late, beside the next one.
    for kind, number in counts.items():
        command = project["commands"][kind]
        started = []
        for n in range(number):
            name = f"{Path(command[-1]).name}-{time.monotonic_ns()}-{n}.log"
            log = (project["logs"] / name).open("w+")
            processes.append(
                subprocess.Popen(
                    command,
                    cwd=project["path"],
                    env={**os.environ, **project["env"]},
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            )
            started.append(log)
        logs += started
        marker = project["markers"][kind]
        for log in started:
            wait_until(
                lambda log=log, marker=marker: marker in Path(log.name).read_text(),
                60,
                f"a {kind} to be ready",
            )
            if kind == scheduling and first_ready is None:
                first_ready = time.time()
    time.sleep(seconds)
    stopped = time.time()
    for process in processes:
        process.send_signal(signal.SIGTERM)
    for process in processes:
        assert process.wait(timeout=60) == 0
    runs = []
    for log in logs:
        log.seek(0)
        runs += [
            datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S,%f").timestamp()
            for stamp in RAN.findall(log.read())
        ]
        log.close()
    tick = project["tick"]
    return sorted(runs), int(stopped // tick) - int(first_ready // tick)


def test_each_tick_runs_once_under_two_workers_and_a_restart(project):
    minutes = project["tick"] == 60
    # Two workers for 6.5 ticks (huey: checks at start, +60 s and +120 s).
    # Where the scheduler is a process of its own, two of those too: one
    # started twice by mistake must not double the runs either.
    first, ticks = workers(
        project, count=2, seconds=125 if minutes else 13, schedulers=2
    )
    # huey's workers check at start, +60 s and +120 s: three checks, each due.
    expected = 3 if minutes else ticks
    # One run per tick (give or take those at start and stop), not per worker.
    assert expected - 1 <= len(first) <= expected + 1, (first, expected)

    # Stopped, then started again 2 s later: on huey, likely within the
    # minute it last queued, which its claim keeps from running twice. Ticks
    # that fell meanwhile are skipped, not made up in a burst.
    time.sleep(2)
    second, ticks = workers(project, count=1, seconds=10 if minutes else 7)
    assert len(second) <= (1 if minutes else ticks + 1), (second, ticks)

    if minutes:
        # huey queues at most one run per minute, restarts included: two runs
        # of one tick would be seconds apart in one minute. (Good runs are
        # either about 60 s apart, or, after the restart, in a new minute.)
        runs = first + second
        repeats = [
            (earlier, later)
            for earlier, later in itertools.pairwise(runs)
            if later - earlier < 30 and int(earlier // 60) == int(later // 60)
        ]
        assert not repeats, runs
    # (With 2-s ticks, a tick queued by both workers would double the count
    # above; the gaps between runs say nothing more: a scheduler checks once
    # a second, at its own phase, so two good runs can come < 1 s apart.)


def test_the_clean_up_deletes_what_it_should_and_nothing_else(project):
    # Every scheduler queues the first tick within its first check.
    runs, _ = workers(project, count=1, seconds=6 if project["tick"] < 60 else 15)
    assert runs
    kept = run(
        project["path"],
        python(project["path"]),
        "manage.py",
        "shell",
        "-c",
        KEPT,
        env=project["env"],
    )
    photos = json.loads(kept.stdout.splitlines()[-1])
    assert [(status, days) for status, days, _ in photos] == [
        ("done", 400),
        ("failed", 1),
    ]
    media = Path(project["env"]["MEDIA_ROOT"]) / "photos" / "originals"
    assert {path.name for path in media.iterdir()} == {
        *(name for _, _, name in photos),
        "new-orphan.png",
    }
