"""Attempts counted per action, per client address and per account.

Logins and password resets are limited twice: per address (one machine
trying many accounts) and per account (many machines trying one). The
limits are THROTTLES in settings: (attempts, window in seconds).

The counts live in the database: every web process and thread shares them
without a cache server, and PostgreSQL's row lock makes each count exact
under a burst of parallel requests. A key is an HMAC keyed with SECRET_KEY,
so the table holds neither addresses nor user names, and cannot be reversed
by hashing every IPv4 address. A key names its window, so a row past its
window is never counted again: the nightly clean-up deletes those
(``delete_expired``), not each attempt, whose transactions would otherwise
all wait on one another to delete the same rows.
"""

import ipaddress
import math
import time
from datetime import UTC, datetime

from django.conf import settings
from django.utils.crypto import salted_hmac

from .models import Throttle


class Throttled(Exception):
    """Past the limit; ``retry_after`` seconds until the window ends."""

    def __init__(self, retry_after):
        self.retry_after = retry_after
        minutes = math.ceil(retry_after / 60)
        super().__init__(
            f"Too many attempts; try again in {minutes} minute{'s' * (minutes > 1)}."
        )


def now():
    return time.time()


def count(action, subject):
    """Count one attempt at ``action`` by ``subject``; raise Throttled past it."""
    limit, window = settings.THROTTLES[action]
    current = now()
    start = current // window * window
    key = salted_hmac(
        "core.throttle", f"{action}\0{subject}\0{start}", algorithm="sha256"
    ).hexdigest()
    expires_at = datetime.fromtimestamp(start + window, UTC)
    attempts = Throttle.add_one(key, expires_at)
    if attempts > limit:
        raise Throttled(retry_after=math.ceil(start + window - current))


def delete_expired():
    """Delete the counts of windows that are over; return how many."""
    over = datetime.fromtimestamp(now(), UTC)
    deleted, _ = Throttle.objects.filter(expires_at__lte=over).delete()
    return deleted


def client_address(request):
    """The client's IP address, as the proxy in front saw it.

    X-Forwarded-For is believed only from the addresses gunicorn trusts for
    X-Forwarded-Proto (FORWARDED_ALLOW_IPS): anyone else could write any
    address there. deploy/nginx sets the header to the one address it saw.
    An IPv6 client is counted by its /64 network: one machine commonly has
    all of one.
    """
    address = request.META.get("REMOTE_ADDR", "")
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
    if forwarded and _trusted(address):
        address = forwarded.rsplit(",", 1)[-1].strip()
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return "unknown"
    if ip.version == 6:
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip)


def _trusted(address):
    trusted = settings.FORWARDED_ALLOW_IPS
    if "*" in trusted:
        return True
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in ipaddress.ip_network(network, strict=False) for network in trusted)
