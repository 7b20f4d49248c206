"""Django settings for {{ cookiecutter.project_name }}.

Everything that differs between machines comes from environment variables; in
development a git-ignored ``.env`` file beside manage.py supplies them. The
defaults are the safe ones: DEBUG off, HTTPS on, SQLite when no DATABASE_URL.
"""

import os
import socket
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured
from django.utils.csp import CSP
from dotenv import load_dotenv

BASE_DIR = Path(__file__).resolve().parent.parent
DOMAIN_NAME = "{{ cookiecutter.domain_name }}"

# Values already in the environment win over the file. ENV_FILE names
# another file (deploy/supervisord: /etc/<project>/env, outside the code).
load_dotenv(os.environ.get("ENV_FILE") or BASE_DIR / ".env")


def env_bool(name, default=False):
    value = os.environ.get(name, "").strip().lower()
    if not value:
        return default
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off"}:
        return False
    raise ImproperlyConfigured(f"{name}={value!r} is not a boolean (true/false).")


def env_list(name, default=""):
    return [
        item.strip()
        for item in os.environ.get(name, default).split(",")
        if item.strip()
    ]


# Core ----------------------------------------------------------------------

DEBUG = env_bool("DEBUG")

SECRET_KEY = os.environ.get("SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG is off.")
    SECRET_KEY = "development-only-key-never-used-with-debug-off"  # noqa: S105

# Empty with DEBUG on means localhost only (Django's own rule).
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "" if DEBUG else DOMAIN_NAME)
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "core",
    "notifications",
    "photos",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.middleware.csp.ContentSecurityPolicyMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    # API clients get JSON for every error below this line (core/middleware.py).
    "core.middleware.JsonErrorsMiddleware",
    # Bodies over REQUEST_MAX_BYTES are refused before they are read.
    "core.middleware.RequestSizeLimitMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # Every view needs a login unless marked @login_not_required; API
    # clients are answered 401 instead of being sent to the login form.
    "core.middleware.LoginRequiredMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"
# Attempts allowed per window (seconds), per client address and per account
# (core/throttle.py); past them the answer is 429. A password reset past the
# account's limit looks sent but is not: the page says nothing of accounts.
THROTTLES = {
    "login/address": (30, 300),
    "login/account": (10, 300),
    "password_reset/address": (10, 3600),
    "password_reset/account": (3, 3600),
}

# Database ------------------------------------------------------------------

# Files the processes write besides media (SQLite databases): systemd sets
# STATE_DIRECTORY (the units' StateDirectory=), and so does the Docker image,
# whose code in /app is read-only to the app user; in development, files sit
# beside manage.py (git-ignored).
STATE_DIR = Path(os.environ.get("STATE_DIRECTORY") or BASE_DIR)

# An empty DATABASE_URL (as in .env.example) means SQLite too.
DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL") or f"sqlite:///{STATE_DIR / 'db.sqlite3'}",
        conn_max_age=60,
        conn_health_checks=True,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # Every wait is bounded: a worker cut off from the database gives up
    # connecting after 5 s, finds a dead peer within 1 min (TCP keepalive
    # while idle; while a query is unanswered, tcp_user_timeout, instead of
    # the kernel's 15 min of retransmissions), and the server ends a
    # transaction left idle for 1 min, releasing the rows it locked (the
    # longest one the samples hold: an SMTP exchange). The server probes the
    # connection the same way (its own defaults: 2 h), so the connection of
    # a host that was cut off or died is closed within about a minute too.
    DATABASES["default"]["OPTIONS"] = {
        "connect_timeout": 5,
        "keepalives": 1,
        "keepalives_idle": 30,
        "keepalives_interval": 10,
        "keepalives_count": 3,
        "tcp_user_timeout": 60_000,  # ms
        "options": (
            "-c idle_in_transaction_session_timeout=60s"
            " -c tcp_keepalives_idle=30 -c tcp_keepalives_interval=10"
            " -c tcp_keepalives_count=3 -c tcp_user_timeout=60000"
        ),
    }
elif DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Web and worker write to one file: WAL lets readers run beside the
    # writer, and IMMEDIATE transactions wait for the lock instead of failing.
    DATABASES["default"]["OPTIONS"] = {
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"


# Sample tasks --------------------------------------------------------------

# A notification goes to at most this many addresses; each is one message.
NOTIFICATION_MAX_RECIPIENTS = 200
# Attempts for an address whose SMTP server failed transiently (then: failed).
NOTIFICATION_MAX_ATTEMPTS = 5

PHOTO_MAX_UPLOAD_BYTES = 10 * 1024 * 1024
# Any request body over this is refused (413) before it is read; the largest
# a form takes is a photo plus the form's other fields.
REQUEST_MAX_BYTES = PHOTO_MAX_UPLOAD_BYTES + 64 * 1024
# Checked from the header in the request and again while decoding.
PHOTO_MAX_PIXELS = 40_000_000
PHOTO_ALLOWED_FORMATS = ["JPEG", "PNG", "GIF", "WEBP"]
PHOTO_THUMBNAIL_SIZE = (320, 320)
# The worker stops decoding a photo after this many seconds: failed. (A
# progressive JPEG with 100,000 scans can take minutes at any file size.)
PHOTO_DECODE_SECONDS = float(os.environ.get("PHOTO_DECODE_SECONDS") or 20)
# ... and may use this much memory, interpreter included (its address
# space): an image that needs more ends failed.
PHOTO_DECODE_MEMORY_BYTES = int(
    os.environ.get("PHOTO_DECODE_MEMORY_BYTES") or 1024 * 1024 * 1024
)

# Scheduled work ------------------------------------------------------------

# The nightly clean-up (core/cleanup.py, scheduled in core/tasks.py): a
# crontab line, read in TIME_ZONE.
CLEANUP_SCHEDULE = os.environ.get("CLEANUP_SCHEDULE") or "30 3 * * *"
# Finished queue records, and photos that never finished, are kept this long.
CLEANUP_RETENTION_DAYS = int(os.environ.get("CLEANUP_RETENTION_DAYS") or 14)
# A media file that no photo refers to is deleted once this old (a younger
# one may belong to an upload whose row is not committed yet).
CLEANUP_ORPHAN_HOURS = 24

# Nothing lost (core/rescue.py): at every RESCUE_SCHEDULE tick, a job left
# pending or running with no change for JOB_RESCUE_SECONDS (its task dropped
# by the queue) is queued again; one rescued JOB_MAX_RESCUES times ends
# failed. The bound must outlast the longest run (TASK_TIME_LIMIT) and the
# longest wait for a retry (4 min with the samples' 5 attempts).
RESCUE_SCHEDULE = os.environ.get("RESCUE_SCHEDULE") or "* * * * *"
JOB_RESCUE_SECONDS = int(os.environ.get("JOB_RESCUE_SECONDS") or 900)
JOB_MAX_RESCUES = 3

# Email ---------------------------------------------------------------------

# Django 6.1 configures mail as MAILERS (like DATABASES); the environment
# keeps the usual EMAIL_* names. The console mailer prints instead of sending
# only with DEBUG on and no EMAIL_HOST.
email_host = os.environ.get("EMAIL_HOST", "")  # lowercase: not a setting
if DEBUG and not email_host:
    MAILERS = {"default": {"BACKEND": "django.core.mail.backends.console.EmailBackend"}}
else:
    MAILERS = {
        "default": {
            "BACKEND": "django.core.mail.backends.smtp.EmailBackend",
            "OPTIONS": {
                "host": email_host or "localhost",
                "port": int(os.environ.get("EMAIL_PORT", "25")),
                "username": os.environ.get("EMAIL_HOST_USER", ""),
                "password": os.environ.get("EMAIL_HOST_PASSWORD", ""),
                "use_tls": env_bool("EMAIL_USE_TLS"),
                # A stuck SMTP server must not hold a worker forever.
                "timeout": 10,
            },
        },
    }
DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL", f"noreply@{DOMAIN_NAME}")
SERVER_EMAIL = DEFAULT_FROM_EMAIL

# Static and uploaded files -------------------------------------------------

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
# Uploads are private: photos are served through views that check the owner.
# Uploads larger than this go to a temporary file instead of memory.
FILE_UPLOAD_MAX_MEMORY_SIZE = 2 * 1024 * 1024
# On one machine uploads live on its disk, in MEDIA_ROOT. With S3_BUCKET set
# they live in that S3-compatible bucket, which web and worker reach from
# any host (README.md, "More than one machine"). The keys come from
# AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or from the host's role.
MEDIA_ROOT = Path(os.environ.get("MEDIA_ROOT") or BASE_DIR / "media")
MEDIA_URL = "media/"
S3_BUCKET = os.environ.get("S3_BUCKET", "")


def s3_storage(bucket):
    """Uploads in ``bucket``, on the server S3_ENDPOINT_URL names (empty:
    AWS itself)."""
    from botocore.config import Config  # only where a bucket is used

    endpoint_url = os.environ.get("S3_ENDPOINT_URL") or None
    # Most S3-compatible servers want the bucket in the path.
    addressing_style = os.environ.get("S3_ADDRESSING_STYLE") or (
        "path" if endpoint_url else "auto"
    )
    return {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": bucket,
            "endpoint_url": endpoint_url,
            "region_name": os.environ.get("S3_REGION") or None,
            # Private objects: no ACL of ours, the bucket's policy decides.
            "default_acl": None,
            # A download larger than this waits in a temporary file.
            "max_memory_size": FILE_UPLOAD_MAX_MEMORY_SIZE,
            "client_config": Config(
                s3={"addressing_style": addressing_style},
                # A stuck storage must not hold a request or a worker long.
                connect_timeout=5,
                read_timeout=30,
                retries={"mode": "standard", "max_attempts": 3},
            ),
        },
    }


STORAGES = {
    "default": (
        s3_storage(S3_BUCKET)
        if S3_BUCKET
        else {"BACKEND": "django.core.files.storage.FileSystemStorage"}
    ),
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedStaticFilesStorage",
    },
}

# Internationalisation ------------------------------------------------------

LANGUAGE_CODE = "en-us"
TIME_ZONE = "{{ cookiecutter.time_zone }}"
USE_I18N = True
USE_TZ = True

# Security ------------------------------------------------------------------

# On by default; turn off only to serve plain HTTP on a trusted network.
USE_HTTPS = env_bool("USE_HTTPS", default=not DEBUG)
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
# The proxies whose X-Forwarded-For names the client (addresses or networks;
# the variable gunicorn reads for X-Forwarded-Proto, config/gunicorn.py).
FORWARDED_ALLOW_IPS = env_list("FORWARDED_ALLOW_IPS", "127.0.0.1")
SECURE_SSL_REDIRECT = USE_HTTPS
# Probes reach the pod over plain HTTP, not through the proxy (core/health.py).
SECURE_REDIRECT_EXEMPT = [r"^healthz/$"]
SESSION_COOKIE_SECURE = USE_HTTPS
CSRF_COOKIE_SECURE = USE_HTTPS
# Browsers use only HTTPS for this host for a year. Subdomains and the
# browsers' preload list are opt-in: a subdomain still on plain HTTP would
# break, and leaving the preload list takes months.
SECURE_HSTS_SECONDS = 31_536_000 if USE_HTTPS else 0
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("HSTS_INCLUDE_SUBDOMAINS")
SECURE_HSTS_PRELOAD = env_bool("HSTS_PRELOAD")
# check --deploy warns about the two opt-ins above: they are decisions.
SILENCED_SYSTEM_CHECKS = ["security.W005", "security.W021"]
# The pages load scripts, styles and images from this site only; no inline
# code, no framing, forms post here.
SECURE_CSP = {
    "default-src": [CSP.SELF],
    "object-src": [CSP.NONE],
    "base-uri": [CSP.NONE],
    "frame-ancestors": [CSP.NONE],
    "form-action": [CSP.SELF],
}

# Logging -------------------------------------------------------------------

# Everything to stdout: compose, supervisord and journald collect it. Each
# line names the host and the process: with workers on several machines, the
# lines gathered in one place still say where each task ran.
HOSTNAME = socket.gethostname()
LOG_FORMAT = "{asctime} " + HOSTNAME + " {process} {levelname} {name}: {message}"
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": LOG_FORMAT, "style": "{"}},
    "handlers": {
        "stdout": {
            "class": "logging.StreamHandler",
            "stream": "ext://sys.stdout",
            "formatter": "plain",
        },
    },
    "root": {"handlers": ["stdout"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    # Drop Django's own handlers (console with DEBUG on, mail_admins): its
    # records reach the root handler once, like everything else.
    "loggers": {"django": {"handlers": [], "propagate": True}},
}

# Background tasks ----------------------------------------------------------

# Last, so that the task backend can add to the settings above (LOGGING).
{% include "backends/" ~ cookiecutter.task_backend ~ "/config/settings.py" %}

if JOB_RESCUE_SECONDS <= TASK_TIME_LIMIT:
    # A job still running could be queued again beside its run.
    raise ImproperlyConfigured("JOB_RESCUE_SECONDS must exceed TASK_TIME_LIMIT.")
