"""The worker's liveness probe (core/heartbeat.py, bin/worker-alive): alive
while its processes beat, busy included; not alive when one is frozen, when
a task outlives its time limit, or when none has started."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from core import heartbeat as module
from core.heartbeat import Heartbeat, check
from notifications import services, tasks
from tests.test_worker import PROJECT, start_ready, wait_for


@pytest.fixture
def directory(tmp_path, monkeypatch):
    folder = tmp_path / "heartbeats"
    monkeypatch.setattr(module, "DIRECTORY", folder)
    return folder


def test_a_process_that_beats_is_alive(directory):
    Heartbeat().start()

    assert check() == 0


def test_no_process_that_beats_is_not_alive(directory, capsys):
    assert check() == 1
    assert "No worker process beats" in capsys.readouterr().err


def test_a_process_silent_for_longer_than_stale_is_not_alive(directory, capsys):
    Heartbeat().start()

    assert check(now=time.time() + module.STALE + 1) == 1
    assert "no sign of life" in capsys.readouterr().err


def test_the_file_of_a_process_that_is_gone_is_removed(directory):
    gone = subprocess.Popen([sys.executable, "-c", ""])
    gone.wait()
    directory.mkdir()
    (directory / str(gone.pid)).write_text("12345 0\n")
    Heartbeat().start()

    assert check() == 0
    assert [path.name for path in directory.glob("[0-9]*")] == [str(os.getpid())]


def test_a_folder_others_may_write_in_is_not_used(directory, capsys):
    """A shared /tmp: a folder another user made could hold their symlinks
    or their files; no process beats there, and the probe fails."""
    directory.mkdir()
    directory.chmod(0o777)
    Heartbeat().start()

    assert list(directory.iterdir()) == []
    assert check() == 1
    assert "not this user's own folder" in capsys.readouterr().err


def test_a_task_past_its_time_limit_is_stuck_and_a_long_one_is_not(
    settings, monkeypatch
):
    settings.TASK_TIME_LIMIT = 1
    monkeypatch.setattr(module, "GRACE", 0)
    beat = Heartbeat()
    beat.started("long")
    assert not beat.stuck()

    time.sleep(1.2)
    assert beat.stuck()

    beat.finished("long")
    assert not beat.stuck()


def probe(env):
    """bin/worker-alive's exit status, as the kubelet would run it."""
    path = f"{os.path.dirname(sys.executable)}{os.pathsep}{os.environ['PATH']}"
    return subprocess.run(
        [PROJECT / "bin" / "worker-alive"],
        env={**os.environ, **env, "PATH": path},
        capture_output=True,
        timeout=30,
    ).returncode


def running(env):
    """How many tasks the worker's processes say they run."""
    files = Path(env["WORKER_HEARTBEAT_DIR"]).glob("[0-9]*")
    return sum(int(path.read_text().split()[1]) for path in files)


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_a_real_worker_is_alive_when_idle_or_busy_and_not_when_frozen(
    owner, smtp_server, media_root, worker_env, workers, tmp_path
):
    beat = {
        "WORKER_HEARTBEAT_DIR": str(tmp_path / "heartbeats"),
        "WORKER_HEARTBEAT_SECONDS": "0.5",  # stale after 2 s
    }
    worker = start_ready(
        workers,
        tmp_path / "worker.log",
        **worker_env,
        **beat,
        MEDIA_ROOT=str(media_root),
        EMAIL_HOST="127.0.0.1",
        EMAIL_PORT=str(smtp_server.port),
        EMAIL_USE_TLS="false",
    )
    wait_for(lambda: probe(beat) == 0, 30, worker.log)

    smtp_server.delay = 6  # a task three times as long as "stale", busy
    notification = services.create_notification(
        owner=owner, subject="s", message="m", recipients=["pi@example.org"]
    )
    tasks.enqueue_delivery(notification.pk)
    wait_for(lambda: smtp_server.receiving, 30, worker.log)
    # The library's hooks count the task as running (core/heartbeat.py).
    wait_for(lambda: running(beat) == 1, 30, worker.log)
    started = time.monotonic()
    while time.monotonic() - started < 4:
        assert probe(beat) == 0, worker.log.read_text()
        time.sleep(0.5)
    wait_for(lambda: running(beat) == 0, 30, worker.log)

    os.killpg(worker.pid, signal.SIGSTOP)  # frozen, with its processes
    try:
        wait_for(lambda: probe(beat) == 1, 30, worker.log)
    finally:
        os.killpg(worker.pid, signal.SIGCONT)
    wait_for(lambda: probe(beat) == 0, 30, worker.log)
