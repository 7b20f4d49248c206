"""Jobs whose task the queue lost are queued again (core/rescue.py), the same
on every backend: past the bound and unfinished only, once per rescue, and
failed after JOB_MAX_RESCUES."""

from datetime import timedelta

import pytest
from django.core import mail
from django.core.files.base import ContentFile
from django.test.utils import isolate_apps
from django.utils import timezone

from core import checks, rescue
from core.models import Job, Status
from notifications import services
from notifications import tasks as notification_tasks
from photos import tasks as photo_tasks
from photos.models import Photo
from tests.backend import queued
from tests.queued import Queued

pytestmark = pytest.mark.django_db


def photo(owner, status=Status.PENDING, age=0):
    """A photo in ``status``, untouched for ``age`` seconds."""
    created = Photo.objects.create(
        owner=owner, status=status, image=ContentFile(b"x", name="a.png")
    )
    untouched_for(created, age)
    return created


def untouched_for(job, seconds):
    type(job).objects.filter(pk=job.pk).update(
        updated_at=timezone.now() - timedelta(seconds=seconds)
    )


@pytest.fixture
def rescue_now(django_capture_on_commit_callbacks):
    """Run a rescue, and the enqueues it leaves for the commit."""

    def run():
        with django_capture_on_commit_callbacks(execute=True):
            return rescue.rescue_jobs()

    return run


def test_unfinished_jobs_past_the_bound_are_queued_again(owner, settings, rescue_now):
    bound = settings.JOB_RESCUE_SECONDS
    pending = photo(owner, Status.PENDING, age=bound + 1)
    running = photo(owner, Status.RUNNING, age=bound + 1)
    photo(owner, Status.PENDING, age=bound - 60)  # still within the bound
    photo(owner, Status.DONE, age=bound + 1)
    photo(owner, Status.FAILED, age=bound + 1)
    notification = services.create_notification(
        owner=owner, subject="s", message="m", recipients=["pi@example.org"]
    )
    notification.set_status(Status.RUNNING)
    untouched_for(notification, bound + 1)

    assert rescue_now() == 3

    assert sorted(queued(photo_tasks.make_thumbnail)) == sorted(
        [Queued([pending.pk], {}, None), Queued([running.pk], {}, None)]
    )
    assert queued(notification_tasks.send_notification) == [
        Queued([notification.pk], {}, None)
    ]


def test_a_rescued_job_waits_a_whole_bound_before_the_next_rescue(
    owner, settings, rescue_now
):
    photo(owner, Status.RUNNING, age=settings.JOB_RESCUE_SECONDS + 1)
    assert rescue_now() == 1
    assert rescue_now() == 0
    assert len(queued(photo_tasks.make_thumbnail)) == 1


def test_a_job_lost_too_many_times_ends_failed(owner, settings, rescue_now):
    lost = photo(owner, Status.RUNNING)
    for _ in range(settings.JOB_MAX_RESCUES):
        untouched_for(lost, settings.JOB_RESCUE_SECONDS + 1)
        assert rescue_now() == 1
    untouched_for(lost, settings.JOB_RESCUE_SECONDS + 1)

    assert rescue_now() == 0

    lost.refresh_from_db()
    assert (lost.status, lost.error) == (
        Status.FAILED,
        "The work was lost too many times.",
    )
    assert len(queued(photo_tasks.make_thumbnail)) == settings.JOB_MAX_RESCUES


def test_a_rescued_notification_is_sent(owner, settings, run_queued_tasks):
    lost = services.create_notification(
        owner=owner, subject="s", message="m", recipients=["pi@example.org"]
    )
    lost.set_status(Status.RUNNING)  # its worker died mid-task, the task lost
    untouched_for(lost, settings.JOB_RESCUE_SECONDS + 1)

    rescue.rescue_jobs()  # committed as it runs: this test's transactions are real
    run_queued_tasks()

    lost.refresh_from_db()
    assert lost.status == Status.DONE
    assert [message.to for message in mail.outbox] == [["pi@example.org"]]


def test_the_projects_job_models_can_all_be_queued_again():
    assert checks.jobs_can_be_rescued(None) == []
    assert {model.__name__ for model in rescue.job_models()} == {
        "Notification",
        "Photo",
    }


@isolate_apps("core")
def test_a_job_model_without_enqueue_is_reported():
    class Unqueued(Job):
        class Meta:
            app_label = "core"

    warnings = checks.unqueued_jobs(Unqueued._meta.apps)
    assert [(warning.id, warning.obj) for warning in warnings] == [
        ("core.W001", Unqueued)
    ]
