"""The measuring half of the benchmark; runs inside the baked project.

1. Upload latency, in-process through Django's whole middleware stack on
   PostgreSQL: POST /photos/ (save + enqueue), the same request without the
   enqueue (save only), and with the thumbnail made inline. The three are
   interleaved so that drift affects them alike.
2. Worker drain rate: N no-op tasks queued, then one real worker process
   (bin/worker) started; the rate is taken from the rows' own timestamps,
   first start to last finish, so process start-up is not counted.
3. Pick-up latency of an idle worker: enqueue to finish, one task at a time.
"""

import argparse
import io
import os
import random
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path.cwd()))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

import django
import psycopg

django.setup()

import bench_views  # noqa: E402
from django.conf import settings  # noqa: E402
from django.contrib.auth import get_user_model  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402
from django.db.models import Max, Min  # noqa: E402
from django.test import Client, override_settings  # noqa: E402
from django_tasks_db.models import DBTaskResult  # noqa: E402
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


def upload_latency(requests):
    user = get_user_model().objects.create_user("bench")
    client = Client()
    client.force_login(user)
    data = photo_bytes()
    print(f"upload: {len(data) / 1e6:.2f} MB JPEG, 3000x2000, {requests} requests each")
    timings = {
        "/bench/save-only/": [],
        "/photos/": [],
        "/bench/inline/": [],
    }
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


def start_worker():
    # As under compose/supervisord/systemd: the venv's python first on PATH.
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"
    return subprocess.Popen(
        ["bin/worker", "--no-startup-delay"],
        env={**os.environ, "PATH": path, "LOG_LEVEL": "WARNING"},
        stdout=subprocess.DEVNULL,
    )


def stop_worker(worker):
    worker.send_signal(signal.SIGTERM)
    worker.wait(timeout=30)


def wait_for(condition, worker, timeout):
    deadline = time.monotonic() + timeout
    while not condition():
        if worker.poll() is not None:
            raise RuntimeError(f"the worker exited with {worker.returncode}")
        if time.monotonic() > deadline:
            raise TimeoutError("the worker did not finish in time")
        time.sleep(0.05)


def drain_rate(tasks):
    DBTaskResult.objects.all().delete()
    start = time.perf_counter()
    for _ in range(tasks):
        bench_views.noop.enqueue()
    enqueued = time.perf_counter() - start
    print(
        f"enqueue: {tasks} tasks in {enqueued:.2f} s = {tasks / enqueued:.0f} tasks/s"
    )

    worker = start_worker()
    try:
        done = DBTaskResult.objects.filter(status="SUCCESSFUL")
        wait_for(lambda: done.count() == tasks, worker, timeout=600)
    finally:
        stop_worker(worker)
    span = done.aggregate(first=Min("started_at"), last=Max("finished_at"))
    seconds = (span["last"] - span["first"]).total_seconds()
    print(
        f"drain:   {tasks} no-op tasks, 1 worker process, PostgreSQL: "
        f"{seconds:.2f} s = {tasks / seconds:.0f} tasks/s"
    )


def pickup_latency(samples=30):
    worker = start_worker()
    latencies = []
    try:
        time.sleep(1)
        for _ in range(samples):
            # Enqueue at a random point of the worker's idle poll interval.
            time.sleep(random.uniform(0, 0.5))  # noqa: S311
            result = bench_views.noop.enqueue()
            row = DBTaskResult.objects.filter(pk=result.id, status="SUCCESSFUL")
            wait_for(row.exists, worker, timeout=30)
            latency = row.get().finished_at - row.get().enqueued_at
            latencies.append(latency.total_seconds() * 1000)
    finally:
        stop_worker(worker)
    p50, p99 = percentiles(latencies)
    print(
        f"pick-up: idle worker, enqueue to done, {samples} tasks: "
        f"p50 {p50:.0f} ms   p99 {p99:.0f} ms"
    )


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--tasks", type=int, default=3000)
    args = parser.parse_args()
    recreate_database()
    print(
        f"database: PostgreSQL {connection.cursor().connection.info.server_version}, "
        f"{os.cpu_count()} CPUs"
    )
    upload_latency(args.requests)
    drain_rate(args.tasks)
    pickup_latency()


if __name__ == "__main__":
    main()
