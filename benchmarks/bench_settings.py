"""The baked project's settings, plus the benchmark's app (and its task)."""

from config.settings import *  # noqa: F403

INSTALLED_APPS += ["bench_app"]  # noqa: F405
