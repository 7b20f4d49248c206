"""Our django-tasks-db worker against four other PostgreSQL queues, side by side.

    uv run python benchmarks/pg_queues.py [--tasks N] [--rounds R] [--pickups M]
                                          [--recovery-cap S] [--default-recovery]

Run from /work/main after `uv sync`; needs the local PostgreSQL 14+
(OFFLOAD_PG_URL, default postgres://postgres@127.0.0.1:5432, trust auth) and
uv. It bakes the default project (django-tasks-db) and `uv sync --locked`s it,
then builds three more virtual environments (uv venv from the baked project's
base Python, UV_PYTHON_DOWNLOADS=never), each with one library and the baked
project's Django and psycopg, and writes a minimal Django project for each:
django-ox 1.9.1, django-task-psql 0.2.1 (a django.tasks backend woken by
LISTEN/NOTIFY) and procrastinate 3.10.0 with procrastinate.contrib.django
(its own @app.task API, not django.tasks). All run the same no-op task (it
records a Tick: enqueued_at, started_at), use the same DATABASES entry (the
baked project's, CONN_MAX_AGE included) and their own database
(offload_pgq_*, created and dropped here). One worker process at a time,
each on its library's documented defaults, five workers:

  (a) the shipped bin/worker (manage.py worker: NOTIFY wake-up with a 5 s
      safety-net poll, leases, a time limit)
  (b) raw `manage.py db_worker` (django-tasks-db's command, library defaults)
  (c) `manage.py ox_worker` (django-ox, library defaults)
  (d) `manage.py runworker` (django-task-psql, library defaults)
  (e) `manage.py procrastinate worker` (procrastinate, library defaults)

and per round, the five interleaved:

- drain: N no-op tasks queued, then the worker started; tasks/s from the
  first task's start to the last one's (process start-up not counted);
- pick-up: a warm, running worker; one task enqueued every 100 ms, M times;
  enqueue-to-start latency p50 / p99;
- recovery after kill -9: a task that sleeps 600 s is claimed (RUNNING), the
  worker is SIGKILLed, a fresh worker is started at once; seconds from the
  kill until the same task starts again, or "never within S s". Measured with
  shortened windows (ours: TASK_LEASE_SECONDS=3; django-ox: LOCK_TIMEOUT=6;
  django-task-psql: TASK_WORKER_STALE_MINUTES=1, its shortest, checked only
  at a worker's start-up; db_worker and procrastinate have none by default),
  or, with --default-recovery, with each system's defaults (one trial each,
  minutes). Each default-settings bound is also printed as computed from
  the settings (not measured).

and once per run (not per round), after the rounds:

- idle cost: the worker started, warmed up (5 tasks run, then 15 s idle),
  then pg_stat_database read for the system's database twice, 72 s apart
  (the idle minute plus 12 s, as PostgreSQL flushes an idle backend's
  counters up to ~10 s late); transactions (xact_commit + xact_rollback:
  transactions, not statements) and new sessions (`sessions`) per minute
  are the deltas divided by the real interval between the two reads. Held
  connections: client backends in pg_stat_activity on that database at the
  second read. The reads come from a connection to the `postgres` database,
  and the measuring process closes its own connection to the system's
  database first, so the measurement itself counts in none of the figures.

Prints medians over the rounds, the drain ratio to (b) from the same run,
and the idle figures; it reports figures and asserts none. Temporary
directories and databases are removed at the end.

The file is also the measuring half: run as `python pg_queues.py --inside
JOB` by each environment's own interpreter, it does one job and prints JSON
(the payload's `system` says which queue API and models to use).
"""

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
UV = shutil.which("uv") or str(Path(sys.executable).with_name("uv"))
PG_URL = os.environ.get("OFFLOAD_PG_URL", "postgres://postgres@127.0.0.1:5432")
OX_VERSION = "1.9.1"
PSQL_VERSION = "0.2.1"
PROC_VERSION = "3.10.0"
DB_DTDB = "offload_pgq_dtdb"
DB_OX = "offload_pgq_ox"
DB_PSQL = "offload_pgq_psql"
DB_PROC = "offload_pgq_proc"
SHORT_OURS = {"TASK_LEASE_SECONDS": "3"}
SHORT_OX = {"PGQ_OX_LOCK_TIMEOUT": "6"}
# django-task-psql's window is whole minutes; 1 is its shortest.
SHORT_PSQL = {"TASK_WORKER_STALE_MINUTES": "1"}
LONG_TASK_SECONDS = 600
# Idle cost: warm-up wait, the idle minute, and the wait for PostgreSQL to
# flush an idle backend's counters (up to ~10 s late) before the last read.
IDLE_WARM_SECONDS = 15
IDLE_SECONDS = 60
STATS_FLUSH_SECONDS = 12

# -- files written for both environments --------------------------------------

APP_MODELS = '''\
from django.db import models


class Tick(models.Model):
    """One start of a task: when it was queued, when it started."""

    kind = models.CharField(max_length=10)
    enqueued_at = models.FloatField()
    started_at = models.FloatField()
'''

APP_TASKS = """\
import time

from django.tasks import task

from .models import Tick


@task()
def noop(enqueued_at):
    Tick.objects.create(kind="noop", enqueued_at=enqueued_at, started_at=time.time())


@task()
def sleeper(enqueued_at, seconds):
    Tick.objects.create(kind="long", enqueued_at=enqueued_at, started_at=time.time())
    time.sleep(seconds)
"""

# procrastinate's own task API (not django.tasks): the same two tasks.
APP_PROC_TASKS = """\
import time

from procrastinate.contrib.django import app

from .models import Tick


@app.task
def noop(enqueued_at):
    Tick.objects.create(kind="noop", enqueued_at=enqueued_at, started_at=time.time())


@app.task
def sleeper(enqueued_at, seconds):
    Tick.objects.create(kind="long", enqueued_at=enqueued_at, started_at=time.time())
    time.sleep(seconds)
"""

DTDB_SETTINGS = '''\
"""The baked project's settings, plus the benchmark's app."""

from config.settings import *  # noqa: F403

INSTALLED_APPS += ["pgq_app"]  # noqa: F405
'''

# The part the minimal projects of (c), (d), (e) share: the baked project's
# DATABASES entry (passed as JSON), the same logging.
MINIMAL_SETTINGS = """\
import json
import os

SECRET_KEY = "benchmark-" + "k" * 60
DEBUG = False
USE_TZ = True
TIME_ZONE = "UTC"
DATABASES = {"default": json.loads(os.environ["PGQ_DATABASE"])}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"stdout": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["stdout"], "level": os.environ.get("LOG_LEVEL", "INFO")},
}
"""

OX_SETTINGS = (
    '"""A minimal project for django-ox: its defaults."""\n\n'
    + MINIMAL_SETTINGS
    + """
INSTALLED_APPS = ["django.contrib.contenttypes", "django_ox", "pgq_app"]
OPTIONS = {}
if os.environ.get("PGQ_OX_LOCK_TIMEOUT"):
    OPTIONS["LOCK_TIMEOUT"] = float(os.environ["PGQ_OX_LOCK_TIMEOUT"])
TASKS = {"default": {"BACKEND": "django_ox.backend.OxBackend", "OPTIONS": OPTIONS}}
"""
)

PSQL_SETTINGS = (
    '"""A minimal project for django-task-psql: its defaults (its README)."""\n\n'
    + MINIMAL_SETTINGS
    + """
INSTALLED_APPS = ["django.contrib.contenttypes", "django_task_psql", "pgq_app"]
TASKS = {"default": {"BACKEND": "django_task_psql.backend.PostgresBackend"}}
"""
)

PROC_SETTINGS = (
    '"""A minimal project for procrastinate.contrib.django: its defaults."""\n\n'
    + MINIMAL_SETTINGS
    + """
INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "procrastinate.contrib.django",
    "pgq_app",
]
# Its tasks (procrastinate's @app.task) are in pgq_app/proc_tasks.py; the
# django.tasks ones (pgq_app/tasks.py) are not its.
PROCRASTINATE_AUTODISCOVER_MODULE_NAME = "proc_tasks"
"""
)

OX_MANAGE = """\
import sys

from django.core.management import execute_from_command_line

execute_from_command_line(sys.argv)
"""


# -- the measuring half: runs inside an environment ---------------------------


def percentiles(samples):
    ordered = sorted(samples)
    p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
    return statistics.median(ordered), p99


def admin_connection():
    import psycopg
    from django.conf import settings

    db = settings.DATABASES["default"]
    return psycopg.connect(
        host=db["HOST"],
        port=db["PORT"] or 5432,
        user=db["USER"],
        password=db["PASSWORD"],
        dbname="postgres",
        autocommit=True,
    )


def clear(job):
    """Empty the system's queue tables and the ticks."""
    from django.apps import apps
    from django.db import connection

    tables = [apps.get_model(label)._meta.db_table for label in job["queue_models"]]
    tables.append("pgq_app_tick")
    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE " + ", ".join(tables) + " CASCADE")


def enqueue(job, name, **kwargs):
    """Queue the task ``name`` with the system's own API."""
    if job["system"] == "procrastinate":
        from pgq_app import proc_tasks

        getattr(proc_tasks, name).defer(**kwargs)
    else:  # django.tasks, whichever backend the settings name
        from pgq_app import tasks

        getattr(tasks, name).enqueue(**kwargs)


def start_worker(job, extra_env=None):
    # As under compose/supervisord/systemd: the venv's python first on PATH.
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"
    log = tempfile.NamedTemporaryFile("w+", prefix="pgq-worker-", suffix=".log")  # noqa: SIM115
    worker = subprocess.Popen(
        job["command"],
        env={**os.environ, "PATH": path, **(extra_env or {})},
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    worker.log = log
    return worker


def kill_worker(worker):
    """kill -9 the worker's process group (the worker and any child)."""
    if worker.poll() is None:
        os.killpg(worker.pid, signal.SIGKILL)
    worker.wait()


def stop_worker(worker):
    if worker.poll() is None:
        os.killpg(worker.pid, signal.SIGTERM)
        try:
            worker.wait(timeout=30)
        except subprocess.TimeoutExpired:
            kill_worker(worker)


def worker_failed(worker):
    worker.log.seek(0)
    return RuntimeError(
        f"the worker exited with {worker.returncode}:\n{worker.log.read()}"
    )


def wait_for(condition, worker, timeout):
    """True once condition() holds; False after timeout seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if worker.poll() is not None:
            raise worker_failed(worker)
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def sleep_watching(worker, seconds):
    """Sleep, but fail at once if the worker exits meanwhile."""
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        if worker.poll() is not None:
            raise worker_failed(worker)
        time.sleep(min(left, 0.5))


def job_setup(job):
    from django.conf import settings
    from django.core.management import call_command
    from django.db import connection
    from pgq_app.models import Tick

    name = settings.DATABASES["default"]["NAME"]
    with admin_connection() as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{name}"')
    call_command("migrate", verbosity=0)
    with connection.schema_editor() as editor:
        editor.create_model(Tick)
    return {"server_version": connection.cursor().connection.info.server_version}


def job_drop(job):
    with admin_connection() as admin:
        for name in job["databases"]:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    return {}


def job_info(job):
    import django
    import psycopg
    from django.conf import settings

    db = dict(settings.DATABASES["default"])
    info = {
        "python": sys.version.split()[0],
        "django": django.__version__,
        "psycopg": psycopg.__version__,
        "database": db,
    }
    if job["system"] == "ox":
        from django_ox.worker import Worker

        # The worker's own derivation of its defaults (poll interval: the
        # ox_worker command's --interval default, 1 s).
        worker = Worker()
        info["ox"] = {
            "lock_timeout": worker.lock_timeout,
            "reap_interval": worker.reap_interval,
            "renew_interval": worker.renew_interval,
            "poll_interval": worker.poll_interval,
            "max_attempts": worker.backend.max_attempts,
        }
    elif job["system"] == "psql":
        from django_task_psql import conf

        # Its worker reads these (TASK_WORKER_* environment variables).
        info["psql"] = {
            "stale_minutes": conf.TASK_WORKER_STALE_MINUTES,
            "heartbeat_s": conf.TASK_WORKER_HEARTBEAT_S,
            "concurrency": conf.TASK_WORKER_CONCURRENCY,
        }
    elif job["system"] == "procrastinate":
        import inspect

        import procrastinate
        import psycopg_pool
        from procrastinate import worker
        from procrastinate.contrib.django import app

        # The worker's own defaults (app.worker_defaults is None unless set),
        # and the size its psycopg pool opens with.
        defaults = {
            name: parameter.default
            for name, parameter in inspect.signature(
                worker.Worker.__init__
            ).parameters.items()
        }
        pool = inspect.signature(psycopg_pool.AsyncConnectionPool.__init__)
        info["procrastinate"] = {
            "version": procrastinate.__version__,
            "worker_defaults": app.worker_defaults,
            "pool_min_size": pool.parameters["min_size"].default,
            **{
                name: defaults[name]
                for name in (
                    "concurrency",
                    "fetch_job_polling_interval",
                    "abort_job_polling_interval",
                    "listen_notify",
                    "update_heartbeat_interval",
                    "stalled_worker_timeout",
                )
            },
        }
    else:
        from core.management.commands import worker

        info["ours"] = {
            name: getattr(settings, name)
            for name in (
                "TASK_TIME_LIMIT",
                "TASK_LEASE_SECONDS",
                "TASK_MAX_WORKERS_LOST",
            )
        }
        info["ours"]["SAFETY_NET_INTERVAL"] = worker.SAFETY_NET_INTERVAL
    return info


def job_drain(job):
    from pgq_app.models import Tick

    clear(job)
    for _ in range(job["tasks"]):
        enqueue(job, "noop", enqueued_at=time.time())
    worker = start_worker(job)
    try:
        if not wait_for(lambda: Tick.objects.count() >= job["tasks"], worker, 600):
            raise TimeoutError("the worker did not drain the queue in 600 s")
    finally:
        stop_worker(worker)
    starts = sorted(Tick.objects.values_list("started_at", flat=True))
    clear(job)
    return {"rate": (len(starts) - 1) / (starts[-1] - starts[0])}


def job_pickup(job):
    from pgq_app.models import Tick

    clear(job)
    worker = start_worker(job)
    try:
        # Warm: the first tasks also open the worker's connections.
        for _ in range(5):
            enqueue(job, "noop", enqueued_at=time.time())
        if not wait_for(lambda: Tick.objects.count() >= 5, worker, 60):
            raise TimeoutError("the worker did not start")
        Tick.objects.all().delete()
        time.sleep(1.5)
        begin = time.monotonic()
        for i in range(job["pickups"]):
            time.sleep(max(0.0, begin + 0.1 * i - time.monotonic()))
            enqueue(job, "noop", enqueued_at=time.time())
        if not wait_for(lambda: Tick.objects.count() >= job["pickups"], worker, 120):
            raise TimeoutError("the worker did not run every task in 120 s")
    finally:
        stop_worker(worker)
    latencies = [
        (tick.started_at - tick.enqueued_at) * 1000 for tick in Tick.objects.all()
    ]
    clear(job)
    p50, p99 = percentiles(latencies)
    return {"p50": p50, "p99": p99}


def job_recovery(job):
    from pgq_app.models import Tick

    long_starts = Tick.objects.filter(kind="long")
    clear(job)
    first = start_worker(job, job["worker_env"])
    second = None
    try:
        enqueue(job, "sleeper", enqueued_at=time.time(), seconds=LONG_TASK_SECONDS)
        if not wait_for(lambda: long_starts.count() >= 1, first, 60):
            raise TimeoutError("the worker did not start the long task")
        time.sleep(0.2)  # well inside the task: RUNNING, its row committed
        killed_at = time.time()
        kill_worker(first)
        second = start_worker(job, job["worker_env"])
        rerun = wait_for(lambda: long_starts.count() >= 2, second, job["cap"])
        seconds = None
        if rerun:
            seconds = long_starts.order_by("started_at")[1].started_at - killed_at
    finally:
        kill_worker(first)
        if second is not None:
            kill_worker(second)  # it may be inside the 600 s task again
    clear(job)
    return {"seconds": seconds}


IDLE_QUERY = """
SELECT xact_commit + xact_rollback, sessions, (
    SELECT count(*) FROM pg_stat_activity
    WHERE datname = %(name)s AND backend_type = 'client backend'
)
FROM pg_stat_database WHERE datname = %(name)s
"""


def job_idle(job):
    """What an idle, warm worker costs its database, from PostgreSQL's
    counters: transactions (commits + rollbacks, not statements) and new
    sessions per minute, and the connections it holds. Read from a
    connection to the ``postgres`` database, this process's own connection
    to the system's database closed first: the measurement counts in none
    of them."""
    from django.conf import settings
    from django.db import connection
    from pgq_app.models import Tick

    name = settings.DATABASES["default"]["NAME"]
    clear(job)
    worker = start_worker(job)
    try:
        for _ in range(5):
            enqueue(job, "noop", enqueued_at=time.time())
        if not wait_for(lambda: Tick.objects.count() >= 5, worker, 60):
            raise TimeoutError("the worker did not start")
        connection.close()
        sleep_watching(worker, IDLE_WARM_SECONDS)
        with admin_connection() as admin:
            began = time.monotonic()
            xacts, sessions, held = admin.execute(IDLE_QUERY, {"name": name}).fetchone()
            sleep_watching(worker, IDLE_SECONDS + STATS_FLUSH_SECONDS)
            ended = time.monotonic()
            row = admin.execute(IDLE_QUERY, {"name": name}).fetchone()
        if worker.poll() is not None:
            raise worker_failed(worker)
    finally:
        stop_worker(worker)
    clear(job)
    minutes = (ended - began) / 60
    return {
        "xacts": (row[0] - xacts) / minutes,
        "sessions": (row[1] - sessions) / minutes,
        "held": row[2],
        "held_before": held,
        "seconds": ended - began,
    }


def inside(job):
    sys.path.insert(0, str(Path.cwd()))
    import django

    django.setup()
    jobs = {
        "setup": job_setup,
        "drop": job_drop,
        "info": job_info,
        "drain": job_drain,
        "pickup": job_pickup,
        "recovery": job_recovery,
        "idle": job_idle,
    }
    result = jobs[job["job"]](job)
    print(json.dumps(result, default=str))


# -- the driving half: runs in /work/main's environment -----------------------


class System:
    """One queue: its interpreter, project, environment and worker command.

    ``system`` tells the measuring half which API queues a task (django.tasks
    for all but procrastinate) and which defaults ``info`` reports;
    ``queue_models`` are the tables ``clear`` empties."""

    def __init__(self, key, label, python, cwd, env, command, system, queue_models):
        self.key = key
        self.label = label
        self.python = python
        self.cwd = cwd
        self.env = env
        self.command = command
        self.system = system
        self.queue_models = queue_models

    def run(self, job, **fields):
        payload = {
            "job": job,
            "command": self.command,
            "queue_models": self.queue_models,
            "system": self.system,
            **fields,
        }
        done = subprocess.run(
            [str(self.python), __file__, "--inside", json.dumps(payload)],
            cwd=self.cwd,
            env=self.env,
            capture_output=True,
            text=True,
        )
        if done.returncode:
            raise RuntimeError(
                f"{self.label}: job {job} failed:\n{done.stdout}\n{done.stderr}"
            )
        return json.loads(done.stdout.strip().splitlines()[-1])


def write_app(folder):
    app = folder / "pgq_app"
    app.mkdir(parents=True)
    (app / "__init__.py").write_text("")
    (app / "models.py").write_text(APP_MODELS)
    (app / "tasks.py").write_text(APP_TASKS)
    (app / "proc_tasks.py").write_text(APP_PROC_TASKS)
    (folder / "pgq_settings_dtdb.py").write_text(DTDB_SETTINGS)
    (folder / "pgq_settings_ox.py").write_text(OX_SETTINGS)
    (folder / "pgq_settings_psql.py").write_text(PSQL_SETTINGS)
    (folder / "pgq_settings_proc.py").write_text(PROC_SETTINGS)


def bake(tmp):
    from cookiecutter.main import cookiecutter

    project = Path(cookiecutter(str(ROOT), no_input=True, output_dir=str(tmp)))
    subprocess.run([UV, "sync", "--locked", "--quiet"], cwd=project, check=True)
    return project


def build_env(tmp, name, requirement, base_python, django_version, psycopg_version):
    """A virtual environment with ``requirement`` and the baked project's
    Python, Django and psycopg, and an empty project folder with a manage.py."""
    venv = tmp / f"{name}-venv"
    env = {**os.environ, "UV_PYTHON_DOWNLOADS": "never"}
    subprocess.run(
        [UV, "venv", "--quiet", "--python", base_python, str(venv)],
        env=env,
        check=True,
    )
    subprocess.run(
        [
            UV,
            "pip",
            "install",
            "--quiet",
            "--python",
            str(venv / "bin" / "python"),
            requirement,
            f"django=={django_version}",
            f"psycopg[binary]=={psycopg_version}",
        ],
        env=env,
        check=True,
    )
    project = tmp / f"{name}-project"
    project.mkdir()
    (project / "manage.py").write_text(OX_MANAGE)
    return venv / "bin" / "python", project


def fmt_seconds(value, cap):
    return f"{value:.1f} s" if value is not None else f"never within {cap:.0f} s"


def recovery_median(values, cap):
    found = [v for v in values if v is not None]
    if not found:
        return f"not re-run within {cap:.0f} s ({len(values)}/{len(values)})"
    text = f"{statistics.median(found):.1f} s"
    if len(found) < len(values):
        text += f" ({len(values) - len(found)}/{len(values)} never within {cap:.0f} s)"
    return text


def settings_bounds(infos):
    """Each system's default recovery window, computed from its settings."""
    ours, ox = infos["a"]["ours"], infos["c"]["ox"]
    psql, proc = infos["d"]["psql"], infos["e"]["procrastinate"]
    lease = ours["TASK_LEASE_SECONDS"]
    ox_lease = ox["lock_timeout"]
    ox_worst = ox_lease + ox["reap_interval"] + ox["poll_interval"]
    return [
        (
            "(a) bin/worker",
            f"<= {lease + lease / 3:.0f} s after the last renewal (TASK_LEASE_SECONDS "
            f"{lease:g} + TASK_LEASE_SECONDS/3 {lease / 3:g}: leases renewed and "
            "swept every third; the re-queue NOTIFYs an idle worker)",
        ),
        ("(b) raw db_worker", "never (no lease, no recovery)"),
        (
            "(c) django-ox",
            f"~{2 * ox_lease / 3:.0f}-{ox_worst:.0f} s after the kill (lease "
            f"LOCK_TIMEOUT {ox_lease:g} s renewed every {ox['renew_interval']:g} s, "
            f"reaper every {ox['reap_interval']:g} s, + {ox['poll_interval']:g} s "
            "poll)",
        ),
        (
            "(d) django-task-psql",
            "never by a worker started at once: only a worker's start-up re-queues "
            f"tasks RUNNING for over TASK_WORKER_STALE_MINUTES "
            f"({psql['stale_minutes']} min), so a worker (re)started at least "
            f"{psql['stale_minutes']} min after the claim does",
        ),
        (
            "(e) procrastinate",
            "never (the job stays 'doing'; a worker's start-up only deletes worker "
            f"rows silent for stalled_worker_timeout {proc['stalled_worker_timeout']:g}"
            " s; re-running their jobs needs a periodic task of your own calling "
            "retry_stalled_jobs, none by default)",
        ),
    ]


def measure(systems, args, short_env):
    results = {
        s.key: {"drain": [], "p50": [], "p99": [], "recovery": []} for s in systems
    }
    for round_number in range(1, args.rounds + 1):
        line = []
        for system in systems:
            rate = system.run("drain", tasks=args.tasks)["rate"]
            results[system.key]["drain"].append(rate)
            line.append(f"{system.key} {rate:.0f}/s")
        print(f"round {round_number}: drain    " + "   ".join(line), flush=True)
        line = []
        for system in systems:
            pickup = system.run("pickup", pickups=args.pickups)
            results[system.key]["p50"].append(pickup["p50"])
            results[system.key]["p99"].append(pickup["p99"])
            line.append(f"{system.key} {pickup['p50']:.0f}/{pickup['p99']:.0f} ms")
        print(f"round {round_number}: pick-up  " + "   ".join(line), flush=True)
        line = []
        for system in systems:
            seconds = system.run(
                "recovery", worker_env=short_env[system.key], cap=args.recovery_cap
            )["seconds"]
            results[system.key]["recovery"].append(seconds)
            line.append(f"{system.key} {fmt_seconds(seconds, args.recovery_cap)}")
        print(f"round {round_number}: recovery " + "   ".join(line), flush=True)
    # Idle cost: once per run (each takes ~1.5 min), not per round.
    for system in systems:
        idle = system.run("idle")
        results[system.key]["idle"] = idle
        print(
            f"idle: {system.label:<26} {idle['xacts']:.1f} xacts/min, "
            f"{idle['sessions']:.1f} new sessions/min over {idle['seconds']:.0f} s; "
            f"connections held: {idle['held']} ({idle['held_before']} at the "
            "first read)",
            flush=True,
        )
    return results


def report(systems, results, args):
    drain_b = statistics.median(results["b"]["drain"])
    print(
        f"\nmedians of {args.rounds} rounds (idle: one minute per system, from "
        "pg_stat_database); ratios are to (b), same run"
    )
    print(
        f"{'':<26}{'drain/s':>8}{'x(b)':>7}{'pick-up p50':>12}{'p99 ms':>8}"
        f"{'idle xacts/min':>16}{'sessions/min':>14}{'held conns':>12}"
        "   recovery after kill -9 (shortened)"
    )
    for system in systems:
        row = results[system.key]
        drain = statistics.median(row["drain"])
        idle = row["idle"]
        print(
            f"{system.label:<26}{drain:>8.0f}{drain / drain_b:>6.2f}x"
            f"{statistics.median(row['p50']):>12.0f}"
            f"{statistics.median(row['p99']):>8.0f}"
            f"{idle['xacts']:>16.1f}{idle['sessions']:>14.1f}{idle['held']:>12}   "
            f"{recovery_median(row['recovery'], args.recovery_cap)}"
        )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=500, help="drain: tasks queued")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--pickups", type=int, default=50, help="pick-up: tasks")
    parser.add_argument(
        "--recovery-cap",
        type=float,
        default=60,
        help="seconds to wait for a killed task to run again (shortened windows)",
    )
    parser.add_argument(
        "--default-recovery",
        action="store_true",
        help="also measure recovery with each system's defaults (one trial, slow)",
    )
    parser.add_argument("--inside", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.inside:
        inside(json.loads(args.inside))
        return

    started = time.monotonic()
    tmp = Path(tempfile.mkdtemp(prefix="offload-pgq-"))
    dropper = None
    try:
        project = bake(tmp / "baked")
        baked_python = project / ".venv" / "bin" / "python"
        bench = tmp / "bench"
        write_app(bench)
        common = {
            **os.environ,
            "PYTHONPATH": str(bench),
            "LOG_LEVEL": "WARNING",
            "UV_PYTHON_DOWNLOADS": "never",
        }
        dtdb_env = {
            **common,
            "DEBUG": "false",
            "USE_HTTPS": "false",
            "SECRET_KEY": "benchmark-" + "k" * 60,
            "ALLOWED_HOSTS": "testserver,127.0.0.1",
            "DATABASE_URL": f"{PG_URL}/{DB_DTDB}",
            "MEDIA_ROOT": str(tmp / "media"),
            "DJANGO_SETTINGS_MODULE": "pgq_settings_dtdb",
        }
        worker_line = (project / "bin" / "worker").read_text().splitlines()[-1]
        worker_line = worker_line.removeprefix("exec ").removesuffix(' "$@"')
        dtdb_queue = ["django_tasks_database.DBTaskResult"]
        shipped = System(
            "a",
            "(a) bin/worker",
            baked_python,
            project,
            dtdb_env,
            ["bin/worker"],
            "dtdb",
            dtdb_queue,
        )
        dropper = shipped
        raw = System(
            "b",
            "(b) raw db_worker",
            baked_python,
            project,
            dtdb_env,
            ["python", "manage.py", "db_worker"],
            "dtdb",
            dtdb_queue,
        )
        info = shipped.run("info")
        base_python = subprocess.run(
            [str(baked_python), "-c", "import sys; print(sys._base_executable)"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        versions = (base_python, info["django"], info["psycopg"])

        def anchor(key, label, name, requirement, database, command, system, models):
            """A queue to compare with: its own virtual environment (``name``),
            minimal project (settings ``pgq_settings_<name>``) and database."""
            python, folder = build_env(tmp, name, requirement, *versions)
            env = {
                **common,
                "PGQ_DATABASE": json.dumps({**info["database"], "NAME": database}),
                "DJANGO_SETTINGS_MODULE": f"pgq_settings_{name}",
            }
            return System(key, label, python, folder, env, command, system, models)

        ox = anchor(
            "c",
            f"(c) django-ox {OX_VERSION}",
            "ox",
            f"django-ox=={OX_VERSION}",
            DB_OX,
            # -v 0: no per-task INFO lines, as LOG_LEVEL=WARNING for (a), (b).
            ["python", "manage.py", "ox_worker", "--verbosity", "0"],
            "ox",
            ["django_ox.OxTask"],
        )
        psql = anchor(
            "d",
            f"(d) django-task-psql {PSQL_VERSION}",
            "psql",
            f"django-task-psql=={PSQL_VERSION}",
            DB_PSQL,
            ["python", "manage.py", "runworker"],
            "psql",
            ["django_task_psql.TaskRow"],
        )
        proc = anchor(
            "e",
            f"(e) procrastinate {PROC_VERSION}",
            "proc",
            f"procrastinate[django]=={PROC_VERSION}",
            DB_PROC,
            ["python", "manage.py", "procrastinate", "worker"],
            "procrastinate",
            ["procrastinate.ProcrastinateJob", "procrastinate.ProcrastinateWorker"],
        )
        systems = [shipped, raw, ox, psql, proc]
        server = shipped.run("setup")["server_version"]
        for system in (ox, psql, proc):
            system.run("setup")
        infos = {"a": info, "b": info}
        for system in (ox, psql, proc):
            infos[system.key] = system.run("info")
        ours = info["ours"]
        ox_defaults = infos["c"]["ox"]
        psql_defaults = infos["d"]["psql"]
        proc_defaults = infos["e"]["procrastinate"]
        db = info["database"]
        print(
            f"PostgreSQL {server // 10000}.{server % 10000}, {os.cpu_count()} CPUs; "
            f"Python {info['python']}, "
            f"Django {info['django']}, psycopg {info['psycopg']}; one worker "
            "process at a time, no-op tasks"
        )
        print(
            f"CONN_MAX_AGE={db['CONN_MAX_AGE']}, "
            f"CONN_HEALTH_CHECKS={db['CONN_HEALTH_CHECKS']} (as the baked project "
            "ships it; the same DATABASES entry for all five)"
        )
        print(
            f"(a) bin/worker:        {worker_line} (NOTIFY wake-up, "
            f"{ours['SAFETY_NET_INTERVAL']:g} s safety-net poll)"
        )
        print("(b) raw db_worker:     python manage.py db_worker (1 s poll)")
        print(
            f"(c) django-ox:         python manage.py ox_worker --verbosity 0 "
            f"({ox_defaults['poll_interval']:g} s poll; -v 0 only drops its "
            "per-task INFO log lines, as LOG_LEVEL=WARNING does for a and b)"
        )
        print(
            "(d) django-task-psql:  python manage.py runworker (LISTEN/NOTIFY, "
            f"{psql_defaults['heartbeat_s']:g} s heartbeat poll, concurrency "
            f"{psql_defaults['concurrency']})"
        )
        print(
            "(e) procrastinate:     python manage.py procrastinate worker "
            f"(listen_notify={proc_defaults['listen_notify']}, "
            f"{proc_defaults['fetch_job_polling_interval']:g} s polling, "
            f"concurrency {proc_defaults['concurrency']}, psycopg pool min_size "
            f"{proc_defaults['pool_min_size']}; its own @app.task API)"
        )
        print(
            f"drain: {args.tasks} tasks   pick-up: {args.pickups} tasks, one per "
            f"100 ms   recovery (shortened): a {SHORT_OURS}, c LOCK_TIMEOUT="
            f"{SHORT_OX['PGQ_OX_LOCK_TIMEOUT']}, d {SHORT_PSQL}, b and e none, "
            f"cap {args.recovery_cap:g} s   idle: 5 tasks, {IDLE_WARM_SECONDS} s, "
            f"then reads {IDLE_SECONDS}+{STATS_FLUSH_SECONDS} s apart\n",
            flush=True,
        )
        short_env = {"a": SHORT_OURS, "b": {}, "c": SHORT_OX, "d": SHORT_PSQL, "e": {}}
        results = measure(systems, args, short_env)
        report(systems, results, args)

        print("\ndefault-settings recovery bound, from settings (not measured):")
        for label, text in settings_bounds(infos):
            print(f"  {label:<22} {text}")
        if args.default_recovery:
            print("\nrecovery after kill -9 with defaults, measured (one trial):")
            lease = ours["TASK_LEASE_SECONDS"]
            caps = {
                "a": lease + lease / 3 + 30,
                "b": args.recovery_cap,
                "c": ox_defaults["lock_timeout"]
                + ox_defaults["reap_interval"]
                + ox_defaults["poll_interval"]
                + 30,
                "d": args.recovery_cap,
                "e": args.recovery_cap,
            }
            for system in systems:
                cap = caps[system.key]
                seconds = system.run("recovery", worker_env={}, cap=cap)["seconds"]
                print(f"  {system.label:<22} {fmt_seconds(seconds, cap)}", flush=True)
    finally:
        if dropper is not None:
            try:
                dropper.run("drop", databases=[DB_DTDB, DB_OX, DB_PSQL, DB_PROC])
            except RuntimeError as error:
                print(f"dropping the databases failed: {error}", file=sys.stderr)
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"\ntotal run time {time.monotonic() - started:.0f} s")


if __name__ == "__main__":
    main()
