"""The Celery app: its settings are Django's CELERY_* settings, its tasks the
``tasks`` modules of the apps.

Made as Django starts (config/__init__.py), as Celery's Django guide does:
every process that queues a task, web included, queues it with this app.
"""

import os

from celery import Celery
from celery.signals import worker_process_init

from core.heartbeat import heartbeat

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

# core.jobs.Task: Celery's Django task (delay_on_commit), bounded when a task
# keeps losing its worker, and failing its job row with a sentence.
app = Celery("config", task_cls="core.jobs:Task")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@worker_process_init.connect
def give_signs_of_life(**kwargs):
    """Each pool process beats for the liveness probe (core/heartbeat.py)."""
    heartbeat.start()
