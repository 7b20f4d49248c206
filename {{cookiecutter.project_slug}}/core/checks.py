"""System checks of core: every job model can be queued again."""

from django.apps import apps
from django.core import checks


@checks.register()
def jobs_can_be_rescued(app_configs, **kwargs):
    return unqueued_jobs(apps)


def unqueued_jobs(registry):
    """A warning for each Job subclass of ``registry`` without ``enqueue()``:
    core/rescue.py cannot queue it again, so its rows stay unfinished for
    good if the queue loses its task."""
    from .models import Job

    return [
        checks.Warning(
            f"{model._meta.label} has no enqueue(): if the queue loses its "
            "task, core/rescue.py cannot queue it again.",
            hint="Define enqueue() to queue its task, as photos/models.py does.",
            obj=model,
            id="core.W001",
        )
        for model in registry.get_models()
        if issubclass(model, Job) and model.enqueue is Job.enqueue
    ]
