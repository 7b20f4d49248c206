"""What a worker forks dies with it.

A process manager that kills a worker alone leaves the processes it forked
running, unsupervised: supervisord when the worker dies unexpectedly, and
the kernel's OOM killer anywhere. They go on with the code of the release
they started with and hold copies of the worker's connections (on RQ, a
copy of the connection waiting for a job took the next job, which then sat
unworked). systemd kills a unit's every process, and Docker a container's;
Linux can do it for every manager: a child asks to get SIGKILL when its
parent dies (PR_SET_PDEATHSIG).
"""

import ctypes
import logging
import os
import signal

logger = logging.getLogger(__name__)
PR_SET_PDEATHSIG = 1  # linux/prctl.h


def children_die_with_this_process():
    """Make each process this one forks from now on die with it (those they
    fork in turn are theirs to look after). For a worker's main process."""
    me = os.getpid()
    forking = {}

    def note_who_forks():
        forking["pid"] = os.getpid()

    def in_the_child():
        if forking.get("pid") == me:
            die_with(me)

    os.register_at_fork(before=note_who_forks, after_in_child=in_the_child)


def die_with(parent_pid):
    """Called in a child of ``parent_pid``: SIGKILL when the parent dies,
    and exit now if it already has (before the request could be made)."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL) != 0:
        logger.warning("prctl(PR_SET_PDEATHSIG) failed: errno %d", ctypes.get_errno())
    if os.getppid() != parent_pid:
        os._exit(1)
