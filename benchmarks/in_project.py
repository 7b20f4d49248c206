"""The measuring half of the benchmark; runs inside one baked project.

1. Upload latency, in-process through Django's whole middleware stack on
   PostgreSQL: POST /photos/ (save + enqueue), the same request without the
   enqueue (save only), and with the thumbnail made inline. The three are
   interleaved so that drift affects them alike.
2. Drain rate of one worker (its processes, if it has several): N no-op
   tasks queued, then the worker started: bin/worker as shipped, and each
   raw command of the backend's driver (bench_app/tasks.py). Each no-op
   task writes a row with its start time; the rate is taken over the middle
   80 % of those starts, so the start-up of the worker and of each of its
   processes is not counted.
3. Pick-up latency of an idle, warm worker (bin/worker, and the library's
   CLI default): enqueue to start, one task at a time.
"""

import argparse
import io
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path.cwd()))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench_settings")

import django
import psycopg

django.setup()

from bench_app import tasks as driver  # noqa: E402
from bench_app.models import Tick  # noqa: E402
from django.conf import settings  # noqa: E402
from django.contrib.auth import get_user_model  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402
from django.test import Client, override_settings  # noqa: E402
from PIL import Image  # noqa: E402


def recreate_database():
    db = settings.DATABASES["default"]
    with psycopg.connect(
        host=db["HOST"],
        port=db["PORT"] or 5432,
        user=db["USER"],
        password=db["PASSWORD"],
        dbname="postgres",
        autocommit=True,
    ) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{db["NAME"]}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{db["NAME"]}"')
    call_command("migrate", verbosity=0)
    call_command("collectstatic", "--no-input", verbosity=0)
    with connection.schema_editor() as editor:
        editor.create_model(Tick)


def photo_bytes():
    """A 6-megapixel JPEG with noise in it, so it compresses like a photo."""
    noise = Image.effect_noise((3000, 2000), 40).convert("RGB")
    gradient = Image.linear_gradient("L").resize((3000, 2000)).convert("RGB")
    buffer = io.BytesIO()
    Image.blend(noise, gradient, 0.5).save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


def percentiles(samples):
    ordered = sorted(samples)
    p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
    return statistics.median(ordered), p99


def upload_latency(requests, inline):
    user = get_user_model().objects.create_user("bench")
    client = Client()
    client.force_login(user)
    data = photo_bytes()
    print(f"upload: {len(data) / 1e6:.2f} MB JPEG, 3000x2000, {requests} requests each")
    timings = {"/bench/save-only/": [], "/photos/": []}
    if inline:
        timings["/bench/inline/"] = []
    with override_settings(ROOT_URLCONF="bench_views"):
        for i in range(requests + 5):
            for name, samples in timings.items():
                upload = io.BytesIO(data)
                upload.name = "photo.jpg"
                start = time.perf_counter()
                response = client.post(name, {"image": upload})
                elapsed = time.perf_counter() - start
                assert response.status_code in (201, 202), response.content
                if i >= 5:  # warm-up
                    samples.append(elapsed * 1000)
    floor = percentiles(timings["/bench/save-only/"])
    for name, samples in timings.items():
        p50, p99 = percentiles(samples)
        print(
            f"  POST {name:<18} p50 {p50:7.1f} ms   p99 {p99:7.1f} ms   "
            f"p99 / save-only p99 = {p99 / floor[1]:.2f}x"
        )


def start_worker(command):
    # As under compose/supervisord/systemd: the venv's python first on PATH.
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"
    log = tempfile.NamedTemporaryFile("w+", prefix="worker-", suffix=".log")  # noqa: SIM115
    worker = subprocess.Popen(
        command,
        env={**os.environ, "PATH": path, "LOG_LEVEL": "WARNING"},
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    worker.log = log
    return worker


def stop_worker(worker):
    worker.send_signal(signal.SIGTERM)
    try:
        worker.wait(timeout=30)
    except subprocess.TimeoutExpired:
        worker.kill()
        worker.wait()


def wait_for(condition, worker, timeout):
    deadline = time.monotonic() + timeout
    while not condition():
        if worker.poll() is not None:
            worker.log.seek(0)
            raise RuntimeError(
                f"the worker exited with {worker.returncode}:\n{worker.log.read()}"
            )
        if time.monotonic() > deadline:
            raise TimeoutError("the worker did not finish in time")
        time.sleep(0.05)


def drain_rate(command, tasks):
    """Tasks per second of one worker process started on a full queue."""
    driver.clear()
    Tick.objects.all().delete()
    for _ in range(tasks):
        driver.enqueue()
    worker = start_worker(command)
    try:
        wait_for(lambda: Tick.objects.count() >= tasks, worker, timeout=600)
    finally:
        stop_worker(worker)
    # The middle 80 % of the starts: a worker of several processes starts
    # them one after the other, and the first takes tasks meanwhile.
    starts = sorted(Tick.objects.values_list("started_at", flat=True))
    first, last = len(starts) // 10, len(starts) * 9 // 10
    return (last - first) / (starts[last] - starts[first])


def enqueue_rate(tasks):
    driver.clear()
    start = time.perf_counter()
    for _ in range(tasks):
        driver.enqueue()
    rate = tasks / (time.perf_counter() - start)
    driver.clear()
    return rate


def pickup_latency(command, samples=30):
    """Enqueue to start, in ms, of an idle worker: p50 and p99."""
    driver.clear()
    Tick.objects.all().delete()
    worker = start_worker(command)
    latencies = []
    try:
        # Warm: a worker process's first task also opens its database
        # connection. Then idle, as a worker between bursts is.
        for _ in range(10):
            driver.enqueue()
        wait_for(lambda: Tick.objects.count() >= 10, worker, 60)
        Tick.objects.all().delete()
        time.sleep(2)
        for count in range(1, samples + 1):
            # Enqueue at a random point of an idle worker's poll interval.
            time.sleep(random.uniform(0, 0.5))  # noqa: S311
            driver.enqueue()
            wait_for(lambda n=count: Tick.objects.count() >= n, worker, 30)
    finally:
        stop_worker(worker)
    for tick in Tick.objects.all():
        latencies.append((tick.started_at - tick.enqueued_at) * 1000)
    return percentiles(latencies)


def workers(tasks):
    """Drain rate of bin/worker against the library's raw commands, one run."""
    shipped = drain_rate(["bin/worker"], tasks)
    print(f"drain:   {tasks} no-op tasks, 1 worker (middle 80 % of starts), tasks/s")
    print(f"  {'bin/worker (shipped)':<24} {shipped:7.0f}")
    raw = {}
    for name, command in driver.RAW.items():
        raw[name] = drain_rate(command, tasks)
        print(f"  {'raw ' + name:<24} {raw[name]:7.0f}")
    best = max(raw, key=raw.get)
    print(
        f"  shipped / raw CLI default = {shipped / raw['CLI default']:.2f}x   "
        f"shipped / best raw ({best}) = {shipped / raw[best]:.2f}x"
    )
    for name, command in (
        ("bin/worker (shipped)", ["bin/worker"]),
        ("raw CLI default", driver.RAW["CLI default"]),
    ):
        p50, p99 = pickup_latency(command)
        print(
            f"pick-up: idle {name}, warm, enqueue to start, 30 tasks: "
            f"p50 {p50:.1f} ms   p99 {p99:.1f} ms"
        )


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--tasks", type=int, default=3000)
    parser.add_argument(
        "--inline", action="store_true", help="also time the thumbnail made inline"
    )
    args = parser.parse_args()
    recreate_database()
    print(
        f"database: PostgreSQL {connection.cursor().connection.info.server_version}, "
        f"{os.cpu_count()} CPUs"
    )
    upload_latency(args.requests, args.inline)
    print(f"enqueue: {enqueue_rate(args.tasks):.0f} tasks/s (no-op task)")
    workers(args.tasks)


if __name__ == "__main__":
    main()
