"""What a backend's ``queued(task)`` test helper returns, whatever the queue.

Shared tests compare these fields only, never a queue's own rows or
messages, so they read the same on every task backend.
"""

from datetime import datetime
from typing import Any, NamedTuple


class Queued(NamedTuple):
    args: list[Any]
    kwargs: dict[str, Any]
    # None: as soon as a worker is free.
    run_after: datetime | None
