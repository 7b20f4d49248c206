
# Celery's app is made as Django starts, so that @shared_task tasks queue to
# its broker from every process (Celery's Django guide).
from .celery import app as celery_app

__all__ = ["celery_app"]
