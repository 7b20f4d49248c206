"""django-tasks-db + our worker against django-ox, side by side on PostgreSQL.

    uv run python benchmarks/pg_queues.py [--tasks N] [--rounds R] [--pickups M]
                                          [--recovery-cap S] [--default-recovery]

Run from /work/main after `uv sync`; needs the local PostgreSQL
(OFFLOAD_PG_URL, default postgres://postgres@127.0.0.1:5432, trust auth) and
uv. It bakes the default project (django-tasks-db) and `uv sync --locked`s it,
builds a second virtual environment (Python 3.13, UV_PYTHON_DOWNLOADS=never)
with django-ox 1.9.1 and the baked project's Django and psycopg, and writes a
minimal Django project for it. Both use the same no-op task, the same
DATABASES entry (the baked project's, CONN_MAX_AGE included) and their own
database (offload_pgq_*, created and dropped here). One worker process at a
time, three workers:

  (a) the shipped bin/worker (manage.py worker, our time limit + recovery)
  (b) raw `manage.py db_worker` (django-tasks-db's command, library defaults)
  (c) `manage.py ox_worker` (django-ox, library defaults)

and per round, the three interleaved:

- drain: N no-op tasks queued, then the worker started; tasks/s from the
  first task's start to the last one's (process start-up not counted);
- pick-up: a warm, running worker; one task enqueued every 100 ms, M times;
  enqueue-to-start latency p50 / p99;
- recovery after kill -9: a task that sleeps 600 s is claimed (RUNNING), the
  worker is SIGKILLed, a fresh worker is started at once; seconds from the
  kill until the same task starts again, or "never within S s". Measured with
  shortened windows (ours: TASK_TIME_LIMIT=5, TASK_RECOVERY_MARGIN=1,
  TASK_RECOVERY_INTERVAL=1; django-ox: LOCK_TIMEOUT=6; db_worker has none),
  or, with --default-recovery, with each system's defaults (one trial each,
  minutes). Each default-settings bound is also printed as computed from
  the settings (not measured).

Prints medians over the rounds and ratios to (b) from the same run; it
asserts nothing. Temporary directories and databases are removed at the end.

The file is also the measuring half: run as `python pg_queues.py --inside
JOB` by each environment's own interpreter, it does one job and prints JSON.
"""

import argparse
import json
import os
import re
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
DB_DTDB = "offload_pgq_dtdb"
DB_OX = "offload_pgq_ox"
SHORT_OURS = {
    "TASK_TIME_LIMIT": "5",
    "TASK_RECOVERY_MARGIN": "1",
    "TASK_RECOVERY_INTERVAL": "1",
}
SHORT_OX = {"PGQ_OX_LOCK_TIMEOUT": "6"}
LONG_TASK_SECONDS = 600

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

DTDB_SETTINGS = '''\
"""The baked project's settings, plus the benchmark's app."""

from config.settings import *  # noqa: F403

INSTALLED_APPS += ["pgq_app"]  # noqa: F405
'''

OX_SETTINGS = '''\
"""A minimal project for django-ox: its defaults, the baked project's DATABASES."""

import json
import os

SECRET_KEY = "benchmark-" + "k" * 60
DEBUG = False
USE_TZ = True
TIME_ZONE = "UTC"
INSTALLED_APPS = ["django.contrib.contenttypes", "django_ox", "pgq_app"]
DATABASES = {"default": json.loads(os.environ["PGQ_DATABASE"])}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
OPTIONS = {}
if os.environ.get("PGQ_OX_LOCK_TIMEOUT"):
    OPTIONS["LOCK_TIMEOUT"] = float(os.environ["PGQ_OX_LOCK_TIMEOUT"])
TASKS = {"default": {"BACKEND": "django_ox.backend.OxBackend", "OPTIONS": OPTIONS}}
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"stdout": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["stdout"], "level": os.environ.get("LOG_LEVEL", "INFO")},
}
'''

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
    from django.apps import apps
    from django.db import connection

    tables = [apps.get_model(job["queue_model"])._meta.db_table, "pgq_app_tick"]
    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE " + ", ".join(tables) + " CASCADE")


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
    else:
        info["ours"] = {
            name: getattr(settings, name)
            for name in (
                "TASK_TIME_LIMIT",
                "TASK_RECOVERY_MARGIN",
                "TASK_RECOVERY_INTERVAL",
                "TASK_MAX_CLAIMS",
            )
        }
    return info


def job_drain(job):
    from pgq_app import tasks
    from pgq_app.models import Tick

    clear(job)
    for _ in range(job["tasks"]):
        tasks.noop.enqueue(time.time())
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
    from pgq_app import tasks
    from pgq_app.models import Tick

    clear(job)
    worker = start_worker(job)
    try:
        # Warm: the first tasks also open the worker's connections.
        for _ in range(5):
            tasks.noop.enqueue(time.time())
        if not wait_for(lambda: Tick.objects.count() >= 5, worker, 60):
            raise TimeoutError("the worker did not start")
        Tick.objects.all().delete()
        time.sleep(1.5)
        begin = time.monotonic()
        for i in range(job["pickups"]):
            time.sleep(max(0.0, begin + 0.1 * i - time.monotonic()))
            tasks.noop.enqueue(time.time())
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
    from pgq_app import tasks
    from pgq_app.models import Tick

    long_starts = Tick.objects.filter(kind="long")
    clear(job)
    first = start_worker(job, job["worker_env"])
    second = None
    try:
        tasks.sleeper.enqueue(time.time(), LONG_TASK_SECONDS)
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
    }
    result = jobs[job["job"]](job)
    print(json.dumps(result, default=str))


# -- the driving half: runs in /work/main's environment -----------------------


class System:
    def __init__(self, key, label, python, cwd, env, command, queue_model):
        self.key = key
        self.label = label
        self.python = python
        self.cwd = cwd
        self.env = env
        self.command = command
        self.queue_model = queue_model

    def run(self, job, **fields):
        payload = {
            "job": job,
            "command": self.command,
            "queue_model": self.queue_model,
            "system": "ox" if self.key == "c" else "dtdb",
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
    (folder / "pgq_settings_dtdb.py").write_text(DTDB_SETTINGS)
    (folder / "pgq_settings_ox.py").write_text(OX_SETTINGS)


def bake(tmp):
    from cookiecutter.main import cookiecutter

    project = Path(cookiecutter(str(ROOT), no_input=True, output_dir=str(tmp)))
    subprocess.run([UV, "sync", "--locked", "--quiet"], cwd=project, check=True)
    return project


def build_ox_env(tmp, base_python, django_version, psycopg_version):
    venv = tmp / "ox-venv"
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
            f"django-ox=={OX_VERSION}",
            f"django=={django_version}",
            f"psycopg[binary]=={psycopg_version}",
        ],
        env=env,
        check=True,
    )
    project = tmp / "ox-project"
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


def settings_bounds(ours, ox, poll):
    """Each system's default recovery window, computed from its settings."""
    window = ours["TASK_TIME_LIMIT"] + ours["TASK_RECOVERY_MARGIN"]
    worst = window + ours["TASK_RECOVERY_INTERVAL"] + poll
    lease = ox["lock_timeout"]
    ox_worst = lease + ox["reap_interval"] + ox["poll_interval"]
    return [
        (
            "(a) bin/worker",
            f"~{window:.0f}-{worst:.0f} s after the claim (TASK_TIME_LIMIT "
            f"{ours['TASK_TIME_LIMIT']} + TASK_RECOVERY_MARGIN "
            f"{ours['TASK_RECOVERY_MARGIN']}, checked every "
            f"{ours['TASK_RECOVERY_INTERVAL']:g} s, + {poll:g} s poll)",
        ),
        ("(b) raw db_worker", "never (no lease, no recovery)"),
        (
            "(c) django-ox",
            f"~{2 * lease / 3:.0f}-{ox_worst:.0f} s after the kill (lease "
            f"LOCK_TIMEOUT {lease:g} s renewed every {ox['renew_interval']:g} s, "
            f"reaper every {ox['reap_interval']:g} s, + {ox['poll_interval']:g} s "
            "poll)",
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
    return results


def report(systems, results, args):
    base = results["b"]
    drain_b = statistics.median(base["drain"])
    p50_b = statistics.median(base["p50"])
    p99_b = statistics.median(base["p99"])
    print(f"\nmedians of {args.rounds} rounds; ratios are to (b), same run")
    print(
        f"{'':<24}{'drain/s':>9}{'x(b)':>7}{'pick-up p50':>13}{'p99 ms':>9}"
        f"{'p50 x(b)':>10}{'p99 x(b)':>10}   recovery after kill -9 (shortened)"
    )
    for system in systems:
        row = results[system.key]
        drain = statistics.median(row["drain"])
        p50 = statistics.median(row["p50"])
        p99 = statistics.median(row["p99"])
        print(
            f"{system.label:<24}{drain:>9.0f}{drain / drain_b:>6.2f}x"
            f"{p50:>13.0f}{p99:>9.0f}{p50 / p50_b:>9.2f}x{p99 / p99_b:>9.2f}x   "
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
        poll = float(re.search(r"--interval (\S+)", worker_line).group(1))
        shipped = System(
            "a",
            "(a) bin/worker",
            baked_python,
            project,
            dtdb_env,
            ["bin/worker"],
            "django_tasks_database.DBTaskResult",
        )
        dropper = shipped
        raw = System(
            "b",
            "(b) raw db_worker",
            baked_python,
            project,
            dtdb_env,
            ["python", "manage.py", "db_worker"],
            "django_tasks_database.DBTaskResult",
        )
        info = shipped.run("info")
        base_python = subprocess.run(
            [str(baked_python), "-c", "import sys; print(sys._base_executable)"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        ox_python, ox_project = build_ox_env(
            tmp, base_python, info["django"], info["psycopg"]
        )
        database = {**info["database"], "NAME": DB_OX}
        ox_env = {
            **common,
            "PGQ_DATABASE": json.dumps(database),
            "DJANGO_SETTINGS_MODULE": "pgq_settings_ox",
        }
        ox = System(
            "c",
            f"(c) django-ox {OX_VERSION}",
            ox_python,
            ox_project,
            ox_env,
            # -v 0: no per-task INFO lines, as LOG_LEVEL=WARNING for (a), (b).
            ["python", "manage.py", "ox_worker", "--verbosity", "0"],
            "django_ox.OxTask",
        )
        systems = [shipped, raw, ox]
        server = shipped.run("setup")["server_version"]
        ox.run("setup")
        ox_info = ox.run("info")
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
            "ships it; the same DATABASES entry for all three)"
        )
        print(f"(a) bin/worker:      {worker_line}")
        print("(b) raw db_worker:   python manage.py db_worker (1 s poll)")
        print(
            f"(c) django-ox:       python manage.py ox_worker --verbosity 0 "
            f"({ox_info['ox']['poll_interval']:g} s poll; -v 0 only drops its "
            "per-task INFO log lines, as LOG_LEVEL=WARNING does for a and b)"
        )
        print(
            f"drain: {args.tasks} tasks   pick-up: {args.pickups} tasks, one per "
            f"100 ms   recovery (shortened): a {SHORT_OURS}, c LOCK_TIMEOUT="
            f"{SHORT_OX['PGQ_OX_LOCK_TIMEOUT']}, b none, cap {args.recovery_cap:g} s\n",
            flush=True,
        )
        short_env = {"a": SHORT_OURS, "b": {}, "c": SHORT_OX}
        results = measure(systems, args, short_env)
        report(systems, results, args)

        print("\ndefault-settings recovery bound, from settings (not measured):")
        for label, text in settings_bounds(info["ours"], ox_info["ox"], poll):
            print(f"  {label:<20} {text}")
        if args.default_recovery:
            print("\nrecovery after kill -9 with defaults, measured (one trial):")
            caps = {
                "a": sum(info["ours"][n] for n in SHORT_OURS) + poll + 30,
                "b": args.recovery_cap,
                "c": ox_info["ox"]["lock_timeout"]
                + ox_info["ox"]["reap_interval"]
                + ox_info["ox"]["poll_interval"]
                + 30,
            }
            for system in systems:
                cap = caps[system.key]
                seconds = system.run("recovery", worker_env={}, cap=cap)["seconds"]
                print(f"  {system.label:<20} {fmt_seconds(seconds, cap)}", flush=True)
    finally:
        if dropper is not None:
            try:
                dropper.run("drop", databases=[DB_DTDB, DB_OX])
            except RuntimeError as error:
                print(f"dropping the databases failed: {error}", file=sys.stderr)
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"\ntotal run time {time.monotonic() - started:.0f} s")


if __name__ == "__main__":
    main()
