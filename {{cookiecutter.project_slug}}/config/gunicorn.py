"""gunicorn settings for the web process (``bin/web``).

Read from the environment so that compose, supervisord and systemd tune the
same file. Requests only enqueue work, so a few processes go a long way.
"""

import os
from pathlib import Path

from dotenv import load_dotenv

# The same file as config/settings.py (ENV_FILE, else .env), read before
# gunicorn reads PORT and WEB_CONCURRENCY; values already in the
# environment win.
load_dotenv(
    os.environ.get("ENV_FILE") or Path(__file__).resolve().parent.parent / ".env"
)

bind = f"{os.environ.get('HOST', '0.0.0.0')}:{os.environ.get('PORT', '8000')}"  # noqa: S104
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
# Threads, not gunicorn's default sync workers: a sync worker is held for the
# whole of a slow client's upload (two clients sending photos at 20 KB/s stop
# two sync workers for minutes, and the site with them), and is killed after
# `timeout` with a 500 for the client. A slow client holds one thread here;
# gunicorn hands back to its poller a connection that sends nothing for 5 s.
# In production a buffering proxy in front (deploy/nginx/) receives bodies
# whole before gunicorn sees them. Each thread has its own database
# connection: workers x threads must stay under PostgreSQL's max_connections.
worker_class = "gthread"
threads = int(os.environ.get("WEB_THREADS", "8"))
# Uploads are saved and handed to the worker, never processed in the request.
timeout = 30
graceful_timeout = 30
# Let in-flight requests finish on SIGTERM; then the process exits.
accesslog = "-"
errorlog = "-"
# No runtime control socket (gunicorn >= 25 opens one in $HOME by default):
# compose, supervisord and systemd manage the process with signals, and the
# hardened systemd units leave $HOME read-only.
control_socket_disable = True
# The TLS-terminating proxy in front decides X-Forwarded-*; trust only it.
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")
