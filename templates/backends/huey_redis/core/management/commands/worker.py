"""``manage.py worker``: huey's consumer, djhuey's ``run_huey`` with the
same options, whose processes die with it.

The consumer forks its worker processes and a scheduler process. Killed
alone (supervisord restarting it, the kernel's OOM killer), it would leave
them running, unsupervised: the workers still taking tasks, with the code
they started with, and the scheduler still queueing. Here each process the
consumer forks gets SIGKILL from the kernel when the consumer dies
(core/forks.py).

Each worker process gives signs of life for a liveness probe, which fails
when a task outlives its time limit: the worker is stuck, not busy
(core/heartbeat.py).
"""

from huey.contrib.djhuey import HUEY
from huey.contrib.djhuey.management.commands.run_huey import Command as RunHuey

from core import forks
from core.heartbeat import heartbeat


class Command(RunHuey):
    help = "Run huey's consumer (run_huey's options); its processes die with it."

    def handle(self, *args, **options):
        forks.children_die_with_this_process()
        # Registered before the consumer forks its workers, which run them.
        HUEY.on_startup("heartbeat")(heartbeat.start)
        HUEY.pre_execute("heartbeat")(lambda task: heartbeat.started(task.id))
        HUEY.post_execute("heartbeat")(
            lambda task, value, exc: heartbeat.finished(task.id)
        )
        super().handle(*args, **options)
