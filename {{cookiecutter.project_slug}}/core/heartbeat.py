"""Signs of life from the worker processes, for a liveness probe that tells
a stuck worker from a busy one (``bin/worker-alive``, deploy/kubernetes).

Each process that runs tasks keeps a file in DIRECTORY, named after its
pid, that says how many tasks it runs. A thread of its own writes it every
BEAT seconds, as long as none of
the process's tasks has run longer than TASK_TIME_LIMIT + GRACE seconds:
by then the library's time limit should have ended the task, so one still
running is stuck (a C call that never returns, a deadlock). A process that
stops altogether (frozen, stopped, the GIL never let go) stops writing its
file too. A long task inside its limit keeps the file fresh: busy is not
stuck.

The probe (``python -m core.heartbeat``) fails when a live process's file
is older than STALE seconds, or when no process has started beating; it
imports no Django app, so it costs about as little as Python's start.
"""

import contextlib
import logging
import os
import stat
import sys
import tempfile
import threading
import time
from pathlib import Path

logger = logging.getLogger(__name__)

# Where the files are: one folder per container (Kubernetes mounts /tmp per
# pod) or per systemd unit (PrivateTmp); the project's name keeps it apart
# from another project's on a development machine.
DIRECTORY = Path(
    os.environ.get("WORKER_HEARTBEAT_DIR")
    or Path(tempfile.gettempdir()) / "{{ cookiecutter.project_slug }}-heartbeats"
)
BEAT = float(os.environ.get("WORKER_HEARTBEAT_SECONDS") or 5)
STALE = 4 * BEAT  # three beats missed: not a slow moment
GRACE = 30  # s past TASK_TIME_LIMIT for the library to end the task


class Heartbeat:
    """This process's beat: ``start()`` it once the process runs tasks, and
    wrap each task in ``running(key)``."""

    def __init__(self):
        self.pid = None
        self.tasks = {}  # key -> when it started (monotonic)
        self.lock = threading.Lock()

    def start(self):
        """Beat from now on, in this process (again after a fork: a forked
        child has no copy of the thread)."""
        if self.pid == os.getpid():
            return
        self.pid = os.getpid()
        self.tasks = {}
        self.path = DIRECTORY / str(self.pid)
        # The process's start time: a later process with the same pid is
        # not taken for this one.
        self.started_at = process_start(self.pid)
        DIRECTORY.mkdir(mode=0o700, parents=True, exist_ok=True)
        if not private(DIRECTORY):
            # Another user made it first (a shared /tmp): writing there could
            # be led by their symlinks. No beat: the probe says why.
            logger.error("%s is not this user's own folder: no heartbeat", DIRECTORY)
            return
        self.write()
        threading.Thread(target=self.beat, name="heartbeat", daemon=True).start()

    def write(self):
        """The file: the process's start time and how many tasks it runs."""
        with self.lock:
            running = len(self.tasks)
        # Written aside, then renamed: the probe never reads half a file.
        draft = self.path.with_name(f".{self.pid}")
        draft.write_text(f"{self.started_at} {running}\n")
        draft.replace(self.path)

    @contextlib.contextmanager
    def running(self, key):
        self.started(key)
        try:
            yield
        finally:
            self.finished(key)

    def started(self, key):
        with self.lock:
            self.tasks[key] = time.monotonic()

    def finished(self, key):
        with self.lock:
            self.tasks.pop(key, None)

    def stuck(self):
        """Whether a task has outlived the time limit meant to end it."""
        from django.conf import settings  # the probe never needs it

        limit = settings.TASK_TIME_LIMIT + GRACE
        with self.lock:
            oldest = min(self.tasks.values(), default=None)
        return oldest is not None and time.monotonic() - oldest > limit

    def beat(self):
        pid = os.getpid()
        while self.pid == pid:
            time.sleep(BEAT)  # start() wrote the first
            if not self.stuck():
                with contextlib.suppress(OSError):  # the folder was cleared
                    self.write()


heartbeat = Heartbeat()


def private(folder):
    """Whether ``folder`` is a real folder of this user's that no one else
    may write in."""
    info = folder.lstat()
    return (
        stat.S_ISDIR(info.st_mode)
        and info.st_uid == os.getuid()
        and not info.st_mode & (stat.S_IWGRP | stat.S_IWOTH)
    )


def process_start(pid):
    """The process's start time, in clock ticks since boot (proc(5))."""
    try:
        line = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return ""
    return line.rpartition(")")[2].split()[19]  # field 22, after the name


def check(now=None):
    """The probe: 0 when every live worker process beat within STALE
    seconds (and one at least has started), else 1, saying why."""
    now = time.time() if now is None else now
    if DIRECTORY.exists() and not private(DIRECTORY):
        print(f"{DIRECTORY} is not this user's own folder.", file=sys.stderr)
        return 1
    live = 0
    for path in DIRECTORY.glob("[0-9]*"):
        with contextlib.suppress(OSError):
            recorded = path.read_text().split()
            if not recorded or process_start(path.name) != recorded[0]:
                path.unlink()  # its process is gone
                continue
            age = now - path.stat().st_mtime
            if age > STALE:
                print(
                    f"Worker process {path.name}: no sign of life for {age:.0f} s "
                    f"(stuck past its time limit, or frozen).",
                    file=sys.stderr,
                )
                return 1
            live += 1
    if not live:
        print(f"No worker process beats in {DIRECTORY}.", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(check())
